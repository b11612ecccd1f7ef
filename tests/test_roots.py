"""Solving one stationarity condition (``emsym.roots``) against sympy's own ``solve``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sympy as sp

from emsym.exceptions import DerivationError
from emsym.roots import linear_root, roots, solve_for

t = sp.Symbol("t", positive=True)
a, b, c = sp.symbols("a b c", positive=True)
lam = sp.Symbol("lambda")  # a Lagrange multiplier: any sign
u = sp.Symbol("u", real=True)
i, d = sp.symbols("i d", integer=True, positive=True)
B = sp.IndexedBase("b", positive=True)

CONDITIONS = [
    a / t - b,  # a Poisson or exponential rate
    a / (2 * t**2) - b / (2 * t),  # a variance
    (a - 1) / t + c / t - b - lam,  # a Gamma prior on a rate
    c / t + lam,  # a Lagrange multiplier for a weight
    a - b * u + c * (2 - u),  # a mean, a linked value
    (a * t - b) / (c * t + 1) + 1,  # a root of a rational function
    sp.Sum(sp.log(B[i]), (i, 1, d)) - d * sp.log(t),  # mclust's shape multiplier: linear in log t
]


@pytest.mark.parametrize("expr", CONDITIONS, ids=range(len(CONDITIONS)))
def test_the_direct_root_is_sympys(expr):
    target = u if expr.has(u) else t
    (reference,) = sp.solve(expr, target)
    root = linear_root(expr, target)
    assert root is not None
    assert sp.simplify(root - reference) == 0
    assert sp.simplify(expr.subs(target, root)) == 0


def test_a_pole_is_not_a_root():
    """(t - 1)/(t^2 - 1) has a linear numerator, but t = 1 is a pole: no root (sympy agrees)."""
    expr = (t - 1) / (t**2 - 1)
    assert linear_root(expr, t) is None
    assert roots(expr, t) == sp.solve(expr, t) == []
    with pytest.raises(DerivationError, match="0 closed-form solutions"):
        solve_for(expr, t, "a pole")


def test_a_root_must_be_what_the_target_is_declared_to_be():
    """A positive t cannot be -c/b: no root (sympy agrees), so the derivation says so."""
    assert linear_root(c / t + b, t) is None
    assert roots(c / t + b, t) == sp.solve(c / t + b, t) == []


def test_anything_else_goes_to_sympy():
    assert linear_root(t**2 - a, u) is None  # no target at all
    assert linear_root(u**2 - a, u) is None  # quadratic
    assert linear_root(sp.exp(u) - a, u) is None  # transcendental: sympy solves it
    assert roots(sp.exp(u) - a, u) == [sp.log(a)]
    with pytest.raises(DerivationError, match="2 closed-form solutions"):
        solve_for(u**2 - a, u, "a quadratic")


def test_sums_over_the_data_are_statistics():
    n, N = sp.symbols("n N", integer=True, positive=True)
    x, g = sp.IndexedBase("x", real=True), sp.IndexedBase("gamma", nonnegative=True)
    S, Nk = sp.Sum(g[n] * x[n], (n, 1, N)), sp.Sum(g[n], (n, 1, N))
    assert solve_for(S - u * Nk, u, "a mean") == S / Nk


def test_no_derivation_imports_sympys_unit_system():
    """sympy's solution checker imports sympy.physics.units (about 0.12 s of every cold derivation);
    the direct roots spare it for every preset and shipped family (a regression guard)."""
    code = (
        "import sys\n"
        "from emsym.spec import load_spec, preset_names\n"
        "from emsym.cache import get_derivation\n"
        "for name in preset_names():\n"
        "    get_derivation(load_spec(name), use_cache=False)\n"
        "for fam in ('poisson', 'exponential', 'bernoulli', 'multinomial', 'categorical'):\n"
        "    get_derivation(load_spec({'family': fam, 'components': 2, 'prior': {'weights': {'dirichlet': 2}}}),"
        " use_cache=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith('sympy.physics')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
