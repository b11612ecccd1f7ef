"""emsym: derive, check, teach and grade the EM algorithm for mixture models.

The stages, in the order data flows through them: ``load_spec`` -> ``derive`` (or the cached
``get_derivation``) -> ``CompiledModel`` -> ``run_em`` -> ``check``.

The names below are imported on first use (PEP 562), so ``import emsym.grading`` or the command
line's ``emsym --help`` do not pay for sympy and the derivation stages they do not use.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "get_derivation": "cache",
    "CheckReport": "check",
    "check": "check",
    "CompiledModel": "compile",
    "Derivation": "derive",
    "Step": "derive",
    "Update": "derive",
    "derive": "derive",
    "EMResult": "em",
    "run_em": "em",
    "CollapseWarning": "exceptions",
    "ConvergenceWarning": "exceptions",
    "DataError": "exceptions",
    "DerivationError": "exceptions",
    "EmsymError": "exceptions",
    "EmsymWarning": "exceptions",
    "SpecError": "exceptions",
    "ModelSpec": "spec",
    "load_spec": "spec",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'emsym' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


class _Package(types.ModuleType):
    """``emsym.check`` and ``emsym.derive`` are the functions, as with eager imports: importing the
    submodules of the same name (``emsym.check``, ``emsym.derive``) does not rebind them."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            return  # the submodule stays in sys.modules; the attribute is the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:
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
