"""Solving one stationarity condition for one unknown, as the derivation does for every update.

``solve_for(expr, target, what)`` returns the one root of expr = 0, treating each sum over the data
that does not hold target as an opaque positive statistic; no root, several roots or a root that
still holds target is a ``DerivationError`` naming ``what``.  A condition whose numerator is linear
in target -- almost all of them -- is solved directly (``linear_root``); the rest go to
``sp.solve`` (``roots``).  Used by ``emsym.derive``, ``emsym.family_derive``, ``emsym.mclust`` (the volume
blocks) and ``emsym.mistakes`` (re-deriving from a student's wrong step).

>>> import sympy as sp
>>> a, b, s = sp.symbols("a b s", positive=True)
>>> solve_for(a / (2 * s**2) - b / (2 * s), s, "a variance")
a/b
"""

from __future__ import annotations

import sympy as sp
from sympy.core.assumptions import check_assumptions

from .exceptions import DerivationError

__all__ = ["linear_root", "roots", "solve_for"]


def solve_for(expr: sp.Expr, target: sp.Expr, what: str) -> sp.Expr:
    """Solve expr = 0 for target; sums over the data that do not involve target are constants."""
    sums = [s for s in expr.atoms(sp.Sum) if not s.has(target)]
    rep = {s: sp.Dummy(positive=True) for s in sums}
    try:
        sols = roots(expr.xreplace(rep), target)
    except NotImplementedError as exc:  # pragma: no cover - sympy gives up
        raise DerivationError(f"{what}: sympy could not solve the stationarity condition ({exc})") from None
    back = {d: s for s, d in rep.items()}
    sols = [sp.factor_terms(s.xreplace(back)) for s in sols]
    if len(sols) != 1:
        raise DerivationError(
            f"{what}: the stationarity condition has {len(sols)} closed-form solutions, expected exactly one; "
            "emsym does not guess between roots"
        )
    if sols[0].has(target):  # solved only in terms of itself (a sum over the data still holds it)
        raise DerivationError(f"{what}: the stationarity condition has no closed-form solution")
    return sols[0]


def roots(expr: sp.Expr, target: sp.Expr) -> list[sp.Expr]:
    """The roots of expr = 0 in target: ``linear_root``'s one root, else ``sp.solve``'s list."""
    root = linear_root(expr, target)
    return [root] if root is not None else sp.solve(expr, target, dict=False)


def linear_root(expr: sp.Expr, target: sp.Expr) -> sp.Expr | None:
    """The one root of expr = 0 when its numerator is linear in target and the root is admissible.

    Almost every stationarity condition is a rational function whose numerator is a*t + b: the
    root is -b/a, unless the denominator vanishes there (then it is a pole).  Where target appears
    only as log(target) (mclust's shape multiplier: sum_i log b_i = d log nu), the condition is
    solved for u = log(target) and the root is exp(u).  As ``sp.solve`` does, symbolic
    coefficients are taken to be non-zero, a denominator is non-zero unless provably zero, and a
    root that contradicts what target is declared to be (a negative value for a positive rate) is
    no root.  Anything else -- a higher degree, target inside a sum, a pole -- returns None and
    goes to ``sp.solve``.  Solving these directly also spares every derivation the import of
    ``sympy.physics.units`` (about 0.12 s) that sympy's solution checker makes.
    """
    log_t = sp.log(target)
    if expr.has(log_t) and not expr.xreplace({log_t: sp.S.Zero}).has(target):  # linear in log(target)
        u = sp.Dummy()
        log_root = linear_root(expr.xreplace({log_t: u}), u)
        root = None if log_root is None else sp.exp(log_root)
    else:
        root = _rational_root(expr, target)
    if root is None or check_assumptions(root, target) is False:
        return None
    return root


def _rational_root(expr: sp.Expr, target: sp.Expr) -> sp.Expr | None:
    num, den = sp.together(expr).as_numer_denom()
    try:
        poly = sp.Poly(num, target)
    except sp.PolynomialError:
        return None
    if poly.degree() != 1:
        return None
    a, b = poly.all_coeffs()
    root = b / -a
    if den.has(target) and den.xreplace({target: root}).is_zero:  # a pole, not a root
        return None
    return root
