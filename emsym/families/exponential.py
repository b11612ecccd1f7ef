"""Exponential mixture: lifetimes x >= 0 with rate lambda_k per component."""

from __future__ import annotations

import numpy as np

from ..seeding import quantile_groups
from .base import SUPPORTS, Family, Parameter


def _log_density(v):
    import sympy as sp

    lam = v["rate"]
    return sp.log(lam) - lam * v.x


def _start(X, K, rng):
    groups = quantile_groups(X, K)
    overall = max(float(np.mean(X)), 1e-300)
    return {"rate": np.array([1.0 / max(float(np.mean(g)), 1e-3 * overall) if g.size else 1 / overall for g in groups])}


def _truth(K, d, rng):
    return {"rate": np.array([4.0 ** (-k) * rng.uniform(0.8, 1.2) for k in range(K)])}


def _sample(params, z, rng):
    return rng.exponential(1.0 / params["rate"][z])[:, None]


FAMILY = Family(
    name="exponential",
    description="exponential lifetimes: p(x) = lambda e^(-lambda x), x >= 0",
    parameters=(Parameter("rate", "scalar", "positive", "lambda", "one over the mean"),),
    log_density=_log_density,
    support=SUPPORTS["nonnegative"],
    univariate=True,
    start=_start,
    sample=_sample,
    truth=_truth,
    conjugate={"rate": "gamma"},
    display="Exp",
)
