"""Mixture of categorical distributions: one trial per point, written one-hot over V categories."""

from __future__ import annotations

import numpy as np

from .base import Family, Parameter, Support
from .multinomial import _start


def _log_density(v):
    import sympy as sp

    return sp.Sum(v.x_i * sp.log(v["p", v.i]), (v.i, 1, v.d))


def _truth(K, d, rng):
    return {"p": rng.dirichlet(np.full(d, 2.0), size=K)}


def _sample(params, z, rng):
    return np.array([rng.multinomial(1, params["p"][k]) for k in z], dtype=float)


ONE_HOT = Support(
    "0 or 1",
    lambda X: ~((X == 0) | (X == 1)),
    row=lambda X: X.sum(axis=1) != 1,
    row_text="one 1 and the rest 0 (one-hot: exactly one category per point)",
)

FAMILY = Family(
    name="categorical",
    description="one of V categories per point, written one-hot: p(x) = prod_v p_v^x_v",
    parameters=(Parameter("p", "simplex", "unit", "p", "category probabilities, summing to one"),),
    log_density=_log_density,
    support=ONE_HOT,
    univariate=False,
    start=_start,
    sample=_sample,
    truth=_truth,
    conjugate={"p": "dirichlet"},
    display="Cat",
)
