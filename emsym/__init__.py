"""emsym: derive, check, teach and grade the EM algorithm for mixture models.

The stages, in the order data flows through them: ``load_spec`` -> ``derive`` (or the cached
``get_derivation``) -> ``CompiledModel`` -> ``run_em`` -> ``check``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .cache import get_derivation
from .check import CheckReport, check
from .compile import CompiledModel
from .derive import Derivation, Step, Update, derive
from .em import EMResult, run_em
from .exceptions import (
    CollapseWarning,
    ConvergenceWarning,
    DataError,
    DerivationError,
    EmsymError,
    EmsymWarning,
    SpecError,
)
from .spec import ModelSpec, load_spec

__all__ = [
    "CheckReport",
    "CollapseWarning",
    "CompiledModel",
    "ConvergenceWarning",
    "DataError",
    "Derivation",
    "DerivationError",
    "EMResult",
    "EmsymError",
    "EmsymWarning",
    "ModelSpec",
    "SpecError",
    "Step",
    "Update",
    "__version__",
    "check",
    "derive",
    "get_derivation",
    "load_spec",
    "run_em",
]
