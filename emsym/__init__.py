"""emsym: derive, check, teach and grade the EM algorithm for mixture models."""

from __future__ import annotations

__version__ = "0.1.0"
