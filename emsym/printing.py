"""Notation: how emsym prints symbolic expressions as plain text and as LaTeX.

Plain text uses the names a student types (``mu_1``, ``sigma2_k``, ``gamma_n1``, ``x_n``)
and ``sum_{n=1}^{N} (...)`` for sums; LaTeX uses the textbook symbols.

>>> import sympy as sp
>>> mu, g, x = sp.IndexedBase("mu"), sp.IndexedBase("gamma"), sp.IndexedBase("x")
>>> n, N = sp.symbols("n N")
>>> e = sp.Sum(g[n, 1] * x[n], (n, 1, N)) / sp.Sum(g[n, 1], (n, 1, N))
>>> text(e)
'sum_{n=1}^{N} (x_n*gamma_n1)/sum_{n=1}^{N} (gamma_n1)'
>>> latex(sp.Symbol("sigma2") + mu[1])
'{\\\\sigma^{2}} + \\\\mu_{1}'
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.core.sympify import _sympify  # strict: sympy objects and numbers only, never text
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

__all__ = ["ROW_CHARACTERS", "Equation", "Normal", "QuadForm", "latex", "latex_rows", "text"]


def _index_text(indices) -> str:
    parts = [str(i) for i in indices]
    return "".join(parts) if all(len(p) == 1 for p in parts) else ",".join(parts)


class Equation(sp.Equality):
    """``lhs = rhs`` recorded as written.

    A derivation step states an equation; sympy's ``Eq`` would try to decide it (and does so
    again whenever a cached derivation is unpickled), which costs far more than the step.
    """

    def __new__(cls, lhs, rhs, **kwargs):
        return sp.Basic.__new__(cls, _sympify(lhs), _sympify(rhs))


class Normal(sp.Function):
    """Display-only normal density N(x | mean, variance); never evaluated numerically."""

    nargs = (3, 4)  # (x, mean, variance[, vector flag])


class QuadForm(sp.Function):
    """Display-only quadratic form u^T A^-1 u (a scalar; sympy keeps it as a 1 x 1 matrix)."""

    nargs = 2  # (u, A)


def _negative_coefficient(product: sp.MatMul) -> bool:
    """sympy's ``MatMul.could_extract_minus_sign`` without its cost: it negates the whole product
    and canonicalises it with a rule engine (about 1 ms a product; printing a K = 50 full-covariance
    derivation asked it some 25,000 times) to learn whether the numeric coefficient is negative."""
    c = product.args[0]
    return bool(c.is_Number and c.is_extended_negative)


def _negative(term: sp.Basic) -> bool:
    """A term printed with a minus sign: -mu_k, or a matrix product with a negative scalar (-N_k Lambda_k mu_k)."""
    if isinstance(term, sp.MatMul):
        return _negative_coefficient(term) or any(not a.is_Matrix and a.could_extract_minus_sign() for a in term.args)
    return term.could_extract_minus_sign()


def _negated(term: sp.Basic) -> sp.Basic:
    """-term; a matrix product negates its (first negative) scalar factor instead of being rebuilt."""
    if not isinstance(term, sp.MatMul):
        return -term
    args = list(term.args)
    i = next(i for i, a in enumerate(args) if not a.is_Matrix and a.could_extract_minus_sign())
    args[i] = -args[i]
    if args[i] == 1:
        del args[i]
    return sp.MatMul(*args) if len(args) > 1 else args[0]


def _matmul_factors(product: sp.MatMul) -> tuple[str, list]:
    """('-', the factors of -product) when the numeric coefficient is negative, else ('', the factors)."""
    args = list(product.args)
    if not _negative_coefficient(product):
        return "", args
    c = -args[0]
    return "-", (args[1:] if c == 1 else [c, *args[1:]])


def _positive_first(terms: list) -> list:
    """x_n - mu_k as a textbook writes it, not sympy's -mu_k + x_n (a stable sort: order kept otherwise)."""
    return sorted(terms, key=_negative)


def _matadd(printer, expr, plus: str, minus: str) -> str:
    """Matrix sums with positive terms first and '- A', never '+ -A'."""
    parts = []
    for i, t in enumerate(_positive_first(list(expr.args))):
        neg = _negative(t)
        term = _negated(t) if neg else t
        body = printer._print(term)
        if isinstance(term, sp.MatAdd):
            body = f"({body})"
        sign = (minus if neg else plus) if i else ("-" if neg else "")
        parts.append(sign + body)
    return "".join(parts)


class _Text(StrPrinter):
    printmethod = "_emsym_text"  # Indexed has its own _sympystr, which would win otherwise

    def _as_ordered_terms(self, expr, order=None):
        return _positive_first(super()._as_ordered_terms(expr, order=order))

    def _print_Indexed(self, expr):
        return f"{self._print(expr.base.label)}_{_index_text(expr.indices)}"

    def _print_Sum(self, expr):
        body = self._print(expr.function)
        for var, a, b in expr.limits:
            body = f"sum_{{{self._print(var)}={self._print(a)}}}^{{{self._print(b)}}} ({body})"
        return body

    def _print_factorial(self, expr):
        arg = expr.args[0]
        inner = self._print(arg)
        return f"{inner}!" if arg.is_Atom or isinstance(arg, sp.Indexed) else f"({inner})!"

    def _print_KroneckerDelta(self, expr):
        a, b = (self._print(x) for x in expr.args)
        return f"delta_{a}{b}" if len(a) == len(b) == 1 else f"delta({a}, {b})"

    def _print_Relational(self, expr):
        if isinstance(expr, sp.Eq):
            return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"
        return super()._print_Relational(expr)

    def _print_Derivative(self, expr):
        ((var, _count),) = expr.variable_count
        return f"d{self._print(expr.expr)}/d{self._print(var)}"

    def _print_Normal(self, expr):
        x, m, v = (self._print(a) for a in expr.args[:3])
        cov = f"{v}*I" if len(expr.args) == 4 else v
        return f"N({x} | {m}, {cov})"

    def _print_QuadForm(self, expr):
        u, a = (self._print(x) for x in expr.args)
        return f"({u})^T {a}^-1 ({u})"

    def _print_MatAdd(self, expr):
        return _matadd(self, expr, " + ", " - ")

    def _print_MatMul(self, expr):  # sympy's, with the cheap sign test (_negative_coefficient)
        sign, factors = _matmul_factors(expr)
        return sign + "*".join(self.parenthesize(a, PRECEDENCE["Mul"]) for a in factors)

    def _print_MatSum(self, expr):
        var, a, b = (self._print(e) for e in expr.limit)
        return f"sum_{{{var}={a}}}^{{{b}}} ({self._print(expr.function)})"

    def _print_Transpose(self, expr):
        arg = self._print(expr.arg)
        return f"{arg}^T" if expr.arg.is_symbol else f"({arg})^T"

    def _print_Inverse(self, expr):
        arg = self._print(expr.arg)
        return f"{arg}^-1" if expr.arg.is_symbol else f"({arg})^-1"

    def _print_Determinant(self, expr):
        return f"det({self._print(expr.arg)})"

    def _print_Trace(self, expr):
        return f"tr({self._print(expr.arg)})"


_GREEK_SQ = {"sigma2": r"{\sigma^{2}}"}  # braced: (sigma^2)^2 must not be a double superscript
# A variance typed as a name: s2_1 is s^2_1 and v2_k is v^2_k (sympy would print s_{21}).
_SQUARED_NAME = re.compile(r"(s|v|sigma|tau)2(?:_(\w+))?")


def _squared(name: str) -> bool:
    return _SQUARED_NAME.fullmatch(name) is not None


class _Latex(LatexPrinter):
    def _as_ordered_terms(self, expr, order=None):
        return _positive_first(super()._as_ordered_terms(expr, order=order))

    def _print_Symbol(self, expr, style="plain"):
        name = expr.name
        if name in _GREEK_SQ:
            return _GREEK_SQ[name]
        m = _SQUARED_NAME.fullmatch(name)
        if m:  # sigma2_k -> sigma^2_k, s2_1 -> s^2_1: braced, so a further power needs brackets (see _print_Pow)
            head = super()._print_Symbol(sp.Symbol(m.group(1)), style=style)
            return "{" + head + "^{2}" + (f"_{{{m.group(2)}}}" if m.group(2) else "") + "}"
        if name.startswith("hat") and len(name) > 3:  # hatmu_k -> \hat{\mu}_{k}
            inner = super()._print_Symbol(sp.Symbol(name[3:]), style=style)
            head, _, sub = inner.partition("_")
            return rf"\hat{{{head}}}" + (f"_{sub}" if sub else "")
        return super()._print_Symbol(expr, style=style)

    def _print_Indexed(self, expr):
        base = self._print(expr.base.label)
        sub = _index_text(self._print(i) for i in expr.indices)
        if base.startswith("{") and base.endswith("}"):  # {\sigma^{2}} -> {\sigma^{2}_{k}}
            return f"{base[:-1]}_{{{sub}}}}}"
        return f"{base}_{{{sub}}}"

    def _print_Pow(self, expr):
        """(sigma_k^2)^2 with brackets, never the stacked sigma^2_k^2 a double superscript gives."""
        b = expr.base
        name = b.name if isinstance(b, sp.Symbol) else str(b.base.label) if isinstance(b, sp.Indexed) else ""
        if name and _squared(name) and expr.exp.is_Integer and expr.exp > 1:
            return rf"\left({self._print(b)}\right)^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _print_KroneckerDelta(self, expr, exp=None):
        return r"\delta_{" + "".join(self._print(a) for a in expr.args) + "}"

    def _print_Normal(self, expr, exp=None):
        x, m, v = (self._print(a) for a in expr.args[:3])
        cov = rf"{v} \mathbf{{I}}" if len(expr.args) == 4 else v
        return rf"\mathcal{{N}}\left({x} \mid {m}, {cov}\right)"

    def _print_MatAdd(self, expr):
        return _matadd(self, expr, " + ", " - ")

    def _print_MatMul(self, expr):  # sympy's, with the cheap sign test and no brackets round a fraction
        sign, factors = _matmul_factors(expr)
        level = PRECEDENCE["Add"] if sign else PRECEDENCE["Mul"]  # the product's own precedence

        def factor(x):
            if isinstance(x, sp.Mul) and not isinstance(x, sp.MatMul):
                return self._print(x)
            if x.is_Rational and x.is_positive:  # \frac{1}{2} \Sigma_k, never \left(\frac{1}{2}\right) \Sigma_k
                return self._print(x)
            return self.parenthesize(x, level, False)

        return ("- " if sign else "") + " ".join(factor(x) for x in factors)

    def _print_MatSum(self, expr, exp=None):
        var, a, b = (self._print(e) for e in expr.limit)
        body = self._print(expr.function)
        if isinstance(expr.function, sp.MatAdd):
            body = rf"\left({body}\right)"
        return rf"\sum_{{{var}={a}}}^{{{b}}} {body}"

    def _print_QuadForm(self, expr, exp=None):
        u, a = (self._print(x) for x in expr.args)
        return rf"\left({u}\right)^{{T}} {a}^{{-1}} \left({u}\right)"


def text(expr: sp.Basic) -> str:
    """Plain-text form of a sympy expression in emsym's student notation."""
    return _Text({"order": "none"}).doprint(expr)


def latex(expr: sp.Basic) -> str:
    """LaTeX form of a sympy expression in textbook notation."""
    return _Latex({"order": "none"}).doprint(expr)


# An equation whose plain text is longer than this is shown a term per row: a page of about 100
# characters' width shows the three-component Q function of a 1-d mixture (about 260) in rows.
ROW_CHARACTERS = 150


def latex_rows(expr: sp.Basic, width: int = ROW_CHARACTERS) -> tuple[str, ...]:
    """A long equation ``lhs = t_1 + t_2 + ...`` as display rows: the first with ``lhs =`` and the
    first term, then one ``+ t`` / ``- t`` per row.  A term that is itself a long sum over an index of
    several terms (``sum_n (t_1 + t_2 + ...)``, Q before a MAP prior's terms) is opened on its first
    row, one inner term per row, and its bracket closed on its last.  Anything shorter or of another
    shape is one row, the expression's own LaTeX."""
    whole = latex(expr)
    if not isinstance(expr, sp.Equality) or len(text(expr)) <= width:
        return (whole,)
    printer = _Latex({"order": "none"})
    lhs, rhs = expr.args
    rows: list[str] = []

    def signed(term, first: bool, lead: str = "") -> str:
        if first:
            return lead + printer.doprint(term)
        return lead + ("- " + printer.doprint(_negated(term)) if _negative(term) else "+ " + printer.doprint(term))

    head = printer.doprint(lhs) + " = "
    outer = printer._as_ordered_terms(rhs) if isinstance(rhs, sp.Add) else [rhs]
    for i, term in enumerate(outer):
        lead = head if i == 0 else "+ "
        if isinstance(term, sp.Sum) and isinstance(term.function, sp.Add) and len(text(term)) > width:
            hole = sp.Symbol("EMSYMHOLE")
            opening = printer.doprint(sp.Sum(hole, *term.limits)).replace("EMSYMHOLE", r"\Bigg(")
            for j, inner in enumerate(printer._as_ordered_terms(term.function)):
                rows.append(signed(inner, j == 0, lead + opening if j == 0 else ""))
            rows[-1] += r" \Bigg)"
        else:
            rows.append(signed(term, i == 0, head) if i == 0 else signed(term, False))
    return tuple(rows) if len(rows) > 1 else (whole,)
