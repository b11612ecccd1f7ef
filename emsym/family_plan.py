"""The compiled plan of a family derivation: plain data, and the numpy that runs it (no sympy).

``emsym.family_lower`` turns a derivation's sympy expressions (the log density, the log prior,
each M-step update) into a *plan*: nested lists of tags, numbers and names that JSON can store.
This module builds numpy closures from a plan.  The derivation cache keeps the plan beside the
derivation (as JSON, never unpickled), so ``emsym run`` on a cached model neither imports sympy
nor reads the derivation: the runner's work is the plan's.

Every value is an array broadcastable to (K, d, n) -- components on axis 0, coordinates on axis
1, points on axis 2 -- so each expression is evaluated once for all components, and a sum
reduces its axes.  A sum of a product of arrays is one ``np.einsum`` contraction (BLAS for
sum_n gamma_nk x_nl and sum_l x_nl log p_kl): a Bernoulli E-step is one matrix product.  Sums
that hold no parameter are memoised: over the data for the whole run (log x_n!), over the
responsibilities for one M-step (N_k).

The nodes (``node[0]`` is the tag):

=====================  =======================================================================
``["num", v]``         the number v
``["N"]``              the number of points
``["x"]``, ``["R"]``   the data (1, d, n) and the responsibilities (K, 1, n)
``["param", name, l]`` a parameter value laid out by l: ``kd`` (one per component and coordinate),
                       ``k`` (one per component), ``d`` (one per coordinate, shared), ``raw``
``["add", a, ...]``    and ``["mul", a, ...]``
``["pow", a, b]``      and ``["inv", a]``, ``["square", a]``
``["log", a]``         and ``exp``, ``abs``, ``lgamma``, ``factorial``, ``logfactorial``
``["sum", axes, lengths, factors, store]``  the sum over ``axes`` (0, 1, 2) of the product of
                       ``factors``; ``lengths`` the [lo, hi] nodes of each range (a summand constant
                       along an axis is multiplied by its length); ``store`` ``data``, ``memo`` or None
=====================  =======================================================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PLAN_FORMAT", "Plan", "as3", "build", "log_factorial", "product", "total"]

Fn = Callable[[dict[str, Any]], Any]

PLAN_FORMAT = "emsym-plan-1"


@dataclass(frozen=True)
class Plan:
    """What runs a family model: its log density, log prior and M-step updates as plan nodes.

    ``updates`` are (parameter name, numeric, node) in the derivation's order; a numeric update's
    node is dQ/dtheta_k, whose root the runner finds (no closed form).
    """

    method: str
    logf: list
    log_prior: list | None
    updates: tuple[tuple[str, bool, list], ...]

    def to_json(self) -> bytes:
        body = {
            "format": PLAN_FORMAT,
            "method": self.method,
            "logf": self.logf,
            "log_prior": self.log_prior,
            "updates": [list(u) for u in self.updates],
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> Plan:
        """The plan stored by ``to_json``; ValueError for anything else (the caller re-derives)."""
        try:
            body = json.loads(payload)
            if body["format"] != PLAN_FORMAT:
                raise ValueError(f"plan format {body['format']!r}")
            updates = tuple((str(n), bool(numeric), node) for n, numeric, node in body["updates"])
            return cls(str(body["method"]), body["logf"], body["log_prior"], updates)
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not an emsym plan: {exc}") from exc


def as3(v) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    return a.reshape((1,) * (3 - a.ndim) + a.shape) if a.ndim < 3 else a


_LAYOUT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "kd": lambda v: v[:, :, None],
    "d": lambda v: v[None, :, None],
    "k": lambda v: v[:, None, None],
    "raw": lambda v: v,
}


def _unary(f: Callable) -> Callable[[list], Fn]:
    def make(node: list) -> Fn:
        arg = build(node[1])
        return lambda env: f(arg(env))

    return make


def _num(node: list) -> Fn:
    value = float(node[1])
    return lambda env: value


def _param(node: list) -> Fn:
    name, layout = node[1], _LAYOUT[node[2]]
    return lambda env: layout(env["params"][name])


def total(parts: list[Fn]) -> Fn:
    """One closure for the sum of the parts' values (also the Gaussian compiler's, ``emsym.compile``)."""
    first, rest = parts[0], parts[1:]
    return lambda env: sum((p(env) for p in rest), first(env))


def product(parts: list[Fn]) -> Fn:
    """One closure for the product of the parts' values (also the Gaussian compiler's)."""
    first, rest = parts[0], parts[1:]

    def mul(env):
        out = first(env)
        for p in rest:
            out = out * p(env)
        return out

    return mul


def _add(node: list) -> Fn:
    return total([build(a) for a in node[1:]])


def _mul(node: list) -> Fn:
    return product([build(a) for a in node[1:]])


def _pow(node: list) -> Fn:
    base, power = build(node[1]), build(node[2])
    return lambda env: np.power(base(env), power(env))


def _sum(node: list) -> Fn:
    _, axes, lengths, factors, store = node
    spans = [(build(lo), build(hi)) for lo, hi in lengths]
    parts = [build(f) for f in factors]

    def fn(env):
        scalars, arrays = 1.0, []
        for p in parts:
            v = p(env)
            if np.ndim(v) == 0:
                scalars = scalars * v
            else:
                arrays.append(as3(v))
        for ax, (lo, hi) in zip(axes, spans):  # a summand constant along an axis: times the range
            if not any(a_.shape[ax] != 1 for a_ in arrays):
                scalars = scalars * (hi(env) - lo(env) + 1)
        if not arrays:
            return scalars
        out = _contract(arrays, [ax for ax in axes if any(a_.shape[ax] != 1 for a_ in arrays)])
        return out if scalars == 1.0 else scalars * out  # no pass over the array for a factor of 1

    if store is None:
        return fn
    key = json.dumps(node)

    def memo(env):  # once per store: the data (the whole run) or one M-step
        cache = env[store]
        if key not in cache:
            cache[key] = fn(env)
        return cache[key]

    return memo


def _contract(arrays: list[np.ndarray], axes: list[int]) -> np.ndarray:
    """Sum over ``axes`` of the product of (K|1, d|1, n|1) arrays: one BLAS product for two operands
    (sum_n gamma_nk x_nl, sum_l x_nl log p_kl), otherwise one einsum contraction."""
    if len(arrays) == 1:
        return arrays[0].sum(axis=tuple(axes), keepdims=True) if axes else arrays[0]
    if not axes:
        out = arrays[0]
        for a in arrays[1:]:
            out = out * a
        return out
    subs, ops, present = [], [], set()
    for a in arrays:
        keep = [ax for ax in range(3) if a.shape[ax] != 1]
        ops.append(a.reshape([a.shape[ax] for ax in keep]))
        subs.append(keep)
        present |= set(keep)
    out_axes = sorted(present - set(axes))
    res = _product(ops, subs, axes) if len(ops) == 2 else None
    if res is None:
        letters = "abc"
        spec = ",".join("".join(letters[ax] for ax in s) for s in subs) + "->" + "".join(letters[ax] for ax in out_axes)
        res = np.einsum(spec, *ops, optimize=len(ops) > 2 or "greedy")
    shape = [1, 1, 1]
    for ax, size in zip(out_axes, res.shape):
        shape[ax] = size
    return np.reshape(res, shape)


def _product(ops: list[np.ndarray], subs: list[list[int]], axes: list[int]) -> np.ndarray | None:
    """Two operands whose common axes are all summed: ``np.tensordot`` (a matrix product), its axes in
    order; None when an axis is common but kept (a batch axis -- einsum does that)."""
    (A, B), (sa, sb) = ops, subs
    common = [ax for ax in sa if ax in sb]
    if any(ax not in axes for ax in common):
        return None
    for ax in [ax for ax in sa if ax in axes and ax not in sb]:  # summed in one operand only
        A, sa = A.sum(axis=sa.index(ax)), [a for a in sa if a != ax]
    for ax in [ax for ax in sb if ax in axes and ax not in sa]:
        B, sb = B.sum(axis=sb.index(ax)), [b for b in sb if b != ax]
    res = np.tensordot(A, B, axes=([sa.index(ax) for ax in common], [sb.index(ax) for ax in common]))
    kept = [ax for ax in sa if ax not in common] + [ax for ax in sb if ax not in common]
    return res.transpose(sorted(range(len(kept)), key=kept.__getitem__))


def log_factorial(v) -> np.ndarray:
    """log(v!) for whole numbers v >= 0 (the data of a count family): a table of cumulative logs."""
    a = np.asarray(v, dtype=float)
    top = int(a.max(initial=0))
    if np.all(a == np.floor(a)) and a.min(initial=0) >= 0 and top <= 10_000_000:
        table = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, top + 1, dtype=float)))])
        return table[a.astype(np.int64)]
    return np.vectorize(lambda t: math.lgamma(t + 1), otypes=[float])(a)


def _lgamma(a):
    return np.vectorize(math.lgamma, otypes=[float])(a)


_BUILDERS: dict[str, Callable[[list], Fn]] = {
    "num": _num,
    "N": lambda node: lambda env: env["X"].shape[2],
    "x": lambda node: lambda env: env["X"],
    "R": lambda node: lambda env: env["R"],
    "param": _param,
    "add": _add,
    "mul": _mul,
    "pow": _pow,
    "inv": _unary(lambda a: 1.0 / a),
    "square": _unary(np.square),
    "log": _unary(np.log),
    "exp": _unary(np.exp),
    "abs": _unary(np.abs),
    "lgamma": _unary(_lgamma),
    "factorial": _unary(lambda a: np.exp(log_factorial(a))),
    "logfactorial": _unary(log_factorial),
    "sum": _sum,
}


def build(node: list) -> Fn:
    """The numpy closure of a plan node: env = {X (1, d, n), R (K, 1, n), params, memo, data} -> array."""
    try:
        make = _BUILDERS[node[0]]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"not a plan node: {str(node)[:80]}") from None
    return make(node)
