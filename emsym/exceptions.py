"""Errors and warnings of emsym, split by who has to act on them.

::

    EmsymError                      base of every error emsym raises on purpose
    ├── SpecError (ValueError)      a model file, preset or spec dict is wrong (author)
    ├── DataError (ValueError)      a data CSV or an init file is wrong (user of ``run``)
    └── DerivationError             sympy could not derive an update for a valid spec

    EmsymWarning (UserWarning)
    ├── ConvergenceWarning          EM stopped at the iteration limit before the tolerance
    └── CollapseWarning             a variance hit the floor or a component lost all its points

Every message names the thing (key, row, file), what was expected and what came in,
so the command-line interface can print it as one line and exit with status 2.
"""

from __future__ import annotations

__all__ = [
    "CollapseWarning",
    "ConvergenceWarning",
    "DataError",
    "DerivationError",
    "EmsymError",
    "EmsymWarning",
    "SpecError",
]


class EmsymError(Exception):
    """Base class of the errors emsym raises for a user's input."""


class SpecError(EmsymError, ValueError):
    """A model specification (YAML file, preset name or dict) is invalid."""


class DataError(EmsymError, ValueError):
    """A data file or an initial-parameter file is invalid for the model."""


class DerivationError(EmsymError):
    """A valid model could not be derived symbolically (reported, never silent)."""


class EmsymWarning(UserWarning):
    """Base class of emsym's warnings."""


class ConvergenceWarning(EmsymWarning):
    """EM reached the iteration limit before the log-likelihood change fell below tol."""


class CollapseWarning(EmsymWarning):
    """A component's variance was floored, or a component lost all its points."""
