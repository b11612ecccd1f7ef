"""emsym's printers against sympy's own: matrix products print the same, at a fraction of the cost."""

from __future__ import annotations

import pytest
import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from emsym.printing import _Latex, _negated, _negative, _Text, latex, text

d = 2
L, S, W = (sp.MatrixSymbol(n, d, d) for n in ("Lambda_1", "Sigma_1", "W_1"))
mu, m0 = sp.MatrixSymbol("mu_1", d, 1), sp.MatrixSymbol("m_0", d, 1)
N1, v0 = sp.Symbol("N_1", positive=True), sp.Symbol("v0", positive=True)

# products as sympy builds them (canonical: one scalar coefficient first), as the derivation's are
PRODUCTS = [
    p.doit()
    for p in (
        sp.MatMul(L, mu),
        sp.MatMul(-1, L, mu),
        sp.MatMul(sp.Rational(-1, 2), L, W),
        sp.MatMul(-N1, L, mu),
        sp.MatMul(-2, N1, sp.Transpose(mu), L),
        sp.MatMul(-1, sp.MatAdd(W, S), L),
        sp.MatMul(1 / v0, sp.Inverse(sp.MatAdd(sp.Identity(d) / v0, N1 * L)), m0),
        -N1 * L * (mu - m0),
    )
]


@pytest.mark.parametrize("expr", PRODUCTS, ids=range(len(PRODUCTS)))
def test_a_matrix_product_prints_as_sympy_prints_it(expr):
    """Each printer's own product rule against sympy's, which the cheap sign test replaces."""
    assert _Text({"order": "none"})._print(expr) == StrPrinter._print_MatMul(_Text({"order": "none"}), expr)
    assert _Latex({"order": "none"})._print(expr) == LatexPrinter._print_MatMul(_Latex({"order": "none"}), expr)


@pytest.mark.parametrize("expr", PRODUCTS, ids=range(len(PRODUCTS)))
def test_a_negated_product_is_sympys_negation(expr):
    if not _negative(expr):
        return
    assert text(_negated(expr)) == text(-expr)
    assert latex(_negated(expr)) == latex(-expr)
    assert (_negated(expr) + expr).doit() == sp.ZeroMatrix(*expr.shape)


def test_a_fraction_times_a_matrix_has_no_brackets_in_latex():
    """sympy brackets a fraction times a matrix in LaTeX (1/2 in \\left( \\right)); a textbook does not."""
    half = sp.MatMul(sp.Rational(1, 2), sp.Inverse(L))
    assert latex(half) == r"\frac{1}{2} \Lambda_{1}^{-1}"
    assert LatexPrinter._print_MatMul(_Latex({"order": "none"}), half) == r"\left(\frac{1}{2}\right) \Lambda_{1}^{-1}"
    assert text(half) == "(1/2)*Lambda_1^-1"


def test_a_matrix_sum_puts_positive_terms_first():
    assert text(sp.MatMul(-1, L, mu) + W * mu) == "W_1*mu_1 - Lambda_1*mu_1"
    assert latex(sp.MatMul(sp.Rational(-1, 2), W) + S) == r"\Sigma_{1} - \frac{1}{2} W_{1}"
    assert latex(sp.MatMul(-N1, L, mu) + W * mu) == r"W_{1} \mu_{1} - N_{1} \Lambda_{1} \mu_{1}"
