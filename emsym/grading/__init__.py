"""Grading typed answers safely: a whitelisted parser, sampled equivalence, named mistakes."""

from __future__ import annotations

from .grader import FormulaGrader, GraderError, Verdict, parse_tolerance
from .parser import InvalidAnswer, parse

__all__ = ["FormulaGrader", "GraderError", "InvalidAnswer", "Verdict", "parse", "parse_tolerance"]
