"""Grading typed answers safely: a whitelisted parser, sampled equivalence, named mistakes."""

from __future__ import annotations

from .grader import FormulaGrader, GraderError, Mistake, Verdict, parse_tolerance
from .parser import InvalidAnswer, parse

__all__ = ["FormulaGrader", "GraderError", "InvalidAnswer", "Mistake", "Verdict", "parse", "parse_tolerance"]
