"""Mixture of multivariate Bernoulli distributions (Bishop, PRML section 9.3.3).

A point is d binary coordinates; component k has one probability p_kl per coordinate.
"""

from __future__ import annotations

from ..seeding import kmeanspp
from .base import SUPPORTS, Family, Parameter


def _log_density(v):
    import sympy as sp

    p, i = v["p", v.i], v.i
    return sp.Sum(v.x_i * sp.log(p) + (1 - v.x_i) * sp.log(1 - p), (i, 1, v.d))


def _start(X, K, rng):
    # k-means++ rows pulled towards 1/2: every p_kl starts in [1/4, 3/4] (PRML draws them there at random)
    return {"p": 0.25 + 0.5 * kmeanspp(X, K, rng)}


def _truth(K, d, rng):
    return {"p": rng.uniform(0.1, 0.9, size=(K, d))}


def _sample(params, z, rng):
    p = params["p"][z]
    return (rng.random(p.shape) < p).astype(float)


FAMILY = Family(
    name="bernoulli",
    description="d binary coordinates, independent given the component: p(x) = prod_l p_l^x_l (1 - p_l)^(1 - x_l)",
    parameters=(Parameter("p", "vector", "unit", "p", "P(x_l = 1) for each coordinate l"),),
    log_density=_log_density,
    support=SUPPORTS["binary"],
    univariate=False,
    start=_start,
    sample=_sample,
    truth=_truth,
    conjugate={"p": "beta"},
    display="Bern",
    reference="Bishop, Pattern Recognition and Machine Learning, section 9.3.3",
)
