"""Poisson mixture: counts x = 0, 1, 2, ... with rate lambda_k per component."""

from __future__ import annotations

import numpy as np

from ..seeding import quantile_groups
from .base import SUPPORTS, Family, Parameter


def _log_density(v):
    import sympy as sp

    lam = v["rate"]
    return v.x * sp.log(lam) - lam - sp.log(sp.factorial(v.x))


def _start(X, K, rng):
    groups = quantile_groups(X, K)
    scale = max(float(np.mean(X)), 1.0)
    return {"rate": np.array([max(float(np.mean(g)), 1e-3 * scale) if g.size else scale for g in groups])}


def _truth(K, d, rng):
    return {"rate": np.array([3.0 * (k + 1) ** 1.5 * rng.uniform(0.8, 1.2) for k in range(K)])}


def _sample(params, z, rng):
    return rng.poisson(params["rate"][z]).astype(float)[:, None]


FAMILY = Family(
    name="poisson",
    description="Poisson counts: p(x) = lambda^x e^(-lambda) / x!",
    parameters=(Parameter("rate", "scalar", "positive", "lambda", "the mean count"),),
    log_density=_log_density,
    support=SUPPORTS["count"],
    univariate=True,
    start=_start,
    sample=_sample,
    truth=_truth,
    conjugate={"rate": "gamma"},
    display="Poisson",
)
