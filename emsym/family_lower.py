"""Lower a family derivation to a plan (``emsym.family_plan``): sympy in, plain data out.

Every expression of the derivation is written for a generic component k, coordinate i (or l)
and point n; lowering maps each index to an axis of the (K, d, n) layout the plan runs on
(k, j -> 0; i, l -> 1; n -> 2), each parameter to its layout, and each sum to one contraction
(a sum of a sum of terms becomes a sum per term, by linearity).
"""

from __future__ import annotations

from typing import ClassVar

import sympy as sp

from .derive import Derivation
from .family_model import FamilyModel
from .family_plan import Plan
from .family_spec import FamilySpec
from .summation import linearise

__all__ = ["lower"]


class _Lowerer:
    """sympy expression -> plan node (see ``emsym.family_plan``)."""

    AXIS: ClassVar[dict[str, int]] = {"n": 2, "i": 1, "l": 1, "j": 0, "k": 0}
    FUNCTIONS: ClassVar[dict[type, str]] = {
        sp.exp: "exp",
        sp.Abs: "abs",
        sp.loggamma: "lgamma",
        sp.factorial: "factorial",
    }

    def __init__(self, model: FamilyModel, K: int, d: int):
        self.m = model
        self.K, self.d = K, d
        self.names = {base: name for name, base in model.bases.items()}  # IndexedBase / Symbol -> name
        self.names[model.pi_] = "pi"
        self.names[model.w_fixed] = "pi"
        for name, kappa in model.kappa.items():  # linked: theta_k = kappa_k a (see FamilyCompiledModel)
            self.names[model.bases[name]] = f"{name}:link"
            self.names[kappa] = f"{name}:kappa"
        for name, (a, kappa, ell) in model.groups.items():  # linked in groups: one group's a at a time
            self.names[a] = f"{name}:link"
            self.names[kappa] = f"{name}:kappa"
            self.names[ell] = f"{name}:ell"

    def __call__(self, expr: sp.Basic) -> list:
        m = self.m
        if not expr.free_symbols and not expr.atoms(sp.Indexed):
            return ["num", float(expr)]
        if expr == m.N:
            return ["N"]
        if expr in (m.K, m.d):
            return ["num", float(self.K if expr == m.K else self.d)]
        if isinstance(expr, (sp.Symbol, sp.Indexed)):
            return self.leaf(expr)
        if isinstance(expr, (sp.Add, sp.Mul)):
            return ["add" if isinstance(expr, sp.Add) else "mul", *(self(a) for a in expr.args)]
        if isinstance(expr, sp.Pow):
            base = self(expr.base)
            if expr.exp == -1:
                return ["inv", base]
            if expr.exp == 2:
                return ["square", base]
            return ["pow", base, self(expr.exp)]
        if isinstance(expr, sp.log):
            inner = expr.args[0]
            if isinstance(inner, sp.factorial):
                return ["logfactorial", self(inner.args[0])]
            return ["log", self(inner)]
        if type(expr) in self.FUNCTIONS:
            return [self.FUNCTIONS[type(expr)], self(expr.args[0])]
        if isinstance(expr, sp.Sum):
            return self.sum(expr)
        raise TypeError(f"emsym cannot compile {type(expr).__name__}: {expr}")  # pragma: no cover

    def leaf(self, expr) -> list:
        if isinstance(expr, sp.Indexed):
            base, idx = expr.base, expr.indices
            if base == self.m.x:
                return ["x"]  # (1, 1, n) or (1, d, n)
            if base == self.m.gamma:
                return ["R"]
            name = self.names.get(base)
            if name is not None:
                if len(idx) == 2:
                    return ["param", name, "kd"]
                return ["param", name, "d" if self.m.spec.option(name) == "shared" else "k"]  # shared: p_l
        elif expr in self.names:
            return ["param", self.names[expr], "raw"]
        raise TypeError(f"emsym cannot compile the symbol {expr}")  # pragma: no cover

    def sum(self, expr: sp.Sum) -> list:
        if isinstance(expr.function, sp.Add):  # linearity: one sum (one contraction) per term
            return ["add", *(self.sum(sp.Sum(t, *expr.limits)) for t in expr.function.args)]
        axes = [self.AXIS[var.name] for var, _, _ in expr.limits]
        lengths = [[self(a), self(b)] for _, a, b in expr.limits]
        factors = [self(f) for f in sp.Mul.make_args(expr.function)]
        store = None
        if not any(self.names.get(getattr(s, "base", s)) for s in expr.atoms(sp.Indexed, sp.Symbol)):
            store = "memo" if expr.has(self.m.gamma) else "data"  # free of parameters: computed once
        return ["sum", axes, lengths, factors, store]


def _merge_sums(expr: sp.Expr, m: FamilyModel) -> sp.Expr:
    """Sums over the same range become one sum, its summand collected by data factor.

    sum_i x_ni log p_ki - sum_i x_ni log(1 - p_ki) becomes sum_i x_ni (log p_ki - log(1 - p_ki)): one
    contraction with the data (one matrix product per E-step) instead of two.  Same value.
    """
    groups: dict = {}
    rest = []
    for term in sp.Add.make_args(expr):
        coeff, body = term.as_independent(sp.Sum, as_Add=False)
        if isinstance(body, sp.Sum) and not (coeff.free_symbols & {v for v, _, _ in body.limits}):
            groups.setdefault(body.limits, []).append(coeff * body.function)
        else:
            rest.append(term)
    data = sorted({a for a in expr.atoms(sp.Indexed) if a.base == m.x}, key=str)
    merged = [sp.Sum(sp.collect(sp.expand(sp.Add(*fs)), data), *limits) for limits, fs in groups.items()]
    return sp.Add(*rest, *merged)


def lower(derivation: Derivation) -> Plan:
    """The plan of a concrete family derivation: log density, log prior (MAP-EM) and updates."""
    spec: FamilySpec = derivation.spec  # type: ignore[assignment]
    if not spec.concrete:
        raise ValueError("only a spec with a whole number of components and dimension compiles; use instantiate()")
    m: FamilyModel = derivation.model
    low = _Lowerer(m, int(spec.components), int(spec.dim))
    logf = low(_merge_sums(linearise(sp.expand(m.logf(m.k, m.n))), m))
    log_prior = low(linearise(m.log_prior)) if spec.priors else None
    updates = tuple((u.name, bool(u.numeric), low(u.expr)) for u in derivation.updates)
    return Plan(derivation.method, logf, log_prior, updates)
