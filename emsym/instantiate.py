"""A Gaussian derivation for a concrete K and d from the one derived for a general K and d.

The general derivation is done once for a generic component k (``emsym derive standard-general``,
``VVV``, ...); ``instantiate`` writes its updates out for components 1..K -- k becomes 1..K, sums over
the components j become explicit sums, d becomes a number -- and pairs them with the concrete
model.  The numbers are those of a concrete derivation (tested on every preset), and so are the
recorded steps: the model-level steps (mixture density, likelihoods, one E-step per component, Q)
are written for the K components directly -- they are constructions, not derivations -- and every
step of a generic parameter (differentiate, set to zero, solve for mu_k) is written out once per
component, k -> 1..K, with the Kronecker deltas of the generic derivative evaluated, so
``dQ/dmu_1`` reads as a per-component derivation does.  ``emsym.cache`` derives every concrete
Gaussian with a general form this way: the derivation cost no longer grows with K.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import sympy as sp

from .derive import Block, Derivation, Deriver, NoClosedForm, Step, step, with_counts
from .qfunction import MatSum
from .spec import ModelSpec

__all__ = ["instantiate"]


def _concrete_shapes(expr: sp.Basic, shapes: dict) -> sp.Basic:
    """Every d x d / d x 1 MatrixSymbol shape made concrete."""
    rep = {}
    for a in expr.atoms(sp.MatrixSymbol):
        rows, cols = (s.xreplace(shapes) if isinstance(s, sp.Basic) else s for s in a.shape)
        if (rows, cols) != a.shape:
            rep[a] = sp.MatrixSymbol(a.name, rows, cols)
    return expr.xreplace(rep) if rep else expr


def _expand_components(expr: sp.Basic, j: sp.Symbol, K: int) -> sp.Basic:
    """Sums and matrix sums over the components j = 1..K written out term by term."""

    def over_j(e) -> bool:
        return isinstance(e, (sp.Sum, MatSum)) and any(lim[0] == j for lim in _limits(e))

    def expand(e):
        names = _Names(e.function, j)
        if isinstance(e, MatSum):
            return sp.MatAdd(*[e.function.xreplace(names(c)) for c in range(1, K + 1)])
        rest = [lim for lim in e.limits if lim[0] != j]
        terms = [e.function.xreplace(names(c)) for c in _surviving(e.function, j, K)]
        return sp.Add(*[sp.Sum(t, *rest) if rest else t for t in terms if t != 0])

    while True:
        found = next((e for e in sp.preorder_traversal(expr) if over_j(e)), None)
        if found is None:
            return expr
        expr = expr.xreplace({found: expand(found)})


class _Names:
    """One component's names in an expression written for the index k (or j): the substitution
    k -> c, N_k -> N_c, Sigma_k -> Sigma_c for any c, from one walk over the expression."""

    def __init__(self, expr: sp.Basic, index: sp.Symbol):
        self.index, self.suffix = index, f"_{index.name}"
        self.symbols = [a for a in expr.atoms(sp.Symbol) if a.name.endswith(self.suffix)]
        self.matrices = [a for a in expr.atoms(sp.MatrixSymbol) if a.name.endswith(self.suffix)]

    def stem(self, a) -> str:
        return a.name[: -len(self.suffix)]

    def __call__(self, c: int | sp.Symbol) -> dict:
        rep: dict = {self.index: c}
        # the assumptions as the symbol was made (positive=True), not every fact derived from them
        # (assumptions0): Symbol('N_1', positive=True) is another symbol than one with all of those
        rep.update({a: sp.Symbol(f"{self.stem(a)}_{c}", **a.__getnewargs_ex__()[1]) for a in self.symbols})
        rep.update({a: sp.MatrixSymbol(f"{self.stem(a)}_{c}", *a.shape) for a in self.matrices})
        return rep


def _surviving(f: sp.Expr, j: sp.Symbol, K: int) -> list[int]:
    """The components j whose term of sum_j f can be non-zero: just c when f vanishes without delta(j, c)."""
    c = _only_term(f, j)
    return [int(c)] if c is not None and c.is_Integer else list(range(1, K + 1))


def _only_term(f: sp.Expr, j: sp.Symbol) -> sp.Expr | None:
    """c when f is zero unless j = c (every term of f holds delta(j, c)); otherwise None."""
    for delta in f.atoms(sp.KroneckerDelta):
        other = [a for a in delta.args if a != j]
        if j in delta.args and len(other) == 1:
            rest = f.xreplace({delta: sp.S.Zero}).replace(
                lambda e: isinstance(e, sp.Sum) and e.function == 0, lambda e: sp.S.Zero
            )
            if rest == 0:
                return other[0]
    return None


def _collapse_deltas(expr: sp.Basic, j: sp.Symbol, k: sp.Symbol) -> sp.Basic:
    """sum_j f_j with f_j zero unless j = k written as f_k, once for the generic component.

    Writing a derivative out for each component c would otherwise evaluate delta(j, c) for every
    c (sympy asks the assumptions of j - c each time); the term that survives is the same.
    """

    def collapsible(e) -> bool:
        return isinstance(e, sp.Sum) and any(lim[0] == j for lim in e.limits) and _only_term(e.function, j) == k

    def collapse(e):
        rest = [lim for lim in e.limits if lim[0] != j]
        f = e.function.xreplace(_Names(e.function, j)(k))  # N_j -> N_k, Sigma_j -> Sigma_k
        return sp.Sum(f, *rest) if rest else f

    return expr.replace(collapsible, collapse)


def _limits(e) -> list:
    return list(e.limits) if isinstance(e, sp.Sum) else [e.limit]


class _Writer:
    """Writes a generic-k expression of ``general`` for component c (or none) of the concrete model.

    Per expression, once: K and d made numbers, the deltas of component k collapsed, the names
    that hold k collected (``_Names``); per component, one substitution and the sums over j
    written out.
    """

    def __init__(self, general: Derivation, K: int, dim: int | None):
        g = general.model
        self.g, self.K = g, K
        self.shapes = {g.d: dim} if isinstance(g.d, sp.Symbol) and dim is not None else {}
        self.base = {g.K: K, **self.shapes} if isinstance(g.K, sp.Symbol) else dict(self.shapes)
        self._concrete: dict[sp.Basic, sp.Basic] = {}
        self._generic: dict[sp.Basic, tuple[sp.Basic, _Names]] = {}

    def __call__(self, expr: sp.Basic, c: int | None) -> sp.Basic:
        e = self._concrete.get(expr)
        if e is None:
            e = self._concrete[expr] = _concrete_shapes(expr.xreplace(self.base), self.shapes)
        if c is not None:
            if expr not in self._generic:
                collapsed = _collapse_deltas(e, self.g.j, self.g.k)
                self._generic[expr] = (collapsed, _Names(collapsed, self.g.k))
            generic, names = self._generic[expr]
            e = generic.xreplace(names(c))
        return _expand_components(e, self.g.j, self.K)


def _parameter_steps(
    general: Derivation, write: _Writer, deriver: Deriver, generic: set[str], solutions: dict[str, sp.Basic]
) -> None:
    """The general derivation's parameter steps, each generic one written out for k = 1..K, into ``deriver``.

    A run of steps of one generic parameter (differentiate, set to zero, solve for pi_k) becomes
    the run for pi_1, then for pi_2, ... as a per-component derivation records them; a step of the
    run that holds no k (the Lagrangian) is written once, as a model-level step.  Sums of the
    responsibilities read as counts (N_1) and, after each solve, the concrete derivation's own
    ``finish`` folds N_1 + ... + N_K into N where the solution allows it (and records that step).
    """
    k = write.g.k
    steps = [
        s
        for s in general.steps
        if not s.title.startswith("M-step update of")  # deriver.result() writes these
        and not (s.param and s.title == "Use the normalisation of the responsibilities")  # deriver.finish() does
    ]
    by_name = {p.name: p for p in deriver.m.params}
    i = next((i for i, s in enumerate(steps) if s.param is not None), len(steps))

    def add(s: Step, c: int | None, name: str | None) -> None:
        expr = with_counts(write(s.expr, c), deriver.m)
        title, text = s.title, s.text
        if c is not None:  # mu_k -> mu_2 in the title and the text ("contain mu_2"); the text's general
            title = re.sub(r"\b(\w+)_k\b", rf"\g<1>_{c}", title)  # facts (sum_n gamma_nk = N_k) stay
            text = re.sub(r"\b(?!N_k\b)(\w+)_k\b", rf"\g<1>_{c}", text)
        deriver.steps.append(step(title, text, expr, name))
        solution = solutions.get(name or "")
        if isinstance(solution, sp.Expr) and s.title.startswith("Solve for") and by_name[name].kind != "weight":
            deriver.finish(by_name[name], solution)  # N_1 + ... + N_K -> N, with its step

    while i < len(steps):
        param = steps[i].param
        end = i + 1
        while param in generic and end < len(steps) and steps[end].param == param:
            end += 1
        run = steps[i:end]
        if param in generic:
            for s in run:
                if not s.expr.has(k):
                    add(s, None, None)
            for c in range(1, write.K + 1):
                for s in run:
                    if s.expr.has(k):
                        add(s, c, f"{param[:-2]}_{c}")
        else:
            for s in run:
                add(s, None, s.param)
        i = end


def instantiate(general: Derivation, spec: ModelSpec) -> Derivation:
    """The derivation of ``spec`` (concrete K and d) from ``general`` (the same variant, general K and d).

    The concrete model writes its own model-level steps; the parameter steps and the solutions
    come from ``general``, written out per component; ordering the updates, their display forms,
    the "M-step update" steps and the notes are the concrete derivation's own last stage.
    """
    K, dim = int(spec.components), None if spec.general_d else int(spec.dim)
    write = _Writer(general, K, dim)
    deriver = Deriver(spec)  # mixture density, likelihoods, E-steps, Q: written for the K components
    deriver.model_steps()
    generic = {u.name for u in general.updates if u.name.endswith("_k")}
    solutions: dict[str, Any] = {}
    for u in general.updates:
        for c in range(1, K + 1) if u.name in generic else [None]:
            name = u.name[:-2] + f"_{c}" if c is not None else u.name
            if u.block:  # the scatter matrices of every component
                solutions[name] = Block(u.block, sp.Tuple(*[write(u.expr[0], j) for j in range(1, K + 1)]))
            elif u.numeric:
                solutions[name] = NoClosedForm(write(u.expr, c))
            else:
                solutions[name] = write(u.expr, c)
    _parameter_steps(general, write, deriver, generic, solutions)
    deriver.solutions = {**solutions, **deriver.solutions}  # finish() may have folded N_1 + ... + N_K into N
    d = deriver.result()
    shown = "d (general)" if dim is None else dim
    note = f"Derived once for a generic component k and written out for K = {K}, d = {shown}."
    return dataclasses.replace(d, notes=(*d.notes, note))
