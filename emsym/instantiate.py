"""A Gaussian derivation for a concrete K and d from the one derived for a general K and d.

The general derivation is done once for a generic component k (``emsym derive standard-general``,
``VVV``, ...); ``instantiate`` writes its updates out for components 1..K -- k becomes 1..K, sums over
the components j become explicit sums, d becomes a number -- and pairs them with the concrete
model.  The numbers are those of a concrete derivation (tested on every preset); the recorded steps
stay the generic ones.  ``emsym select`` uses it, so a new K costs no derivation.
"""

from __future__ import annotations

import re

import sympy as sp

from .derive import Derivation, Update
from .qfunction import MatSum, SymbolicModel
from .spec import ModelSpec

__all__ = ["instantiate"]


def _rename(expr: sp.Basic, old: str, new: str, shapes: dict) -> sp.Basic:
    """MatrixSymbols named *_old -> *_new, and every d x d / d x 1 shape made concrete."""
    rep = {}
    for a in expr.atoms(sp.MatrixSymbol):
        name = re.sub(rf"_{old}$", f"_{new}", a.name) if old else a.name
        rows, cols = (s.xreplace(shapes) if isinstance(s, sp.Basic) else s for s in a.shape)
        if name != a.name or (rows, cols) != a.shape:
            rep[a] = sp.MatrixSymbol(name, rows, cols)
    return expr.xreplace(rep) if rep else expr


def _expand_components(expr: sp.Basic, j: sp.Symbol, K: int, shapes: dict) -> sp.Basic:
    """Sums and matrix sums over the components j = 1..K written out term by term."""

    def over_j(e) -> bool:
        return isinstance(e, (sp.Sum, MatSum)) and any(lim[0] == j for lim in _limits(e))

    def expand(e):
        if isinstance(e, MatSum):
            return sp.MatAdd(*[_rename(e.function.xreplace({j: c}), "j", str(c), shapes) for c in range(1, K + 1)])
        rest = [lim for lim in e.limits if lim[0] != j]
        terms = [_rename(e.function.xreplace({j: c}), "j", str(c), shapes) for c in range(1, K + 1)]
        return sp.Add(*[sp.Sum(t, *rest) if rest else t for t in terms])

    while True:
        found = [e for e in sp.preorder_traversal(expr) if over_j(e)]
        if not found:
            return expr
        expr = expr.xreplace({found[0]: expand(found[0])})


def _limits(e) -> list:
    return list(e.limits) if isinstance(e, sp.Sum) else [e.limit]


def instantiate(general: Derivation, spec: ModelSpec) -> Derivation:
    """The derivation of ``spec`` (concrete K and d) from ``general`` (the same variant, general K and d)."""
    g = general.model
    K, dim = int(spec.components), int(spec.dim)
    m = SymbolicModel(spec)
    shapes = {g.d: dim} if isinstance(g.d, sp.Symbol) else {}
    base = {g.K: K, **shapes} if isinstance(g.K, sp.Symbol) else dict(shapes)
    by_name = {p.name: p for p in m.params}
    updates: list[Update] = []
    generic = {u.name for u in general.updates if u.name.endswith("_k")}

    def concrete(expr, c):
        e = expr.xreplace(base)
        if c is not None:
            e = _rename(e.xreplace({g.k: c}), "k", str(c), shapes)
        e = _rename(e, "", "", shapes)
        return _expand_components(e, g.j, K, shapes)

    for u in general.updates:
        comps = list(range(1, K + 1)) if u.name in generic else [None]
        for c in comps:
            name = u.name[:-2] + f"_{c}" if c is not None else u.name
            uses = tuple(x[:-2] + f"_{c}" if x in generic and c is not None else x for x in u.uses)
            if u.block:  # the scatter matrices of every component
                expr = sp.Tuple(*[concrete(u.expr[0], comp) for comp in range(1, K + 1)])
            else:
                expr = concrete(u.expr, c)
            updates.append(Update(by_name[name], expr, expr, uses, u.conditional, u.numeric, u.block))
    notes = (*general.notes, f"Instantiated for K = {K}, d = {dim} from the derivation for a generic component k.")
    return Derivation(spec, m, general.steps, tuple(updates), general.method, notes)
