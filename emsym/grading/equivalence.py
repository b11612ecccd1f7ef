"""Whether two answers are the same: sampled agreement, settled where floating point or the sample
points could mislead.  ``Equivalence`` is the part of ``FormulaGrader`` that decides it.

- Values are compared at every sample point to a relative tolerance (``RTOL`` 1e-8 by default); the
  finiteness pattern must match too.
- A disagreement that may be rounding -- few points, a small gap, or huge constants whose rounding
  bound (``_magnitude``) covers the gap -- is re-checked at those points in 50-digit mpmath.
- An answer that could hide a branch (abs, sqrt, log, non-integer powers, constants above 100) is
  also compared on wide scales, and through abs it may not reach where the expected answer is
  undefined; an answer much longer than the expected one is re-checked at points drawn from a seed
  made at start-up (``_FRESH_SEED``), so it cannot be fitted to the published sample points.
- Equations: lhs - rhs must be a non-zero constant multiple of the expected one, or with declared
  unknowns a multiple by a one-signed factor that does not involve them.
- Follow-through: ``solves`` finds the unknown that zeroes a student's own condition (secant
  iterations at every sample point) and compares the student's update with it.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from ..exceptions import GraderError
from .parser import InvalidAnswer, children
from .space import IndexedSpace, ScalarSpace, SpaceError, domain_of, draw, free_letters, mp_close, mp_context

__all__ = ["RTOL", "SAMPLES", "TIME_LIMIT", "Equivalence"]

SAMPLES = 32
RTOL = 1e-8
TIME_LIMIT = 0.5  # seconds for one grade; checked between stages


# -- comparison -------------------------------------------------------------------------
def _close(a, b, rtol=RTOL) -> bool:
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    a, b = a.reshape(-1), b.reshape(-1)
    fa, fb = np.isfinite(a), np.isfinite(b)
    # the same points undefined, and enough defined ones to compare: a quarter of them (sqrt(2 - x^2)
    # is defined at about half of the multi-scale points, and at fewer on some draws)
    if not np.array_equal(fa, fb) or fb.sum() < max(1, b.size // 4):
        return False
    a, b = a[fb], b[fb]
    scale = 1e-12 * (1 + float(np.median(np.abs(b))))
    return bool(np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b)) + scale))


def _disagree(a, b, rtol=RTOL) -> np.ndarray:
    """Positions where two value arrays disagree (finiteness or value)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    a, b = a.reshape(-1), b.reshape(-1)
    fa, fb = np.isfinite(a), np.isfinite(b)
    with np.errstate(all="ignore"):
        off = np.abs(a - b) > rtol * np.maximum(np.abs(a), np.abs(b)) + 1e-12 * (1 + np.abs(b))
    return np.flatnonzero((fa != fb) | (fa & fb & off))


# Fresh points for the re-check of long answers: a seed drawn when the process starts, so an
# answer cannot be fitted to them from the source code (verdicts of honest answers do not depend
# on it: an expression equal to the expected one is equal at any points).
_FRESH_SEED = int.from_bytes(os.urandom(8), "little")


def _size(tree) -> int:
    return sum(1 for _ in _nodes(tree))


def _magnitude(tree):
    """A tree whose value bounds the size of every intermediate result of ``tree``: signs dropped,
    differences turned into sums (the float rounding of ``tree`` is at most eps times this)."""
    kind = tree[0]
    if kind in ("num", "const"):
        return ("call", "abs", tree)
    if kind == "var":
        return ("call", "abs", tree)
    if kind in ("+", "-", "="):
        return ("+", _magnitude(tree[1]), _magnitude(tree[2]))
    if kind == "neg":
        return _magnitude(tree[1])
    if kind in ("*", "/"):
        return (kind, _magnitude(tree[1]), ("call", "abs", tree[2]) if kind == "/" else _magnitude(tree[2]))
    if kind == "^":
        return ("^", _magnitude(tree[1]), tree[2])
    if kind == "call":
        return ("call", "abs", tree)
    if kind == "big":
        return (*tree[:5], _magnitude(tree[5]))
    return tree


def _nodes(tree):
    yield tree
    for c in children(tree):
        yield from _nodes(c)


def _names_in(tree) -> set:
    return {n[1] for n in _nodes(tree) if n[0] == "var"}


class Equivalence:
    """Mixed into FormulaGrader: the comparisons (see the module docstring).  It reads the grader's
    ``space``, ``space_free``, ``value``, ``expected``, ``rtol``, ``equation``, ``unknowns``, ``seed``,
    ``indexed``, ``domains``, ``definitions``/``normalisations`` (indexed) and ``_sample`` (scalar)."""

    space: Any
    space_free: Any
    space_orig: Any
    expected: Any  # Parsed
    value: np.ndarray
    rtol: float
    equation: bool
    indexed: bool
    unknowns: tuple
    seed: int
    domains: dict
    conditions: list
    definitions: list
    normalisations: list
    parse_names: Any
    # the grader's own methods these checks call
    read: Any
    answer_values: Any
    _sample: Any
    _draw: Any

    def _same(self, parsed, value, target, target_tree, start, free=False) -> tuple[bool, str]:
        """(equal, how): numeric agreement, settled in high precision where floating point may
        have cancelled, then re-checked on wide scales when the answer could hide a branch."""
        if self.equation:
            return self._multiple(parsed, value, target, free)
        # an answer that may hide a branch is first tried on wide scales (cheap, and where it differs
        # the difference is large), then compared as any other
        if (
            not free
            and self._suspicious(parsed.tree)
            and not (self._stress(parsed, target_tree, start) and self._same_where_undefined(parsed, target_tree))
        ):
            return False, ""
        if not _close(value, target, self.rtol) and not (
            self._borderline(parsed.tree, value, target)
            and self._mp_agree(parsed.tree, target_tree, _disagree(value, target, self.rtol), free, start)
        ):
            return False, ""
        # much longer than the expected answer: perhaps built to pass at the known points
        if (
            not free
            and _size(parsed.tree) > 2 * _size(target_tree) + 10
            and not self._stress(parsed, target_tree, start, fresh=True)
        ):
            return False, ""
        return True, ""

    def _same_where_undefined(self, parsed, target_tree) -> bool:
        """Where the expected answer is undefined on the names' first domain (log(x) for x < 0), an
        answer that reaches there through abs must be undefined too: log(abs(x)) is not log(x)."""
        if self.indexed or self.space_orig is None:
            return True
        if not any(n[0] == "call" and n[1] == "abs" for n in _nodes(parsed.tree)):
            return True  # log(x/y) for log(x) - log(y): equal wherever the expected answer is defined
        a = self.space_orig.values(parsed.tree)
        b = self.space_orig.values(target_tree)
        fa, fb = np.isfinite(a), np.isfinite(b)
        return bool(np.array_equal(fa, fb)) and _close(a[fb], b[fb], self.rtol) if fb.any() else not fa.any()

    def _borderline(self, tree, value, target) -> bool:
        """Whether a float disagreement may be rounding: few points, small gaps, or huge constants
        (``(x_1 + 1e12) - 1e12``); then it is settled in 50-digit arithmetic."""
        a = np.asarray(value, dtype=float).reshape(-1)
        b = np.broadcast_to(np.asarray(target, dtype=float).reshape(-1), a.shape)
        finite = np.isfinite(b)
        if finite.sum() < max(1, b.size // 2):
            return False
        bad = _disagree(a, b, self.rtol)
        if len(bad) <= b.size // 4:
            return True
        with np.errstate(all="ignore"):
            gap = np.abs(a[bad] - b[bad]) / np.maximum(np.abs(a[bad]), np.abs(b[bad]))
        if np.all(np.isfinite(gap)) and float(np.max(gap)) < 1e-3:
            return True
        if not any(n[0] == "num" and abs(n[1]) >= 1e6 for n in _nodes(tree)):
            return False
        # huge constants: cancellation can only lose eps times the largest term; a larger gap is real
        with np.errstate(all="ignore"):
            bound = np.abs(self.space.values(_magnitude(tree))) + np.abs(
                self.space.values(_magnitude(self.expected.tree))
            )
        bound = np.broadcast_to(bound.reshape(-1), a.shape)[bad]
        real = np.abs(a[bad] - b[bad]) > 1e-12 * len(list(_nodes(tree))) * bound
        return not bool(np.all(np.isfinite(bound)) and np.any(real))

    def _mp_agree(self, tree, target_tree, rows, free, start) -> bool:
        """Whether the answer and the expected agree at these sample positions in 50-digit arithmetic."""
        space = self.space_free if free else self.space
        rows = np.asarray(rows)
        if len(rows) > 6:  # a spread of the disagreeing points, not only the first configuration's
            rows = rows[np.linspace(0, len(rows) - 1, 6).astype(int)]
        try:
            with mp_context():
                if time.perf_counter() - start > TIME_LIMIT:
                    return False
                a = space.mp_values(space.prepare(tree), rows)
                b = space.mp_values(space.prepare(target_tree), rows)
                if not mp_close(a, b, self.rtol):
                    return False
        except (SpaceError, ArithmeticError, ValueError, TypeError):
            return False
        return True

    @staticmethod
    def _suspicious(tree) -> bool:
        """Functions with branches (abs, sqrt, log), non-integer or symbolic powers, large constants:
        an answer that may agree with the expected one only on part of the domain."""
        for n in _nodes(tree):
            if n[0] == "call" and n[1] in ("abs", "sqrt", "log"):
                return True
            if n[0] == "^" and not (n[2][0] == "num" and float(n[2][1]).is_integer()):
                return True
            if n[0] == "num" and abs(n[1]) > 100:
                return True
        return False

    def _stress(self, parsed, target_tree, start, fresh: bool = False) -> bool:
        """Re-compare at other points: on much wider scales (up to 100 times the answer's largest
        constant), or with ``fresh`` at points drawn from a seed nobody can read in the code (an
        answer built to match the published sample points fails there)."""
        consts = [abs(n[1]) for n in _nodes(parsed.tree) if n[0] == "num"] + [10.0]
        wide = None if fresh else math.log10(max(consts)) + 2
        rng = np.random.default_rng(_FRESH_SEED if fresh else self.seed + 1)
        space: Any
        if self.indexed:
            space = IndexedSpace(
                self.space.kinds, self.space.domains, self.space.indices, self.space.free, opaque=self.space.opaque
            )
            space.configs = space.sample(rng, self.definitions, self.normalisations, conditioned=True)
            for cfg in space.configs if wide is not None else ():  # stretch the real-valued tables
                for base, t in cfg.tables.items():
                    if space.domains.get(base, domain_of(base)) == "real":
                        cfg.tables[base] = draw(rng, "real", t.shape, wide)
                for name, v in cfg.scalars.items():
                    if space.domains.get(name, domain_of(name)) != "unit":
                        cfg.scalars[name] = draw(rng, space.domains.get(name, domain_of(name)), v.shape, wide)
        else:
            try:
                space = ScalarSpace(self._sample(rng, conditions=bool(self.conditions), wide=wide), SAMPLES)
            except GraderError:
                return True
        with np.errstate(all="ignore"):
            a = space.values(space.prepare(parsed.tree))
            b = space.values(space.prepare(target_tree))
        finite_b = np.isfinite(b)
        if not finite_b.any():
            return True
        if _close(a, b, self.rtol):
            return True
        bad = _disagree(a, b, self.rtol)
        old = self.space
        try:
            self.space = space
            return self._borderline(parsed.tree, a, b) and self._mp_agree(parsed.tree, target_tree, bad, False, start)
        finally:
            self.space = old

    def _multiple(self, parsed, value, target, free) -> tuple[bool, str]:
        """An equation answer: lhs - rhs a non-zero multiple of the expected lhs - rhs."""
        f = np.asarray(value, dtype=float).reshape(-1)
        g = np.asarray(target, dtype=float).reshape(-1)
        ok = np.isfinite(f) & np.isfinite(g)
        if ok.sum() < max(1, g.size // 2):
            return False, ""
        f, g = f[ok], g[ok]
        scale = np.median(np.abs(g)) + 1e-300
        zero_g = np.abs(g) <= 1e-9 * scale
        if np.any(np.abs(f[zero_g]) > 1e-9 * (np.median(np.abs(f)) + 1e-300)):
            return False, ""
        r = f[~zero_g] / g[~zero_g]
        if r.size == 0 or not np.all(np.isfinite(r)) or np.any(r == 0):
            return False, ""
        c = float(np.median(r))
        if np.all(np.abs(r - c) <= 1e-6 * abs(c)):
            if abs(c - 1) <= 1e-6:
                return True, ""
            return True, f" (a multiple, {c:.6g} times, of the expected condition)"
        if not self.unknowns or not (np.all(r > 0) or np.all(r < 0)):
            return False, ""
        # a non-constant factor: it must not involve the unknowns (then it never changes the solution)
        moved = self._resample_unknowns(parsed, free)
        if moved is None:
            return False, ""
        f2, g2 = moved
        ok2 = np.isfinite(f2) & np.isfinite(g2) & (np.abs(g2) > 1e-9 * (np.median(np.abs(g2)) + 1e-300))
        r2_full = np.full(f2.shape, np.nan)
        r2_full[ok2] = f2[ok2] / g2[ok2]
        r_full = np.full(ok.shape, np.nan)
        idx = np.flatnonzero(ok)[~zero_g]
        r_full[idx] = r
        both = np.isfinite(r_full) & np.isfinite(r2_full)
        if both.sum() < max(1, ok.size // 3):
            return False, ""
        if not np.allclose(r_full[both], r2_full[both], rtol=1e-6):
            return False, ""
        return True, (
            f" (your condition is the expected one times a factor that never vanishes and does not involve "
            f"{', '.join(self.unknowns)}, so it has the same solution)"
        )

    def _resample_unknowns(self, parsed, free):
        """Answer and expected values with only the unknowns redrawn (the rest as before)."""
        rng = np.random.default_rng(self.seed + 7)
        space = self.space_free if free else self.space
        if self.indexed:
            import copy

            moved = copy.copy(space)
            moved.configs = []
            for cfg in space.configs:
                c2 = copy.copy(cfg)
                c2.tables = dict(cfg.tables)
                c2.scalars = dict(cfg.scalars)
                for u in self.unknowns:
                    ref = space.ref(u)
                    if ref is not None:
                        t = cfg.tables[ref.base]
                        c2.tables[ref.base] = draw(rng, space.domains.get(ref.base, domain_of(ref.base)), t.shape)
                    elif u in cfg.scalars:
                        c2.scalars[u] = draw(rng, space.domains.get(u, domain_of(u)), cfg.scalars[u].shape)
                moved.configs.append(c2)
        else:
            env = dict(space.env)
            for u in self.unknowns:
                if u in env:
                    env[u] = self._draw(rng, u, SAMPLES)
            moved = ScalarSpace(env, SAMPLES)
        with np.errstate(all="ignore"):
            return (
                moved.values(moved.prepare(parsed.tree)),
                moved.values(moved.prepare(self.expected.tree)),
            )

    # -- follow-through ------------------------------------------------------------------------
    def solves(self, condition: str, answer: str) -> bool | None:
        """Whether ``answer`` (an update for this equation's unknown) solves the student's own
        ``condition`` -- an equation like this grader's -- at every sample point.  None when it
        cannot be told (unreadable, no unknown, no root found)."""
        if not self.equation or not self.unknowns:
            return None
        try:
            cond = self.read(condition)
            upd = self.read(answer)
        except InvalidAnswer:
            return None
        if cond.tree[0] != "=" or upd.tree[0] == "=":
            return None
        if any(n not in self.parse_names for n in cond.names | upd.names):
            return None
        unknown = self.unknowns[0]
        try:
            if self.indexed:
                self.space.check(cond.tree)
                self.space.check(upd.tree)
            root = self._root(cond.tree, unknown)
            if root is None:
                return None
            with np.errstate(all="ignore"):
                got = self.answer_values(upd)
        except SpaceError:
            return None
        known = np.isfinite(root)
        return _close(np.asarray(got, dtype=float).reshape(-1)[known], root[known], 1e-6)

    def _root(self, tree, unknown: str):
        """The unknown's value that zeroes lhs - rhs at every sample point (secant iterations)."""
        space = self.space
        if self.indexed:
            ref = space.ref(unknown)
            if ref is None or any(not isinstance(p, str) for p in ref.positions):
                return None
            shapes = [cfg.tables[ref.base].shape for cfg in space.configs]

            def at(x_flat):
                import copy

                moved = copy.copy(space)
                moved.configs = []
                start = 0
                for cfg, shape in zip(space.configs, shapes):
                    size = int(np.prod(shape))
                    c2 = copy.copy(cfg)
                    c2.tables = dict(cfg.tables)
                    c2.tables[ref.base] = np.asarray(x_flat[start : start + size]).reshape(shape)
                    moved.configs.append(c2)
                    start += size
                return moved.values(tree)

            total = sum(int(np.prod(sh)) for sh in shapes)
            if free_letters(("var", unknown), space.indices) != list(space.free):
                return None
        else:
            if unknown not in space.env:
                return None

            def at(x_flat):
                return ScalarSpace({**space.env, unknown: x_flat}, space.samples).values(tree)

            total = space.samples
        positive = self.domains.get(unknown, domain_of(unknown)) != "real"
        with np.errstate(all="ignore"):
            x0, x1 = np.full(total, 0.5 if positive else -1.0), np.full(total, 2.0)
            f0, f1 = at(x0), at(x1)
            for _ in range(60):
                step = f1 * (x1 - x0) / (f1 - f0)
                x0, f0 = x1, f1
                x1 = x1 - np.where(np.isfinite(step), step, 0.0)
                f1 = at(x1)
                if np.all(np.abs(f1) <= 1e-10 * (1 + np.abs(f0))) and np.all(
                    np.abs(x1 - x0) <= 1e-10 * (1 + np.abs(x1))
                ):
                    break
            ok = np.isfinite(x1) & (np.abs(f1) <= 1e-8 * (1 + np.abs(at(x1 * (1 + 1e-3)))))
        if ok.mean() < 0.75:
            return None
        return np.where(ok, x1, np.nan)

    def _matches(self, value, target) -> bool:
        if self.equation:
            f = np.asarray(value, dtype=float).reshape(-1)
            g = np.asarray(target, dtype=float).reshape(-1)
            with np.errstate(all="ignore"):
                r = f / g
            r = r[np.isfinite(r)]
            return (
                r.size > 0
                and bool(np.all(np.abs(r - np.median(r)) <= 1e-6 * abs(np.median(r))))
                and bool(np.median(r) != 0)
            )
        return _close(value, target, self.rtol)
