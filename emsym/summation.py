"""Rules of summation the derivation applies: linearity, Kronecker deltas, index ranges.

``linearise`` splits sums of sums and pulls out factors that do not depend on the summation
index; a Kronecker delta collapses its sum.  Used by ``emsym.derive`` (every update),
``emsym.mclust`` (the covariance blocks) and ``emsym.family_compile`` (to merge the E-step sums).
"""

from __future__ import annotations

import sympy as sp

__all__ = ["linearise"]

_INDEX_NAMES = {"n", "j", "k", "i", "l", "N", "K", "d"}


def _drop_range_piecewise(expr: sp.Basic) -> sp.Basic:
    """d/dpi_k of sum_j pi_j gives Piecewise((1, k <= K), (0, True)); k is in range by construction."""

    def in_range(e):
        return (
            isinstance(e, sp.Piecewise)
            and len(e.args) == 2
            and e.args[1].cond is sp.true
            and {s.name for s in e.args[0].cond.free_symbols} <= _INDEX_NAMES
        )

    return expr.replace(in_range, lambda e: e.args[0].expr)


def _split(f: sp.Expr) -> sp.Expr:
    """Distribute products over sums but keep powers such as (x_n - mu)**2 whole."""
    return sp.expand(f, mul=True, multinomial=False, power_exp=False, power_base=False, log=False)


def _sum1(f: sp.Expr, var: sp.Symbol, a, b) -> sp.Expr:
    out = sp.Integer(0)
    for term in sp.Add.make_args(_split(f)):
        delta = next(
            (fac for fac in sp.Mul.make_args(term) if isinstance(fac, sp.KroneckerDelta) and var in fac.args), None
        )
        if delta is not None:  # sum_var delta(var, k) g(var) = g(k): k lies in [a, b]
            other = delta.args[0] if delta.args[1] == var else delta.args[1]
            out += (term / delta).subs(var, other)
            continue
        const, dep = term.as_independent(var, as_Add=False)
        out += const * (sp.Sum(dep, (var, a, b)) if dep != 1 else (b - a + 1))
    return out


def linearise(expr: sp.Expr) -> sp.Expr:
    """Use linearity of summation: split sums of sums and pull constant factors out.

    >>> import sympy as sp
    >>> n, N, mu = sp.symbols("n N mu")
    >>> x = sp.IndexedBase("x")
    >>> linearise(sp.Sum(3 * (x[n] - mu), (n, 1, N)))
    -3*N*mu + 3*Sum(x[n], (n, 1, N))
    """
    expr = _drop_range_piecewise(expr)
    if isinstance(expr, sp.Sum):
        f = linearise(expr.function)
        for var, a, b in expr.limits:
            f = _sum1(f, var, a, b)
        return f
    if expr.is_Atom or isinstance(expr, sp.Indexed) or not expr.args:
        return expr
    return expr.func(*[linearise(a) for a in expr.args])
