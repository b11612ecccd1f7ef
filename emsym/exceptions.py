"""Errors and warnings of emsym, split by who has to act on them.

::

    EmsymError                      base of every error emsym raises on purpose
    ├── SpecError (ValueError)      a model file, preset or spec dict is wrong (author)
    ├── DataError (ValueError)      a data CSV or an init file is wrong (user of ``run``)
    │   └── NotPositiveDefinite     a covariance met in the E-step has no Cholesky factor
    ├── DerivationError             sympy could not derive an update for a valid spec
    ├── ExerciseError (ValueError)  an exercise file is wrong; ``problems`` lists each (author)
    ├── GraderError (ValueError)    a question is wrong: expected answer, side condition, tolerance (author)
    └── InvalidAnswer (ValueError)  a typed answer cannot be read (student: the only class students see)

    EmsymWarning (UserWarning)
    ├── ConvergenceWarning          EM stopped at the iteration limit before the tolerance
    └── CollapseWarning             a variance hit the floor or a component lost all its points

Every message names the thing (key, row, file), what was expected and what came in,
so the command-line interface can print it as one line and exit with status 2.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CollapseWarning",
    "ConvergenceWarning",
    "DataError",
    "DerivationError",
    "EmsymError",
    "EmsymWarning",
    "ExerciseError",
    "GraderError",
    "InvalidAnswer",
    "NotPositiveDefinite",
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


class NotPositiveDefinite(DataError):
    """A covariance matrix met in the E-step is not positive definite (given through the API unchecked)."""

    def __init__(self, matrix: Any):
        super().__init__(f"a covariance matrix is not positive definite (no Cholesky factor): {_as_list(matrix)}")
        self.matrix = matrix


class ExerciseError(EmsymError, ValueError):
    """An exercise file is invalid; ``problems`` lists every problem found (author-facing)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class GraderError(EmsymError, ValueError):
    """The question itself (expected answer, side condition, tolerance) is wrong: author-facing."""


class InvalidAnswer(EmsymError, ValueError):
    """A typed answer that cannot be read; the message is for the student."""

    def __init__(self, message: str, column: int | None = None, source: str | None = None):
        self.reason = message
        self.column = column
        if column is not None and source is not None and len(source) <= 200:
            message = f"column {column}: {message}\n  {source}\n  {' ' * (column - 1)}^"
        elif column is not None:
            message = f"column {column}: {message}"
        super().__init__(message)


class EmsymWarning(UserWarning):
    """Base class of emsym's warnings."""


class ConvergenceWarning(EmsymWarning):
    """EM reached the iteration limit before the log-likelihood change fell below tol."""


class CollapseWarning(EmsymWarning):
    """A component's variance was floored, or a component lost all its points."""


def _as_list(matrix: Any) -> Any:
    return matrix.tolist() if hasattr(matrix, "tolist") else matrix
