"""The Gaussian, declared for the family engine: the forms without a covariance matrix.

A model file's ``family: gaussian`` is read as an ``emsym.spec.ModelSpec``: its covariance shapes
(full, tied full, the mclust blocks) need matrix calculus, which ``emsym.derive`` and
``emsym.mclust`` supply as rules of their own.  Every Gaussian variant *without* a covariance
matrix is also an ordinary family of the engine, declared here like any other:

* ``UNIVARIATE`` -- one data column; mean mu_k (real) and variance sigma2_k (positive);
* ``DIAGONAL`` -- d coordinates, independent given the component: a mean and a variance per
  coordinate (mclust's VVI; EEI with the variance shared);
* ``SPHERICAL`` -- d coordinates with one variance per component (VII; EII shared).

``form`` (used by ``ModelSpec.family_form``) picks the declaration for a variant.  ``emsym check``
derives that family form with the generic engine and proves that its updates and the Gaussian
stages' updates agree after one EM step from the same start -- two independent derivations of
the same model (see ``emsym.check``).  The conjugate priors are a Normal on the mean and an
inverse gamma on the variance, as the Gaussian's own.
"""

from __future__ import annotations

import numpy as np

from ..seeding import kmeanspp, overall_variance
from .base import SUPPORTS, Family, Parameter

__all__ = ["DIAGONAL", "FORMS", "SPHERICAL", "UNIVARIATE", "form", "view"]


def _univariate(v):
    import sympy as sp

    mu, s2 = v["mean"], v["variance"]
    return -sp.log(2 * sp.pi * s2) / 2 - (v.x - mu) ** 2 / (2 * s2)


def _diagonal(v):
    import sympy as sp

    mu, s2 = v["mean", v.i], v["variance", v.i]
    return sp.Sum(-sp.log(2 * sp.pi * s2) / 2 - (v.x_i - mu) ** 2 / (2 * s2), (v.i, 1, v.d))


def _spherical(v):
    import sympy as sp

    mu, s2 = v["mean", v.i], v["variance"]
    return -v.d * sp.log(2 * sp.pi * s2) / 2 - sp.Sum((v.x_i - mu) ** 2, (v.i, 1, v.d)) / (2 * s2)


def _start(X, K, rng):
    """k-means++ means and the overall variance of the data (the Gaussian stages' start), per coordinate."""
    return {"mean": kmeanspp(X, K, rng), "variance": np.full((K, X.shape[1]), overall_variance(X))}


def _truth(K, d, rng):
    """Means 4 apart along every axis; variances 0.5..2 times (k + 1), per coordinate."""
    mean = np.array([4.0 * k + rng.normal(0, 0.5, d) for k in range(K)])
    return {"mean": mean, "variance": np.array([rng.uniform(0.5, 2.0, d) * (1 + k) for k in range(K)])}


def _sample(params, z, rng):
    mean = np.asarray(params["mean"], dtype=float)[z]
    var = np.asarray(params["variance"], dtype=float)[z]
    mean = mean.reshape(len(z), -1)
    scale = np.sqrt(var).reshape(len(z), -1)  # (n, d) or (n, 1): a spherical variance broadcasts
    return mean + scale * rng.standard_normal(mean.shape)


def _form(description: str, mean: Parameter, variance: Parameter, log_density) -> Family:
    """One form of the Gaussian: its start and truth are the per-coordinate ones, a scalar parameter
    keeping the first coordinate's value."""

    def cut(values: dict) -> dict:
        return {p.name: values[p.name] if p.per_coordinate else values[p.name][:, 0] for p in (mean, variance)}

    return Family(
        name="gaussian",
        description=description,
        parameters=(mean, variance),
        log_density=log_density,
        support=SUPPORTS["real"],
        univariate=not mean.per_coordinate,
        start=lambda X, K, rng: cut(_start(X, K, rng)),
        sample=_sample,
        truth=lambda K, d, rng: cut(_truth(K, d if mean.per_coordinate else 1, rng)),
        conjugate={"mean": "normal", "variance": "inverse-gamma"},
        display="N",
    )


_MEAN_SCALAR = Parameter("mean", "scalar", "real", "mu", "the component's mean")
_MEAN_VECTOR = Parameter("mean", "vector", "real", "mu", "the mean of each coordinate")
_VAR_SCALAR = Parameter("variance", "scalar", "positive", "sigma2", "the variance (sigma squared)")
_VAR_VECTOR = Parameter("variance", "vector", "positive", "sigma2", "the variance of each coordinate")

UNIVARIATE = _form(
    "normal: p(x) = exp(-(x - mu)^2 / (2 sigma^2)) / sqrt(2 pi sigma^2)", _MEAN_SCALAR, _VAR_SCALAR, _univariate
)
DIAGONAL = _form(
    "normal with independent coordinates: a mean and a variance per coordinate", _MEAN_VECTOR, _VAR_VECTOR, _diagonal
)
SPHERICAL = _form(
    "normal with one variance for every coordinate: p(x) = N(x | mu, sigma^2 I)", _MEAN_VECTOR, _VAR_SCALAR, _spherical
)

FORMS = {"univariate": UNIVARIATE, "diagonal": DIAGONAL, "spherical": SPHERICAL}


def form(vector: bool, covariance: str) -> str | None:
    """The name in ``FORMS`` of a Gaussian variant's declaration, or None where it has a covariance
    matrix (full, tied full, an mclust block): those need the matrix rules of ``emsym.derive`` and
    ``emsym.mclust``."""
    if not vector:
        return "univariate"
    return {"diag": "diagonal", "spherical": "spherical"}.get(covariance)


def view(component: dict, family: Family) -> dict:
    """A Gaussian runner's component ({weight, mean, covariance}) as ``family`` writes it
    ({weight, mean, variance}): a number in 1-d, the diagonal, or the one spherical variance."""
    mean = np.ravel(component["mean"])
    cov = np.atleast_2d(component["covariance"] if "covariance" in component else component["variance"])
    if family is UNIVARIATE:
        return {"weight": component["weight"], "mean": float(mean[0]), "variance": float(cov[0, 0])}
    variance = np.diag(cov).copy() if family is DIAGONAL else float(cov[0, 0])
    return {"weight": component["weight"], "mean": mean.copy(), "variance": variance}
