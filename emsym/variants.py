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

import numpy as np

from .randomise import KEYS, Randomise, parse_randomise, student_seed

__all__ = ["KEYS", "MAX_DRAWS", "Randomise", "VariantError", "parse_randomise", "student_seed", "variant"]

MAX_DRAWS = 200


class VariantError(ValueError):
    """No well-posed variant after MAX_DRAWS draws (the reason says which constraint failed)."""


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
    from .cache import get_model
    from .em import run_em

    model = get_model(ex.model)
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
