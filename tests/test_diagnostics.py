"""Model selection and diagnostics: BIC/AIC, silhouette, hard EM (K-means), against scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from emsym.cache import get_derivation
from emsym.compile import CompiledModel
from emsym.em import run_em, silhouette
from emsym.spec import load_spec


def compiled(spec):
    return CompiledModel(get_derivation(load_spec(spec)))


@pytest.mark.parametrize(
    "spec, cov",
    [
        ({"components": 3}, "full"),
        ({"components": 2, "dim": 3, "covariance": "spherical"}, "spherical"),
        ({"components": 3, "variance": "tied"}, "tied"),
    ],
)
def test_bic_aic_and_parameter_count_match_sklearn(rng, spec, cov):
    from sklearn.mixture import GaussianMixture

    model = compiled(spec)
    d = model.d
    X = np.concatenate([rng.normal(c, 1.0, (120, d)) for c in (-3, 0, 3)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = run_em(model, X, max_iter=300, tol=1e-10)
    comps = r.components
    K = model.K
    var = np.array([c["covariance"][0, 0] for c in comps])
    gm = GaussianMixture(K, covariance_type=cov, reg_covar=0)
    gm.weights_ = np.array([c["weight"] for c in comps])
    gm.means_ = np.array([c["mean"] for c in comps])
    gm.covariances_ = {"full": var.reshape(K, 1, 1), "spherical": var, "tied": np.array([[var[0]]])}[cov]
    from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

    gm.precisions_cholesky_ = _compute_precision_cholesky(gm.covariances_, cov)
    assert r.n_params == gm._n_parameters()
    assert r.bic == pytest.approx(gm.bic(X), rel=1e-9)
    assert r.aic == pytest.approx(gm.aic(X), rel=1e-9)


def test_silhouette_matches_sklearn(rng):
    from sklearn.metrics import silhouette_score

    X = np.concatenate([rng.normal(0, 1, (60, 2)), rng.normal(4, 1, (40, 2)), rng.normal((0, 5), 1, (30, 2))])
    labels = np.array([0] * 60 + [1] * 40 + [2] * 30)
    labels[::17] = 1  # some misassigned points
    assert silhouette(X, labels) == pytest.approx(silhouette_score(X, labels), rel=1e-9)
    assert silhouette(X, np.zeros(len(X))) is None


def test_hard_em_with_equal_weights_and_tied_variance_is_kmeans(rng):
    from sklearn.cluster import KMeans

    X = np.concatenate([rng.normal(-3, 1, 80), rng.normal(0.5, 0.7, 50), rng.normal(4, 1.5, 70)])[:, None]
    model = compiled({"components": 3, "mixing": "equal", "variance": "tied"})
    start = np.array([-1.0, 0.0, 1.0])
    init = model.params_from_components([{"mean": m, "variance": 1.0} for m in start])
    r = run_em(model, X, init, max_iter=300, tol=0, hard=True, responsibilities=True)
    km = KMeans(3, init=start[:, None], n_init=1, max_iter=300, tol=0).fit(X)
    ours = np.sort([c["mean"][0] for c in r.components])
    assert ours == pytest.approx(np.sort(km.cluster_centers_[:, 0]), rel=1e-9)
    assert set(np.unique(r.responsibilities)) <= {0.0, 1.0}
    assert np.min(np.diff(r.loglik)) >= -1e-9  # the classification likelihood never decreases either


def test_gmm_and_kmeans_centres_differ_on_overlapping_clusters(rng):
    """NYU Q1, computed: soft responsibilities pull each centre towards the other cluster."""
    X = np.concatenate([rng.normal(-1.2, 1, 200), rng.normal(1.2, 1, 200)])[:, None]
    model = compiled({"components": 2, "mixing": "equal", "variance": "tied"})
    init = model.params_from_components([{"mean": -1.0, "variance": 1.0}, {"mean": 1.0, "variance": 1.0}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        soft = run_em(model, X, init, max_iter=2000, tol=1e-12)
        hard = run_em(model, X, init, max_iter=2000, tol=1e-12, hard=True)
    soft_c = sorted(c["mean"][0] for c in soft.components)
    hard_c = sorted(c["mean"][0] for c in hard.components)
    assert abs(soft_c[0] - hard_c[0]) > 0.05 and abs(soft_c[1] - hard_c[1]) > 0.05
