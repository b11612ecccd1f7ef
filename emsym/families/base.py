"""What a component family declares: its parameters, log density, support and start.

A family is data for the engine (``emsym.family_model`` builds Q from it, ``emsym.family_derive``
differentiates and solves, ``emsym.family_compile`` runs the result); nothing downstream
branches on a family's name.  A family module defines one ``Family`` value:

* ``parameters`` -- each with a ``shape`` (``scalar``: one number per component; ``vector``:
  one per data coordinate; ``simplex``: one per coordinate, summing to one -- the engine adds a
  Lagrange multiplier per component) and a ``domain`` (``real``, ``positive``, ``unit``).
* ``log_density(v)`` -- the log density of one point as a sympy expression, written with the
  handles in ``v`` (``v.x`` the point of a 1-d family, ``v.x_i`` its coordinate i and ``v.i``
  the summation index over the ``v.d`` coordinates of a vector family, ``v[name]`` and
  ``v[name, v.i]`` the parameters of the component).
* ``support`` -- which data values are allowed (checked when data is read).
* ``conjugate`` -- the conjugate prior of each parameter, for MAP-EM (``emsym.priors``).
* ``start(X, K, rng)`` and ``sample(params, z, rng)`` -- a default starting point for EM and
  a sampler for ``emsym check`` (numpy, one array per parameter with K rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import sympy as sp

__all__ = ["DOMAINS", "SHAPES", "SUPPORTS", "Family", "Handles", "Parameter", "Support"]

SHAPES = ("scalar", "vector", "simplex")
DOMAINS = ("real", "positive", "unit")


@dataclass(frozen=True)
class Parameter:
    """One parameter of a component: ``name`` in files and output, ``symbol`` in formulas."""

    name: str
    shape: str = "scalar"
    domain: str = "real"
    symbol: str | None = None  # the printed name (rate -> lambda); default: the name
    description: str = ""

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"parameter {self.name}: shape should be one of {SHAPES}, got {self.shape!r}")
        if self.domain not in DOMAINS:
            raise ValueError(f"parameter {self.name}: domain should be one of {DOMAINS}, got {self.domain!r}")

    @property
    def sym(self) -> str:
        return self.symbol or self.name

    @property
    def per_coordinate(self) -> bool:
        return self.shape != "scalar"


@dataclass(frozen=True)
class Support:
    """The data values a family allows; ``check`` returns None or what is wrong with one value.

    ``row`` (optional) checks a whole row (e.g. one-hot rows for the categorical family).
    """

    text: str
    check: Callable[[np.ndarray], np.ndarray]  # bool mask of the bad values
    row: Callable[[np.ndarray], np.ndarray] | None = None  # bool mask of the bad rows
    row_text: str = ""


def _real(X):
    return ~np.isfinite(X)


def _positive(X):
    return ~(X > 0)


def _nonnegative(X):
    return ~(X >= 0)


def _count(X):
    return ~((X >= 0) & (np.floor(X) == X))


def _binary(X):
    return ~((X == 0) | (X == 1))


SUPPORTS = {
    "real": Support("a real number", _real),
    "positive": Support("a number > 0", _positive),
    "nonnegative": Support("a number >= 0", _nonnegative),
    "count": Support("a whole number >= 0 (a count)", _count),
    "binary": Support("0 or 1", _binary),
}


class Handles:
    """What a family's ``log_density`` writes with: the point, its coordinates, the parameters."""

    def __init__(self, x: sp.Expr, x_i: sp.Expr | None, i: sp.Symbol, d: Any, params: dict[str, Callable]):
        self.x = x
        self.x_i = x_i
        self.i = i
        self.d = d
        self._params = params

    def __getitem__(self, key):
        if isinstance(key, tuple):
            name, coord = key
            return self._params[name](coord)
        return self._params[key](None)


@dataclass(frozen=True)
class Family:
    """A component family (see the module docstring)."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    log_density: Callable[[Handles], sp.Expr]
    support: Support
    univariate: bool  # True: one data column; False: d coordinates (d from the model or the data)
    start: Callable[[np.ndarray, int, np.random.Generator], dict[str, np.ndarray]]
    sample: Callable[[dict[str, np.ndarray], np.ndarray, np.random.Generator], np.ndarray]
    truth: Callable[[int, int, np.random.Generator], dict[str, np.ndarray]]
    conjugate: dict[str, str] = field(default_factory=dict)  # parameter -> prior kind (emsym.priors)
    display: str = ""  # the density's name in formulas, e.g. Poisson
    reference: str = ""

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)
