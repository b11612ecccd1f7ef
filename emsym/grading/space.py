"""Where answers are compared: the sample points, and evaluation of a tree at them.

Two kinds of question, one interface (``values(tree) -> flat array``):

- **Scalar** questions name every quantity (``gamma_k1 x_1 + gamma_k2 x_2``).  Each name is
  sampled on its domain; a sum over a written range (``sum_{n=1}^{2} gamma_kn x_n``) is written out.
- **Indexed** questions are general (``sum_n gamma_nk x_n / N_k``).  The indices are instantiated:
  for several sizes (N, K) = (4, 2), (6, 3), (9, 4) every indexed name gets a random table --
  ``x_n`` a vector of N data, ``gamma_nk`` an N x K matrix whose rows sum to 1, ``N_k`` the
  column sums of gamma -- and both expressions are evaluated for every value of their free
  index (k).  A sum binds its index (``sum_i gamma_ik x_i`` equals ``sum_n gamma_nk x_n``);
  an index left unbound, or one the question does not have, is refused with a message.

Sampling domains (overridable per name): *real* (data, means) on both signs over several
scales -- 60% uniform on (-3, 3), 40% +-10^u with u uniform on (-2, 3) --, *positive*
(variances, counts) 60% uniform on (0.5, 3) and 40% 10^u, *unit* (weights, probabilities) on
(0.05, 0.95) with 30% within 10^-4..10^-1 of an edge.  Side conditions are definitions
(``N_k = sum_n gamma_nk``) or normalisations (``sum_k gamma_nk = 1``); responsibilities
(gamma, r, resp, tau with a point and a component index) and weights (pi_k) are normalised
over the component index, and ``N_k`` is the column sum of the responsibilities, unless the
question says otherwise.

Evaluation is vectorised: a value has shape (samples, slot, slot, ...), one axis per index in
scope (the free indices first, then one per nesting level of sums), size 1 where it does not
depend on that index.  ``mp_values`` evaluates the same tree at chosen sample rows with mpmath
at 50 significant digits, to settle a disagreement that may be floating-point cancellation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import GraderError
from .parser import CONSTANTS, children, to_text

__all__ = ["DEFAULT_INDICES", "IndexedSpace", "ScalarSpace", "SpaceError", "draw", "evaluate"]

DEFAULT_INDICES = {"n": "N", "i": "N", "m": "N", "k": "K", "j": "K", "l": "K"}
SIZES = {"N": (4, 6, 9), "K": (2, 3, 4)}
OTHER_SIZES = (2, 3, 5)
EXPAND_LIMIT = 60  # terms of one written-out sum in a scalar question
RESPONSIBILITY_BASES = {"gamma", "r", "resp", "tau", "w", "p"}
WEIGHT_BASES = {"pi", "w", "alpha", "phi"}
MP_DIGITS = 50


class SpaceError(ValueError):
    """An answer that cannot be evaluated in this question's space (a student-facing message)."""


# -- domains -----------------------------------------------------------------------------
_POSITIVE = {"sigma", "sigma2", "s", "s2", "var", "v", "n", "N", "nk", "Nk", "K", "d", "tau", "lambda2", "det", "Sigma"}
_UNIT = {"pi", "theta", "gamma", "g", "r", "w", "p", "q", "alpha", "phi", "tau_", "resp", "omega"}


def base_of(name: str) -> str:
    b = name.split("_", 1)[0]
    return b[3:] if b.startswith("hat") and len(b) > 3 else b


def domain_of(name: str) -> str:
    """'positive', 'unit' or 'real', guessed from the name (overridable per grader)."""
    b = base_of(name)
    if b in _UNIT:
        return "unit"
    if b in _POSITIVE or b.startswith("sigma"):
        return "positive"
    return "real"


def draw(rng: np.random.Generator, domain: str, size, wide: float | None = None) -> np.ndarray:
    """Sample a domain on several scales (see the module docstring); ``wide`` stretches the
    large-scale part to +-10^wide (the adversarial re-check of an accepted answer)."""
    size = tuple(np.atleast_1d(size))
    pick = rng.uniform(size=size)
    if domain == "unit":
        edge = 10.0 ** rng.uniform(-4, -1, size)
        near = np.where(rng.uniform(size=size) < 0.5, edge, 1 - edge)
        return np.where(pick < 0.7, rng.uniform(0.05, 0.95, size), near)
    plain = rng.uniform(0.5, 3.0, size) if domain == "positive" else rng.uniform(-3.0, 3.0, size)
    if wide is None:
        mag = 10.0 ** rng.uniform(-2.0, 3.0, size)
        share = 0.6
    else:  # half tiny to huge, half near the top of the range
        low = rng.uniform(-6.0, wide, size)
        high = rng.uniform(max(wide - 3.0, 0.0), wide, size)
        mag = 10.0 ** np.where(rng.uniform(size=size) < 0.5, low, high)
        share = 0.25
    if domain != "positive":
        mag = mag * np.where(rng.uniform(size=size) < 0.5, -1.0, 1.0)
    return np.where(pick < share, plain, mag)


# -- evaluation --------------------------------------------------------------------------
_NP = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}


def _mp_fns():
    import mpmath

    nan = mpmath.mpf("nan")

    def real(f):
        def g(v):
            try:
                r = f(v)
            except (ZeroDivisionError, ValueError, OverflowError):
                return nan
            return r if isinstance(r, mpmath.mpf) else nan

        return np.frompyfunc(g, 1, 1)

    def div(a, b):
        return a / b if b != 0 else nan

    def power(a, b):
        try:
            r = a**b
        except (ZeroDivisionError, ValueError, OverflowError):
            return nan
        return r if isinstance(r, mpmath.mpf) else nan

    return {
        "exp": real(mpmath.exp),
        "log": real(lambda v: mpmath.log(v) if v > 0 else nan),
        "sqrt": real(lambda v: mpmath.sqrt(v) if v >= 0 else nan),
        "abs": real(abs),
        "/": np.frompyfunc(div, 2, 1),
        "^": np.frompyfunc(power, 2, 1),
        "num": lambda v: mpmath.mpf(v),
        "const": lambda c: mpmath.pi if c == "pi" else mpmath.e,
    }


class _Eval:
    """Evaluate a tree; ``lookup(name, bindings)`` gives a name's value, ``bigop`` a sum/product."""

    def __init__(self, lookup, bigop, mp: bool = False):
        self.lookup, self.bigop, self.mp = lookup, bigop, mp
        self.fn = _mp_fns() if mp else None

    def __call__(self, tree: tuple, bind: dict) -> Any:
        kind = tree[0]
        fn = self.fn
        if kind == "num":
            return fn["num"](tree[2]) if fn else np.float64(tree[1])
        if kind == "var":
            return self.lookup(tree[1], bind)
        if kind == "const":
            return fn["const"](tree[1]) if fn else np.float64(CONSTANTS[tree[1]])
        if kind == "neg":
            return -self(tree[1], bind)
        if kind == "call":
            return (fn or _NP)[tree[1]](self(tree[2], bind))
        if kind == "big":
            return self.bigop(tree, bind, self)
        if kind == "=":
            return self(tree[1], bind) - self(tree[2], bind)
        a, b = self(tree[1], bind), self(tree[2], bind)
        if kind == "+":
            return a + b
        if kind == "-":
            return a - b
        if kind == "*":
            return a * b
        if fn:
            return fn[kind](a, b)
        if kind == "/":
            return a / b
        return np.power(a, b)


def evaluate(tree: tuple, env: dict) -> Any:
    """Evaluate a tree of named scalars (or arrays) with numpy; 1/0 is inf, never an exception."""

    def no_bigop(t, bind, ev):
        raise SpaceError(f"cannot evaluate {to_text(t)} here")

    return _Eval(lambda name, bind: env[name], no_bigop)(tree, {})


def _all_names(tree: tuple) -> set:
    if tree[0] == "var":
        return {tree[1]}
    out: set = set()
    for c in children(tree):
        out |= _all_names(c)
    return out


def nesting(tree: tuple) -> int:
    """How deeply sums and products nest in a tree."""
    inner = max((nesting(c) for c in children(tree)), default=0)
    return inner + (tree[0] == "big")


_TO_MP: list = []


def _mp_array(a) -> np.ndarray:
    """A float array as an object array of mpmath numbers (exact: a float is a binary fraction)."""
    if not _TO_MP:
        import mpmath

        _TO_MP.append(np.frompyfunc(mpmath.mpf, 1, 1))
    out = _TO_MP[0](np.asarray(a, dtype=float))
    return out if isinstance(out, np.ndarray) else np.array(out, dtype=object)


# -- scalar questions ----------------------------------------------------------------------
def substitute_index(tree: tuple, letter: str, value: int) -> tuple:
    """Write one term of a sum: the index letter in every subscript becomes the number."""
    kind = tree[0]
    if kind == "var":
        name = tree[1]
        if "_" in name:
            base, sub = name.split("_", 1)
            if letter in sub:
                return ("var", f"{base}_{sub.replace(letter, str(value))}")
        return tree
    if kind == "big":
        if tree[2] == letter:  # an inner sum rebinds the letter
            return tree
        return (*tree[:5], substitute_index(tree[5], letter, value))
    if kind in ("+", "-", "*", "/", "^", "="):
        return (kind, substitute_index(tree[1], letter, value), substitute_index(tree[2], letter, value))
    if kind == "neg":
        return ("neg", substitute_index(tree[1], letter, value))
    if kind == "call":
        return ("call", tree[1], substitute_index(tree[2], letter, value))
    return tree


def _written_range(body: tuple, letter: str, known) -> int | None:
    """How far a sum without bounds runs in a question that writes its terms out: the largest m such
    that every name of the body with ``letter`` in its subscript exists for 1..m (x_1..x_3, N_1, N_2)."""
    subs = {n for n in _all_names(body) if "_" in n and letter in n.split("_", 1)[1]}
    if not subs:
        return None
    m = 0
    while m < EXPAND_LIMIT and all(
        f"{n.split('_', 1)[0]}_{n.split('_', 1)[1].replace(letter, str(m + 1))}" in known for n in subs
    ):
        m += 1
    return m or None


def expand(tree: tuple, known=frozenset()) -> tuple:
    """Write out every sum and product over a written range (scalar questions); a sum without bounds
    runs over the terms the question names (``sum_j pi_j N_j`` with pi_1, pi_2, N_1, N_2: j = 1, 2)."""
    kind = tree[0]
    if kind == "big":
        _, op, letter, low, high, body = tree
        if high is None and low in (None, 1):
            high, low = _written_range(body, letter, known), 1
        if not isinstance(high, int) or not isinstance(low, int):
            raise SpaceError(
                f"this question writes its terms out one by one: give the {op}'s range as numbers, e.g. "
                f"{op}_{{{letter}=1}}^{{3}}, or write the terms out"
            )
        if high - low + 1 > EXPAND_LIMIT:
            raise SpaceError(f"the {op} over {letter} has more than {EXPAND_LIMIT} terms")
        if high < low:
            return ("num", 0.0 if op == "sum" else 1.0, "0" if op == "sum" else "1")
        terms = [expand(substitute_index(body, letter, v), known) for v in range(low, high + 1)]
        out = terms[0]
        for t in terms[1:]:
            out = ("+" if op == "sum" else "*", out, t)
        return out
    if kind in ("+", "-", "*", "/", "^", "="):
        return (kind, expand(tree[1], known), expand(tree[2], known))
    if kind == "neg":
        return ("neg", expand(tree[1], known))
    if kind == "call":
        return ("call", tree[1], expand(tree[2], known))
    return tree


class ScalarNames:
    """The names of a scalar question, and the same names with a bound index in their subscript:
    ``pi_j`` reads where the question has ``pi_1, pi_2`` (inside ``sum_j``), ``gamma_nk`` where it has
    ``gamma_1k, gamma_2k``.  Whether the index is bound is checked when the sum is written out."""

    def __init__(self, listed, indices=DEFAULT_INDICES):
        import re

        self.listed = frozenset(listed)
        self._indices = indices
        self._re = re
        self._seen: dict = {}

    def __contains__(self, name) -> bool:
        if name in self.listed:
            return True
        if not isinstance(name, str) or "_" not in name:
            return False
        if name not in self._seen:
            base, sub = name.split("_", 1)
            if not any(c in self._indices for c in sub) or len(self._seen) > 4096:
                return False
            pat = (
                self._re.escape(base)
                + "_"
                + "".join(f"[0-9{c}]" if c in self._indices else self._re.escape(c) for c in sub)
            )
            rx = self._re.compile(pat)
            self._seen[name] = any(rx.fullmatch(n) for n in self.listed)
        return self._seen[name]

    def __iter__(self):
        return iter(sorted(self.listed))


@dataclass
class ScalarSpace:
    """Named scalars sampled on their domains (``env``: name -> array of samples)."""

    env: dict
    samples: int

    indexed = False

    def prepare(self, tree: tuple) -> tuple:
        return expand(tree, self.env.keys()) if nesting(tree) else tree

    def values(self, tree: tuple) -> np.ndarray:
        try:
            with np.errstate(all="ignore"):
                v = evaluate(tree, self.env)
        except KeyError as exc:  # a written-out sum reached a term the question does not have (x_4 of three)
            raise SpaceError(f"{exc.args[0]} is not one of this question's names") from None
        return np.broadcast_to(np.asarray(v, dtype=float), (self.samples,))

    def mp_values(self, tree: tuple, rows: np.ndarray) -> np.ndarray:
        env = {n: _mp_array(np.broadcast_to(v, (self.samples,))[rows]) for n, v in self.env.items()}

        def no_bigop(t, bind, ev):  # pragma: no cover - prepared trees have no sums
            raise SpaceError("unexpected sum")

        out = _Eval(lambda name, bind: env[name], no_bigop, mp=True)(tree, {})
        return np.broadcast_to(np.asarray(out, dtype=object), (len(rows),))


# -- indexed questions -----------------------------------------------------------------------
@dataclass(frozen=True)
class Ref:
    """How a name reads in an indexed question: a table (base) and its subscript positions."""

    base: str
    positions: tuple  # one entry per table axis: an index letter or a 1-based integer


@dataclass
class _Config:
    sizes: dict  # size name -> value
    tables: dict  # base -> array (samples, *axes)
    scalars: dict  # opaque name -> array (samples,)


@dataclass
class IndexedSpace:
    """General questions: indices instantiated at several sizes (see the module docstring)."""

    kinds: dict  # base -> tuple of size names, one per axis ("N", "K")
    domains: dict  # base or opaque name -> domain
    indices: dict  # letter -> size name
    free: tuple  # the expected answer's free index letters, in slot order
    configs: list = field(default_factory=list)
    samples: int = 24
    opaque: set = field(default_factory=set)
    definitions: list = field(default_factory=list)
    normalisations: list = field(default_factory=list)

    indexed = True

    # -- reading names -----------------------------------------------------------------
    def ref(self, name: str) -> Ref | None:
        """The table a name refers to, or None for an opaque scalar (or size) name."""
        if "_" not in name:
            return None
        base, sub = name.split("_", 1)
        if base not in self.kinds:
            return None
        axes = self.kinds[base]
        if len(sub) != len(axes) or not all(c.isdigit() or c in self.indices for c in sub):
            return None
        letters = [c for c in sub if not c.isdigit()]
        if not letters:
            return Ref(base, tuple(int(c) for c in sub))
        # the letters' kinds must fill the table's axes; the order as written where kinds repeat
        slots: list = [None] * len(axes)
        for pos, c in enumerate(sub):
            if c.isdigit():
                slots[pos] = int(c)
        for c in letters:
            kind = self.indices[c]
            here = sub.index(c)
            if slots[here] is None and axes[here] == kind:
                slots[here] = c
                continue
            free_axes = [a for a in range(len(axes)) if slots[a] is None and axes[a] == kind]
            if not free_axes:
                return None
            slots[free_axes[0]] = c
        if any(s is None for s in slots):
            return None
        return Ref(base, tuple(slots))

    def knows(self, name: str) -> bool:
        return name in self.opaque or name in self.sizes_names() or self.ref(name) is not None

    def sizes_names(self) -> set:
        return set(self.indices.values())

    def check(self, tree: tuple) -> None:
        """Refuse unbound or unknown indices and bad sum ranges, with a student-facing message."""
        self._check(tree, set(self.free), top=True)

    def _check(self, tree: tuple, bound: set, top: bool = False) -> None:
        kind = tree[0]
        if kind == "var":
            ref = self.ref(tree[1])
            if ref is None:
                return
            letters = [p for p in ref.positions if isinstance(p, str)]
            if len(set(letters)) != len(letters):
                raise SpaceError(f"an index appears twice in {tree[1]}")
            loose = [c for c in letters if c not in bound]
            if loose:
                about = f"; this answer is about {', '.join(self.free)}" if self.free else ""
                raise SpaceError(
                    f"the index {loose[0]} in {tree[1]} is not bound by a sum (write sum_{loose[0]} ...){about}"
                )
            return
        if kind == "big":
            _, op, letter, low, high, body = tree
            if letter not in self.indices:
                known = ", ".join(f"{c} (1..{s})" for c, s in sorted(self.indices.items()))
                raise SpaceError(f"unknown index {letter!r} in the {op}; the indices are {known}")
            size = self.indices[letter]
            if low is not None and low != 1:
                raise SpaceError(
                    f"the {op} over {letter} should start at 1 ({letter} runs over 1..{size}), not at {low}"
                )
            if high is not None and high != size and not isinstance(high, int):
                raise SpaceError(
                    f"the {op} over {letter} should end at {size} ({letter} runs over 1..{size}), not at {high}"
                )
            self._check(body, bound | {letter})
            return
        for c in children(tree):
            self._check(c, bound)

    # -- sampling --------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, definitions: list, normalisations: list, conditioned: bool):
        """One configuration per size choice; definitions and normalisations applied when conditioned."""
        configs = []
        if conditioned:
            self.definitions, self.normalisations = list(definitions), list(normalisations)
        size_names = sorted(self.sizes_names())
        for choice in range(3):
            sizes = {s: SIZES.get(s, OTHER_SIZES)[choice] for s in size_names}
            tables = {}
            for base, axes in self.kinds.items():
                shape = (self.samples, *(sizes[a] for a in axes))
                tables[base] = draw(rng, self.domains.get(base, domain_of(base)), shape)
            scalars = {n: draw(rng, self.domains.get(n, domain_of(n)), (self.samples,)) for n in sorted(self.opaque)}
            cfg = _Config(sizes, tables, scalars)
            if conditioned:
                for base, axis, total in normalisations:
                    t = tables[base]
                    a = 1 + axis
                    tables[base] = total * t / t.sum(axis=a, keepdims=True)
                for base, letters, rhs in definitions:
                    value = self._eval_config(cfg, rhs, tuple(letters))
                    tables[base] = np.broadcast_to(
                        value, (self.samples, *(sizes[self.indices[c]] for c in letters))
                    ).copy()
            configs.append(cfg)
        return configs

    # -- evaluation ------------------------------------------------------------------------
    def _mp_config(self, cfg: _Config, rows, tree: tuple) -> _Config:
        """The configuration at some sample rows in 50-digit numbers, with the normalisations and
        definitions redone in that precision (a float N_k would carry its rounding into the check)."""
        names = _all_names(tree)
        needed = {r.base for r in map(self.ref, names) if r is not None}
        grew = True
        while grew:  # a defined table needs what its definition reads
            grew = False
            for base, _, rhs in self.definitions:
                if base in needed:
                    more = {r.base for r in map(self.ref, _all_names(rhs)) if r is not None} - needed
                    if more:
                        needed |= more
                        grew = True
        tables = {b: _mp_array(t[rows]) for b, t in cfg.tables.items() if b in needed}
        scalars = {n: _mp_array(v[rows]) for n, v in cfg.scalars.items() if n in names}
        out = _Config(cfg.sizes, tables, scalars)
        for base, axis, total in self.normalisations:
            if base not in tables:
                continue
            t = tables[base]
            tables[base] = t * total / t.sum(axis=1 + axis, keepdims=True)
        for base, letters, rhs in self.definitions:
            if base not in tables:
                continue
            value = self._eval_config(out, rhs, tuple(letters), mp=True, samples=len(rows))
            tables[base] = np.broadcast_to(value, (len(rows), *(cfg.sizes[self.indices[c]] for c in letters))).copy()
        return out

    def _eval_config(self, cfg: _Config, tree: tuple, free: tuple, mp: bool = False, samples: int | None = None):
        nslots = len(free) + nesting(tree)
        tables, scalars = cfg.tables, cfg.scalars
        S = self.samples if samples is None else samples
        nan = float("nan")

        def shaped(arr):
            return np.reshape(arr, (S,) + (1,) * nslots)

        def lookup(name: str, bind: dict):
            if name in cfg.sizes:
                v = np.full(S, float(cfg.sizes[name]))
                return shaped(_mp_array(v) if mp else v)
            ref = self.ref(name)
            if ref is None:
                return shaped(scalars[name])
            t = tables[ref.base]
            index: list = [slice(None)]
            letters = []
            for axis, p in enumerate(ref.positions):
                if isinstance(p, int):
                    if not 1 <= p <= t.shape[1 + axis]:
                        v = np.full(S, nan)
                        return shaped(_mp_array(v) if mp else v)
                    index.append(p - 1)
                else:
                    index.append(slice(None))
                    letters.append(p)
            sub = t[tuple(index)]  # (S, sizes of the letter axes, in table order)
            target = [bind[c] for c in letters]
            order = [int(o) for o in np.argsort(target)]
            sub = np.transpose(sub, (0, *(1 + o for o in order)))
            shape = [S] + [1] * nslots
            for i, o in enumerate(order):
                shape[1 + target[o]] = sub.shape[1 + i]
            return np.reshape(sub, shape)

        def bigop(t, bind, ev):
            _, op, letter, _low, high, body = t
            slot = max(max(bind.values(), default=-1) + 1, len(free))
            inner = dict(bind)
            inner[letter] = slot
            value = ev(body, inner)
            value = np.broadcast_to(value, np.broadcast_shapes(np.shape(value), (S,) + (1,) * nslots))
            size = cfg.sizes[self.indices[letter]]
            value = np.broadcast_to(value, value.shape[: 1 + slot] + (size,) + value.shape[2 + slot :])
            if isinstance(high, int) and high != size:
                if high > size:
                    v = np.full(value.shape[:1] + (1,) * nslots, nan)
                    return _mp_array(v) if mp else v
                value = value[(slice(None),) * (1 + slot) + (slice(0, high),)]
            if op == "sum":
                return value.sum(axis=1 + slot, keepdims=True)
            return value.prod(axis=1 + slot, keepdims=True)

        ev = _Eval(lookup, bigop, mp=mp)
        bind = {c: i for i, c in enumerate(free)}
        out = ev(tree, bind)
        shape = [S] + [1] * nslots
        for i, c in enumerate(free):
            shape[1 + i] = cfg.sizes[self.indices[c]]
        out = np.broadcast_to(out, shape)
        return out.reshape([S] + shape[1 : 1 + len(free)])

    def values(self, tree: tuple, configs=None) -> np.ndarray:
        with np.errstate(all="ignore"):
            parts = [
                np.asarray(self._eval_config(cfg, tree, self.free), dtype=float).reshape(-1)
                for cfg in (configs or self.configs)
            ]
        return np.concatenate(parts)

    def mp_values(self, tree: tuple, flat_rows: np.ndarray) -> np.ndarray:
        """mpmath values at positions of the flat array ``values`` returns."""
        out = np.empty(len(flat_rows), dtype=object)
        start = 0
        for cfg in self.configs:
            per = int(np.prod([cfg.sizes[self.indices[c]] for c in self.free])) if self.free else 1
            n = self.samples * per
            mine = [(i, r - start) for i, r in enumerate(flat_rows) if start <= r < start + n]
            if mine:
                rows = sorted({r // per for _, r in mine})
                mp_cfg = self._mp_config(cfg, np.array(rows), tree)
                vals = self._eval_config(mp_cfg, tree, self.free, mp=True, samples=len(rows))
                vals = np.asarray(vals, dtype=object).reshape(len(rows), per)
                for i, r in mine:
                    out[i] = vals[rows.index(r // per), r % per]
            start += n
        return out

    def prepare(self, tree: tuple) -> tuple:
        return tree


def index_kinds(trees: list[tuple], indices: dict) -> tuple[dict, set]:
    """Tables and opaque names of an indexed question, from the expected answer and conditions.

    A name is a table when its subscript is made of index letters (and digits): ``gamma_nk``
    is an N x K table ``gamma``.  Names without index letters stay opaque scalars.
    """
    kinds: dict = {}
    opaque: set = set()
    sizes = set(indices.values())

    def visit(t):
        if t[0] == "var":
            name = t[1]
            if name in sizes:
                return
            if "_" in name:
                base, sub = name.split("_", 1)
                if any(c in indices for c in sub) and all(c in indices or c.isdigit() for c in sub):
                    axes = tuple(indices.get(c) for c in sub)
                    old = kinds.get(base)
                    if old is not None and len(old) == len(axes):
                        axes = tuple(a if a is not None else o for a, o in zip(axes, old))
                    elif old is not None:
                        raise GraderError(f"{base} is used with {len(old)} and with {len(axes)} indices")
                    kinds[base] = axes
                    return
            opaque.add(name)
            return
        for c in children(t):
            visit(c)

    for t in trees:
        visit(t)
    for base, axes in kinds.items():
        if None in axes:
            raise GraderError(f"{base}: every position of its subscript needs an index letter somewhere")
    return kinds, opaque


def free_letters(tree: tuple, indices: dict, bound: frozenset = frozenset()) -> list:
    """Index letters used but not bound by a sum, in order of first use."""
    out: list = []
    kind = tree[0]
    if kind == "var" and "_" in tree[1]:
        sub = tree[1].split("_", 1)[1]
        if any(c in indices for c in sub) and all(c in indices or c.isdigit() for c in sub):
            out += [c for c in sub if c in indices and c not in bound]
    elif kind == "big":
        out += free_letters(tree[5], indices, bound | {tree[2]})
    else:
        for c in children(tree):
            out += free_letters(c, indices, bound)
    seen: list = []
    for c in out:
        if c not in seen:
            seen.append(c)
    return seen


def mp_close(a, b, rtol: float) -> bool:
    """Whether two mpmath arrays agree to rtol (NaN where both are undefined)."""
    import mpmath

    for x, y in zip(a, b):
        xn = x is None or mpmath.isnan(x) or mpmath.isinf(x)
        yn = y is None or mpmath.isnan(y) or mpmath.isinf(y)
        if xn or yn:
            if xn != yn:
                return False
            continue
        if abs(x - y) > rtol * max(abs(x), abs(y)) + mpmath.mpf(10) ** (-40):
            return False
    return True


def mp_context():
    import mpmath

    ctx = mpmath.mp
    return ctx.workprec(int(MP_DIGITS * math.log2(10)))
