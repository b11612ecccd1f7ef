"""Mixture of multinomials (document clustering): a point is a vector of counts over V categories.

The log density keeps the multinomial coefficient log(n!/prod_v x_v!) with n = sum_v x_v, so the
log-likelihood is that of the counts themselves, not of one ordering of the trials.
"""

from __future__ import annotations

import numpy as np

from ..seeding import kmeanspp
from .base import SUPPORTS, Family, Parameter


def _log_density(v):
    import sympy as sp

    p, i = v["p", v.i], v.i
    total = sp.Sum(v.x_i, (i, 1, v.d))
    return (
        sp.log(sp.factorial(total))
        - sp.Sum(sp.log(sp.factorial(v.x_i)), (i, 1, v.d))
        + sp.Sum(v.x_i * sp.log(p), (i, 1, v.d))
    )


def _start(X, K, rng):
    freq = X.sum(axis=0) + 1.0
    freq /= freq.sum()
    rows = kmeanspp(X / np.maximum(X.sum(axis=1, keepdims=True), 1.0), K, rng)
    p = (rows + 1.0 / X.shape[1]) / 2 + freq  # a seed row, smoothed, plus the overall frequencies
    return {"p": p / p.sum(axis=1, keepdims=True)}


def _truth(K, d, rng):
    return {"p": rng.dirichlet(np.full(d, 2.0), size=K)}


def _sample(params, z, rng):
    totals = rng.integers(10, 40, size=z.shape[0])
    return np.array([rng.multinomial(m, params["p"][k]) for m, k in zip(totals, z)], dtype=float)


FAMILY = Family(
    name="multinomial",
    description="counts over V categories: p(x) = n!/(prod_v x_v!) prod_v p_v^x_v with n = sum_v x_v",
    parameters=(Parameter("p", "simplex", "unit", "p", "category probabilities, summing to one"),),
    log_density=_log_density,
    support=SUPPORTS["count"],
    univariate=False,
    start=_start,
    sample=_sample,
    truth=_truth,
    conjugate={"p": "dirichlet"},
    display="Mult",
)
