"""Conjugate priors for MAP-EM: what each one reads from a model file and its log density.

A prior is written in the model file under ``prior:``, keyed by what it is on (``weights`` or a
family parameter) and naming its kind::

    prior:
      weights: {dirichlet: 2}        # alpha (one number: symmetric; or one per component)
      rate: {gamma: [2, 1]}          # shape a, rate b
      p: {beta: [2, 2]}              # a, b (on every p_kl)
      p: {dirichlet: 2}              # on each component's probability vector

The log density is written without its normalising constant (it does not change the M-step or
whether the objective rises), so the reported log posterior is log-likelihood + log prior up to
a constant.  Hyperparameters are exact numbers and appear in the derived updates as numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

__all__ = ["KINDS", "PriorKind", "log_prior_term"]


@dataclass(frozen=True)
class PriorKind:
    name: str
    hyper: tuple[str, ...]  # names of the hyperparameters, in the order a list gives them
    domain: str  # the parameter domain it is conjugate for ("positive", "unit", "simplex")
    text: str


KINDS = {
    "gamma": PriorKind("gamma", ("a", "b"), "positive", "Gamma(a, b) with shape a > 0 and rate b > 0"),
    "beta": PriorKind("beta", ("a", "b"), "unit", "Beta(a, b) with a > 0 and b > 0"),
    "dirichlet": PriorKind("dirichlet", ("alpha",), "simplex", "Dirichlet(alpha) with every alpha > 0"),
}


def _r(v: Fraction) -> sp.Rational:
    return sp.Rational(v.numerator, v.denominator)


def log_prior_term(kind: str, hyper: tuple, value: Callable[[sp.Expr | None], sp.Expr], coord=None) -> sp.Expr:
    """The log density (up to a constant) of one parameter value under the prior.

    ``value(coord)`` gives the parameter (its coordinate ``coord`` for a vector); for a
    Dirichlet over a probability vector, ``coord`` is the summation index and ``hyper[0]`` is
    one alpha (symmetric) -- the caller sums over the coordinates.
    """
    if kind == "gamma":
        a, b = (_r(h) for h in hyper)
        lam = value(coord)
        return (a - 1) * sp.log(lam) - b * lam
    if kind == "beta":
        a, b = (_r(h) for h in hyper)
        p = value(coord)
        return (a - 1) * sp.log(p) + (b - 1) * sp.log(1 - p)
    if kind == "dirichlet":
        (alpha,) = hyper
        return (_r(alpha) - 1) * sp.log(value(coord))
    raise KeyError(kind)
