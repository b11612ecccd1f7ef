"""The ``randomise:`` section of an exercise, read and checked (``emsym.variants`` draws from it).

Kept apart from the drawing so that reading an exercise imports nothing of the engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["KEYS", "Randomise", "parse_randomise", "student_seed"]

KEYS = ("points", "truth", "decimals", "jitter", "separation", "min_count")


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
