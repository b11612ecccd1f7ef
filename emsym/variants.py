"""Randomised variants of an exercise: a pure function of (exercise, seed).

An exercise may declare how its numbers vary::

    randomise:
      points: [5, 7]                 # how many points (a number, or an inclusive range)
      truth:                         # the mixture the points are drawn from, one entry per component;
        - {weight: 0.5, mean: [-3, -1], variance: 1}        # a value, or a [low, high] range
        - {weight: 0.5, mean: [3, 6], variance: [0.5, 2]}
      decimals: 1                    # round the points (numbers a student can work with by hand)
      jitter: 0.5                    # move each starting mean by up to +-0.5 (variances by up to 50%)
      separation: 2                  # true means at least 2 standard deviations apart (1-d Gaussians)
      min_count: 0.5                 # every component's share of the points at the start >= 0.5 point

``variant(ex, seed)`` draws the truth, the points and the jittered start from
``numpy.random.default_rng(seed)`` and retries (at most ``MAX_DRAWS`` times) until the question
is well posed: the true means are separated, no start leaves a component without points, every
responsibility is a number.  The same (exercise, seed) always gives the same variant -- a
student's seed comes from their id (``student_seed``), so a reload shows the same numbers and a
TA reproduces them with ``emsym solve EX --seed S``.  A variant drops the parts' published answers
(they belong to the source's numbers); formula parts do not depend on the numbers.  An exercise
whose randomisation cannot give a well-posed variant is refused when it is loaded, with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MAX_DRAWS", "Randomise", "VariantError", "parse_randomise", "student_seed", "variant"]

MAX_DRAWS = 200
KEYS = ("points", "truth", "decimals", "jitter", "separation", "min_count")


class VariantError(ValueError):
    """No well-posed variant after MAX_DRAWS draws (the reason says which constraint failed)."""


@dataclass(frozen=True)
class Randomise:
    points: tuple[int, int]
    truth: tuple  # per component: {field: value or (low, high)}
    decimals: int | None = None
    jitter: float = 0.0
    separation: float = 0.0
    min_count: float = 0.5


def student_seed(exercise_id: str, student: str) -> int:
    """A student's variant seed: stable for (exercise, student), different between students."""
    h = hashlib.sha256(f"{exercise_id}\x00{student}".encode()).digest()
    return int.from_bytes(h[:4], "big")


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def parse_randomise(raw: Any, bad, K: int | None) -> Randomise | None:
    """A Randomise from the exercise's mapping; ``bad(key path, expected, got)`` reports problems."""
    if not isinstance(raw, dict):
        bad((), "a mapping with points, truth and optionally decimals, jitter, separation, min_count", raw)
        return None
    unknown = [k for k in raw if k not in KEYS]
    for k in unknown:
        bad((k,), f"one of {', '.join(KEYS)}", k)
    pts = raw.get("points")
    if isinstance(pts, int) and not isinstance(pts, bool):
        pts = [pts, pts]
    if not (
        isinstance(pts, list)
        and len(pts) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in pts)
        and 2 <= pts[0] <= pts[1] <= 10_000
    ):
        bad(("points",), "a number of points, or a range [low, high], from 2 to 10000", raw.get("points"))
        return None
    truth = raw.get("truth")
    if not isinstance(truth, list) or not truth or not all(isinstance(t, dict) for t in truth):
        bad(("truth",), "a list with one mapping per component (weight, mean, variance, ...)", truth)
        return None
    if K is not None and len(truth) != K:
        bad(("truth",), f"{K} components (the model's)", f"{len(truth)}")
        return None
    parsed = []
    for i, comp in enumerate(truth):
        entry: dict[str, float | tuple[float, float]] = {}
        for field, v in comp.items():
            if _num(v):
                entry[field] = float(v)
            elif isinstance(v, list) and len(v) == 2 and all(_num(x) for x in v) and v[0] <= v[1]:
                entry[field] = (float(v[0]), float(v[1]))
            else:
                bad(("truth", i, field), "a number or a range [low, high]", v)
        parsed.append(entry)
    opts: dict = {}
    for key, ok, what in (
        ("decimals", lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 6, "0 to 6 decimals"),
        ("jitter", lambda v: _num(v) and 0 <= v <= 100, "a number from 0 to 100"),
        ("separation", lambda v: _num(v) and 0 <= v <= 20, "a number of standard deviations from 0 to 20"),
        ("min_count", lambda v: _num(v) and v >= 0, "a number of points >= 0"),
    ):
        if key in raw:
            if ok(raw[key]):
                opts[key] = raw[key]
            else:
                bad((key,), what, raw[key])
    return Randomise((pts[0], pts[1]), tuple(parsed), **opts)


def _draw_value(rng, v):
    return float(rng.uniform(v[0], v[1])) if isinstance(v, tuple) else v


def _jittered(init: list[dict], jitter: float, rng) -> list[dict]:
    """The start with each mean moved by up to +-jitter and each variance scaled by up to 1 + jitter."""
    out = []
    for comp in init:
        c = dict(comp)
        if jitter and "mean" in c:
            m = np.asarray(c["mean"], dtype=float)
            c["mean"] = np.round(m + rng.uniform(-jitter, jitter, m.shape), 2)
        if jitter and "variance" in c and np.ndim(c["variance"]) == 0:
            c["variance"] = round(float(c["variance"]) * float(rng.uniform(1 / (1 + jitter), 1 + jitter)), 2)
        out.append(c)
    return out


def variant(ex, seed: int):
    """The exercise with its numbers drawn for ``seed`` (see the module docstring)."""
    r: Randomise | None = getattr(ex, "randomise", None)
    if r is None:
        return ex
    from .cache import get_derivation
    from .compile import compile_derivation
    from .em import run_em

    model = compile_derivation(get_derivation(ex.model))
    rng = np.random.default_rng(seed)
    reason = "no draw was tried"
    for _ in range(MAX_DRAWS):
        truth = [{f: _draw_value(rng, v) for f, v in comp.items()} for comp in r.truth]
        if r.separation and all("mean" in t and "variance" in t for t in truth):
            means = [float(np.ravel(t["mean"])[0]) for t in truth]
            sds = [float(np.sqrt(np.ravel(t["variance"])[0])) for t in truth]
            gaps = [abs(a - b) for i, a in enumerate(means) for b in means[i + 1 :]]
            if gaps and min(gaps) < r.separation * max(sds):
                reason = f"the true means are not {r.separation} standard deviations apart"
                continue
        try:
            params = model.params_from_components(truth, where="randomise.truth")
        except Exception as exc:
            reason = f"the drawn truth is not a valid model ({exc})"
            continue
        n = int(rng.integers(r.points[0], r.points[1] + 1))
        X = model.sample(params, n, rng)
        if r.decimals is not None:
            X = np.round(X, r.decimals)
        init = _jittered(ex.init, r.jitter, rng) if ex.init is not None else None
        start = model.params_from_components(init, where="init") if init is not None else params
        try:
            res = run_em(model, X, start, max_iter=0, tol=-1, responsibilities=True)
        except Exception as exc:
            reason = f"the start cannot be evaluated on the drawn points ({exc})"
            continue
        R = res.responsibilities
        if R is None or not np.all(np.isfinite(R)):
            reason = "some responsibilities at the start are not numbers"
            continue
        counts = R.sum(axis=0)
        if counts.min() < r.min_count:
            reason = f"a component's share of the points at the start is below {r.min_count}"
            continue
        data = tuple(float(v) for v in X[:, 0]) if X.shape[1] == 1 else tuple(tuple(map(float, row)) for row in X)
        parts = tuple(
            dataclasses.replace(p, published=None) if p.kind in ("numeric", "assignment", "choice") else p
            for p in ex.parts
        )
        title = f"{ex.title} (variant {seed})"
        return dataclasses.replace(ex, title=title, data=data, init=init, parts=parts, seed=seed, labels=None)
    raise VariantError(f"{ex.path}: randomise: no well-posed variant for seed {seed} after {MAX_DRAWS} draws: {reason}")
