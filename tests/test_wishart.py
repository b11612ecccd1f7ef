"""MAP-EM for full covariances (an inverse Wishart on the covariance matrices, a Normal on the mean
vectors), against independent references.

The derivation must give Sigma_k = (W_k + Psi) / (N_k + nu + d + 1) (W_k the gamma-weighted scatter
about the new mean; tied: (sum_k W_k + Psi) / (N + nu + d + 1)); the references are that hand
formula, scipy's inverse Wishart and normal log densities, and a direct numerical maximiser.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from emsym.cache import get_derivation
from emsym.check import check
from emsym.compile import compile_derivation
from emsym.em import run_em
from emsym.exceptions import CollapseWarning, SpecError
from emsym.spec import load_spec

stats = pytest.importorskip("scipy.stats")
optimize = pytest.importorskip("scipy.optimize")

PSI = [[2, 0.5], [0.5, 1]]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal([0, 0], 1, (60, 2)), rng.multivariate_normal([4, 3], [[1, 0.4], [0.4, 0.5]], 40)])


def _spec(variance="free", psi=PSI, nu=5, K=2, mean=None):
    prior = {"variance": {"inverse-wishart": [nu, psi]}, **({"mean": {"normal": mean}} if mean else {})}
    return load_spec({"components": K, "dim": 2, "covariance": "full", "variance": variance, "prior": prior})


def _psi(psi):
    return np.asarray(psi, float) * (np.eye(2) if np.ndim(psi) == 0 else 1)


@pytest.mark.parametrize("psi", [PSI, 3], ids=["matrix", "s-identity"])
def test_free_covariance_update_is_the_posterior_mode(psi):
    X = _data()
    model = compile_derivation(get_derivation(_spec(psi=psi)))
    rng = np.random.default_rng(3)
    R = rng.dirichlet(np.ones(2), size=len(X)).T
    old = model.default_init(X)
    new = model.m_step(np.ascontiguousarray(X.T), R, old)
    for k in (1, 2):
        r = R[k - 1]
        mu = r @ X / r.sum()
        W = (X - mu).T @ (r[:, None] * (X - mu))
        np.testing.assert_allclose(new[f"Sigma_{k}"], (W + _psi(psi)) / (r.sum() + 5 + 2 + 1), rtol=1e-12)


def test_tied_covariance_update_is_the_posterior_mode():
    X = _data(1)
    model = compile_derivation(get_derivation(_spec(variance="tied")))
    R = np.random.default_rng(4).dirichlet(np.ones(2), size=len(X)).T
    new = model.m_step(np.ascontiguousarray(X.T), R, model.default_init(X))
    W = sum(
        (X - r @ X / r.sum()).T @ (r[:, None] * (X - r @ X / r.sum())) for r in R
    )  # each component about its new mean
    np.testing.assert_allclose(new["Sigma"], (W + _psi(PSI)) / (len(X) + 5 + 2 + 1), rtol=1e-12)


def test_update_maximises_the_weighted_log_likelihood_plus_scipys_inverse_wishart():
    """A direct maximiser (Nelder-Mead over a Cholesky factor) of sum_n gamma_n log N(x_n | mu, Sigma)
    + log InvWishart(Sigma | nu, Psi), scipy's densities, lands on the derived update."""
    X = _data(2)
    model = compile_derivation(get_derivation(_spec()))
    R = np.random.default_rng(5).dirichlet(np.ones(2), size=len(X)).T
    r = R[0]
    new = model.m_step(np.ascontiguousarray(X.T), R, model.default_init(X))
    mu = new["mu_1"].ravel()

    def objective(t):
        L = np.array([[np.exp(t[0]), 0.0], [t[1], np.exp(t[2])]])
        S = L @ L.T
        return -(r @ stats.multivariate_normal.logpdf(X, mu, S) + stats.invwishart.logpdf(S, df=5, scale=_psi(PSI)))

    S0 = np.cov(X.T)
    L0 = np.linalg.cholesky(S0)
    best = optimize.minimize(
        objective,
        [np.log(L0[0, 0]), L0[1, 0], np.log(L0[1, 1])],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    )
    assert best.success, best.message
    L = np.array([[np.exp(best.x[0]), 0.0], [best.x[1], np.exp(best.x[2])]])
    np.testing.assert_allclose(new["Sigma_1"], L @ L.T, rtol=1e-6)


def test_reported_log_posterior_is_scipys_up_to_a_constant():
    """log p(x | theta) + log InvWishart(Sigma_k): its changes between iterations match scipy's."""
    X = _data(3)
    spec = _spec()
    model = compile_derivation(get_derivation(spec))
    result = run_em(model, X, iterations=30)
    assert np.all(np.diff(result.logpost) >= -1e-9)

    def scipy_logpost(params):
        w = [params["pi_1"], params["pi_2"]]
        dens = sum(
            w[k] * stats.multivariate_normal.pdf(X, params[f"mu_{k + 1}"].ravel(), params[f"Sigma_{k + 1}"])
            for k in range(2)
        )
        prior = sum(stats.invwishart.logpdf(params[f"Sigma_{k}"], df=5, scale=_psi(PSI)) for k in (1, 2))
        return np.log(dens).sum() + prior

    start = model.default_init(X)
    one = run_em(model, X, start, iterations=1)
    gap_ours = one.logpost[-1] - one.logpost[0]
    gap_scipy = scipy_logpost(one.params) - scipy_logpost(start)
    assert gap_ours == pytest.approx(gap_scipy, rel=1e-9)


def test_normal_prior_on_the_mean_vectors_gives_the_precision_weighted_update():
    """Normal(m0, v0 I) on each mu_k: mu_k = (I/v0 + N_k Sigma_k^-1)^-1 (m0 1/v0 + Sigma_k^-1 sum_n gamma_nk x_n),
    with the old Sigma_k (ECM: the mean first), then Sigma_k about the new mean."""
    X = _data(4)
    d = get_derivation(_spec(mean=[1, 4]))
    assert d.method == "ECM"
    model = compile_derivation(d)
    R = np.random.default_rng(7).dirichlet(np.ones(2), size=len(X)).T
    old = model.default_init(X)
    new = model.m_step(np.ascontiguousarray(X.T), R, old)
    for k in (1, 2):
        r = R[k - 1]
        P = np.linalg.inv(old[f"Sigma_{k}"])
        mu = np.linalg.solve(np.eye(2) / 4 + r.sum() * P, np.ones(2) / 4 + P @ (r @ X))
        np.testing.assert_allclose(new[f"mu_{k}"].ravel(), mu, rtol=1e-11)
        W = (X - mu).T @ (r[:, None] * (X - mu))
        np.testing.assert_allclose(new[f"Sigma_{k}"], (W + _psi(PSI)) / (r.sum() + 8), rtol=1e-11)

    # the log prior against scipy's densities, up to a constant: the same change between two parameter values
    def scipy_prior(params):
        return sum(
            stats.multivariate_normal.logpdf(params[f"mu_{k}"].ravel(), np.ones(2), 4 * np.eye(2))
            + stats.invwishart.logpdf(params[f"Sigma_{k}"], df=5, scale=_psi(PSI))
            for k in (1, 2)
        )

    assert model.log_prior(new) - model.log_prior(old) == pytest.approx(scipy_prior(new) - scipy_prior(old), rel=1e-10)


@pytest.mark.parametrize(
    "spec",
    [
        {"variance": "free"},
        {"variance": "tied"},
        {"variance": "free", "mean": [1, 4]},
    ],
    ids=["free", "tied", "normal-mean"],
)
def test_emsym_check_passes(spec):
    report = check(_spec(**spec), n=300)
    assert report.passed, report


def test_a_shared_mean_with_a_normal_prior_passes_check():
    spec = load_spec(
        {"components": 2, "dim": 2, "covariance": "full", "mean": "shared", "prior": {"mean": {"normal": [0, 2]}}}
    )
    assert check(spec, n=300).passed


def test_the_prior_keeps_a_collapsing_covariance_positive_definite():
    """Three points on a line own component 2: maximum likelihood makes its covariance singular (the
    runner has to floor it, with a CollapseWarning); with the prior it stays positive definite."""
    rng = np.random.default_rng(6)
    X = np.vstack([rng.normal(0, 1, (50, 2)), [[10.0, 10.0], [11.0, 11.0], [12.0, 12.0]]])
    init = {
        "pi_1": 0.9,
        "pi_2": 0.1,
        "mu_1": np.zeros((2, 1)),
        "mu_2": np.array([[11.0], [11.0]]),
        "Sigma_1": np.eye(2),
        "Sigma_2": np.eye(2),
    }
    ml = compile_derivation(get_derivation(load_spec({"components": 2, "dim": 2, "covariance": "full"})))
    with pytest.warns(CollapseWarning):
        run_em(ml, X, dict(init), max_iter=50)
    model = compile_derivation(get_derivation(_spec(psi=0.1, nu=3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        result = run_em(model, X, dict(init), max_iter=200)
    eig = np.linalg.eigvalsh(result.params["Sigma_2"])
    assert eig.min() > 0.1 / (3 + 3 + 2 + 1) * 0.99  # at least Psi / (N_2 + nu + d + 1), N_2 about 3


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"inverse-wishart": [1, 1]}, r"nu should be > d - 1 = 1"),
        ({"inverse-wishart": [5, [[1, 2], [2, 1]]]}, "positive definite"),
        ({"inverse-wishart": [5, [[1, 0], [1, 1]]]}, "symmetric"),
        ({"inverse-wishart": [5, [[1, 0, 0], [0, 1, 0], [0, 0, 1]]]}, r"2 x 2 \(the model's dim\)"),
        ({"inverse-wishart": [5, [1, 0]]}, "square matrix written as a list of rows"),
        ({"inverse-wishart": [5, -1]}, "a number s > 0"),
        ({"inverse-gamma": [2, 1]}, "expected inverse-wishart"),
    ],
)
def test_bad_wishart_priors_are_one_line(prior, message):
    with pytest.raises(SpecError, match=message) as info:
        load_spec({"components": 2, "dim": 2, "covariance": "full", "prior": {"variance": prior}})
    assert "\n" not in str(info.value)


def test_mclust_blocks_and_a_matrix_scale_with_a_general_d_are_refused():
    with pytest.raises(SpecError, match="mclust covariance block"):
        load_spec({"components": 2, "dim": 2, "covariance": "VEV", "prior": {"variance": {"inverse-wishart": [5, 1]}}})
    # whatever kind is asked for: the refusal is the block's, not a suggestion of another kind
    for prior in ({"variance": {"inverse-gamma": [2, 1]}}, {"mean": {"normal": [0, 10]}}):
        with pytest.raises(SpecError, match=r"\(VEI\) are not derived; use covariance: full .* spherical or diagonal"):
            load_spec({"components": 2, "dim": 2, "covariance": "VEI", "prior": prior})
    assert load_spec({"components": 2, "dim": 2, "covariance": "VEI", "prior": {"weights": {"dirichlet": 2}}}).priors
    with pytest.raises(SpecError, match="needs a concrete dim"):
        prior = {"variance": {"inverse-wishart": [5, PSI]}}
        load_spec({"components": 2, "dim": "d", "covariance": "full", "prior": prior})
