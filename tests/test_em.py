"""The EM runner against the seeds' published numbers and independent references."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from emsym.cache import get_derivation
from emsym.compile import CompiledModel
from emsym.em import run_em
from emsym.exceptions import CollapseWarning, ConvergenceWarning, DataError
from emsym.spec import load_spec


def compiled(spec) -> CompiledModel:
    return CompiledModel(get_derivation(load_spec(spec)))


def normal_pdf(x, m, v):
    return math.exp(-((x - m) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)


# -- MIT 6.86x ----------------------------------------------------------------------------
def test_mit_loglik_estep_first_mstep_and_convergence(mit_data):
    x, comps = mit_data
    model = compiled("standard")
    init = model.params_from_components(comps)
    r0 = run_em(model, x, init, max_iter=0, responsibilities=True)
    assert r0.loglik[0] == pytest.approx(-24.512532330086678, abs=1e-12)  # the seed's printed value
    assert round(r0.loglik[0], 1) == -24.5
    heavier = r0.responsibilities.argmax(axis=1) + 1
    assert heavier.tolist() == [2, 2, 2, 1, 1]
    with pytest.warns(ConvergenceWarning):
        r1 = run_em(model, x, init, max_iter=1)
    assert [r1.params["mu_1"], r1.params["mu_2"]] == pytest.approx([5.1317, 1.4710], abs=5e-5)
    assert [math.sqrt(r1.params["sigma2_1"]), math.sqrt(r1.params["sigma2_2"])] == pytest.approx(
        [0.7846, 2.6395], abs=5e-5
    )
    # "which Gaussian shifts left more / variance increases more": Gaussian 2 both times
    assert 7 - r1.params["mu_2"] > 6 - r1.params["mu_1"]
    assert r1.params["sigma2_2"] / 4 > r1.params["sigma2_1"] / 1
    r = run_em(model, x, init, max_iter=500, tol=1e-14)
    assert r.converged
    assert [r.params["pi_1"], r.params["pi_2"]] == pytest.approx([0.6, 0.4], abs=1e-6)
    assert [r.params["mu_1"], r.params["mu_2"]] == pytest.approx([5.0, -0.5], abs=1e-6)
    assert [math.sqrt(r.params["sigma2_1"]), math.sqrt(r.params["sigma2_2"])] == pytest.approx([0.8165, 0.5], abs=1e-4)
    assert r.params["sigma2_1"] > r.params["sigma2_2"]  # Training 3: sigma_1^2 is larger


def test_mit_forum_mistake_sigma_for_sigma2_gives_the_students_wrong_numbers(mit_data):
    """The forum post's wrong result: the new sigma^2 used as sigma, so the E-step sees (sigma^2)^2."""
    x, comps = mit_data
    model = compiled("standard")
    p = model.params_from_components(comps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(200):
            new = run_em(model, x, p, max_iter=1).params
            p = dict(new, sigma2_1=new["sigma2_1"] ** 2, sigma2_2=new["sigma2_2"] ** 2)
    assert [new["mu_1"], new["mu_2"]] == pytest.approx([5.03812884, 0.69307411], abs=1e-6)
    assert [new["sigma2_1"], new["sigma2_2"]] == pytest.approx([0.6199125, 5.32681503], abs=1e-6)


# -- NYU ------------------------------------------------------------------------------------
def test_nyu_q4_m_step_from_given_responsibilities():
    model = compiled("fixed-sigma")
    x = np.array([[5.0, 15, 25, 30, 40]])
    R = np.array([[0.2, 0.2, 0.8, 0.9, 0.9], [0.8, 0.8, 0.2, 0.1, 0.1]])
    new = model.m_step(x, R, {"pi_1": 0.5, "pi_2": 0.5, "mu_1": 0.0, "mu_2": 0.0})
    assert [new["pi_1"], new["pi_2"], new["mu_1"], new["mu_2"]] == pytest.approx([0.6, 0.4, 29, 14], abs=1e-12)


def test_nyu_q5_exact_responsibilities_and_the_rounded_erratum():
    model = compiled("equal-shared-fixed")
    x = np.array([4.0, 4.6, 2.0])
    r = run_em(model, x, {"mu": 4.0}, max_iter=0, responsibilities=True).responsibilities[:, 0]
    exact = [normal_pdf(v, 4, 1) / (normal_pdf(v, 4, 1) + normal_pdf(v, 4, 4)) for v in x]  # hand formula
    assert r == pytest.approx(exact, rel=1e-12)
    assert r[0] == pytest.approx(2 / 3, rel=1e-12)
    assert r[1:] == pytest.approx([0.6360, 0.3086], abs=5e-5)
    published = [2 / 3, 33 / 52, 5 / 17]  # computed from densities rounded to 0.4, 0.33, 0.38, 0.05, 0.24
    assert abs(r[1] - published[1]) > 1e-3 and abs(r[2] - published[2]) > 1e-2
    with pytest.warns(ConvergenceWarning):
        mu = run_em(model, x, {"mu": 4.0}, max_iter=1).params["mu"]
    w = r + (1 - r) / 4  # the seed's formula for the M-step, with exact responsibilities
    assert mu == pytest.approx(float(np.sum(w * x) / np.sum(w)), rel=1e-12)


# -- references ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cov_type, spec",
    [
        ("full", {"components": 3}),
        ("tied", {"components": 3, "variance": "tied"}),
        ("spherical", {"components": 3, "dim": 2, "covariance": "spherical"}),
    ],
)
def test_agrees_with_sklearn_from_the_same_start(rng, cov_type, spec):
    from sklearn.mixture import GaussianMixture

    d = spec.get("dim", 1)
    X = np.concatenate([rng.normal(c, s, (150, d)) for c, s in [(-4, 1.0), (0, 0.5), (3, 1.5)]])
    model = CompiledModel(get_derivation(load_spec(spec)))
    w, means, var = np.array([0.3, 0.3, 0.4]), np.array([[-3.0] * d, [0.5] * d, [2.0] * d]), np.array([1.0, 2.0, 3.0])
    if cov_type == "tied":
        var = np.full(3, 2.0)
    init = model.params_from_components([{"weight": w[k], "mean": means[k], "variance": var[k]} for k in range(3)])
    prec = {"full": (1 / var).reshape(3, 1, 1), "tied": np.array([[0.5]]), "spherical": 1 / var}[cov_type]
    gm = GaussianMixture(
        3,
        covariance_type=cov_type,
        reg_covar=0,
        max_iter=25,
        tol=0,
        weights_init=w,
        means_init=means,
        precisions_init=prec,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
        ours = run_em(model, X, init, max_iter=25, tol=-1)
    assert np.array([c["weight"] for c in ours.components]) == pytest.approx(gm.weights_, rel=1e-9)
    assert np.array([c["mean"] for c in ours.components]) == pytest.approx(gm.means_, rel=1e-9)
    ours_var = np.array([c["covariance"][0, 0] for c in ours.components])
    assert ours_var == pytest.approx(np.broadcast_to(np.ravel(gm.covariances_), (3,)), rel=1e-9)


def test_fully_labelled_data_gives_the_labelled_ml_estimates(rng):
    """SUTD 1.3: with every point labelled, one step gives n_i/n, the cluster means and spreads / d."""
    model = compiled({"components": 2, "dim": 2, "covariance": "spherical"})
    X = np.concatenate([rng.normal(0, 1, (40, 2)), rng.normal(5, 2, (60, 2))])
    labels = np.array([1] * 40 + [2] * 60)
    with pytest.warns(ConvergenceWarning):
        r = run_em(model, X, labels=labels, max_iter=1)
    for k, idx in enumerate([labels == 1, labels == 2], start=1):
        pts = X[idx]
        assert r.params[f"pi_{k}"] == pytest.approx(idx.mean())
        assert r.params[f"mu_{k}"] == pytest.approx(pts.mean(axis=0))
        assert r.params[f"sigma2_{k}"] == pytest.approx(np.sum((pts - pts.mean(0)) ** 2) / (2 * len(pts)))


@pytest.mark.parametrize(
    "spec",
    [
        "standard",
        "fixed-sigma",
        "equal-shared-fixed",
        "shared-mean-bernoulli",
        "tied-variance",
        {"components": 3, "mixing": {"fixed": [0.2, 0.3, 0.5]}},
        {"components": 3, "mean": {"fixed": [-2, 0, 2]}},
        {"components": 2, "mixing": "equal"},
    ],
)
def test_loglik_never_decreases(rng, spec):
    X = np.concatenate([rng.normal(-2, 1, 120), rng.normal(1.5, 0.7, 80), rng.normal(4, 2, 50)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = run_em(compiled(spec), X, max_iter=60, tol=-1)
    assert len(r.loglik) == 61
    assert np.min(np.diff(r.loglik)) >= -1e-9 * abs(r.loglik[-1])
    assert r.loglik[-1] > r.loglik[0]


def test_collapse_is_a_warning_with_the_variance_floor():
    model = compiled("standard")
    X = np.array([0.0, 0.0, 0.0, 10.0, 10.1, 9.9, 10.05, 5.0])
    init = model.params_from_components(
        [{"weight": 0.5, "mean": 0.0, "variance": 1.0}, {"weight": 0.5, "mean": 8.0, "variance": 4.0}]
    )
    with pytest.warns(CollapseWarning, match="below the variance floor"):
        r = run_em(model, X, init, max_iter=50, variance_floor=1e-3)
    assert min(r.params["sigma2_1"], r.params["sigma2_2"]) == pytest.approx(1e-3)
    assert all(np.isfinite(r.loglik))


def test_bad_runs_are_data_errors():
    model = compiled("tied-variance")
    with pytest.raises(DataError, match="2 point\\(s\\) for 3 components"):
        run_em(model, np.array([1.0, 2.0]))
    with pytest.raises(DataError, match="all points are identical"):
        run_em(model, np.ones(10))
    with pytest.raises(DataError, match=r"point 2 has label 4, expected 1\.\.3"):
        run_em(model, np.arange(5.0), labels=np.array([0, 4, 0, 0, 0]))


def test_exact_m_step_for_ecm_is_the_joint_maximiser_of_q(rng):
    """Cycling NYU Q6's conditional updates reaches the maximiser a direct optimiser finds."""
    from scipy.optimize import minimize

    model = compiled("shared-mean-bernoulli")
    X = np.concatenate([rng.normal(1, 1, 60), rng.normal(1, 3, 40)])
    start = {"theta": 0.5, "mu": 0.0, "sigma2_1": 2.0, "sigma2_2": 5.0}
    R = run_em(model, X, start, max_iter=0, responsibilities=True).responsibilities.T.copy()
    XT = X[None, :]
    exact = model.m_step(XT, R, start, exact=True)
    one_cycle = model.m_step(XT, R, start)

    def negQ(v):  # theta by logit, variances by log: an unconstrained direct maximisation of Q
        p = {"theta": 1 / (1 + np.exp(-v[0])), "mu": v[1], "sigma2_1": np.exp(v[2]), "sigma2_2": np.exp(v[3])}
        return -model.Q(XT, R, p)

    best = minimize(negQ, [0.0, 0.0, np.log(2), np.log(5)], method="BFGS", options={"gtol": 1e-10})
    ref = [1 / (1 + np.exp(-best.x[0])), best.x[1], np.exp(best.x[2]), np.exp(best.x[3])]
    assert [exact[k] for k in ("theta", "mu", "sigma2_1", "sigma2_2")] == pytest.approx(ref, rel=1e-5)
    assert model.Q(XT, R, exact) >= model.Q(XT, R, one_cycle) >= model.Q(XT, R, start)
    assert abs(one_cycle["mu"] - exact["mu"]) > 1e-6  # one ECM cycle is not yet the joint maximiser


def test_diagonal_covariance_agrees_with_sklearn(rng):
    from sklearn.mixture import GaussianMixture

    X = np.concatenate([rng.normal((0, 0, 0), (1, 2, 0.5), (150, 3)), rng.normal((4, -2, 1), (0.5, 1, 2), (100, 3))])
    model = compiled({"components": 2, "dim": 3, "covariance": "diag"})
    means, var = np.array([[1.0, 0, 0], [3, -1, 1]]), np.array([[1.0, 1, 1], [2, 2, 2]])
    init = model.params_from_components([{"weight": 0.5, "mean": means[k], "variance": var[k]} for k in range(2)])
    gm = GaussianMixture(
        2,
        covariance_type="diag",
        reg_covar=0,
        max_iter=25,
        tol=0,
        weights_init=[0.5, 0.5],
        means_init=means,
        precisions_init=1 / var,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
        ours = run_em(model, X, init, max_iter=25, tol=-1)
    assert np.array([np.diag(c["covariance"]) for c in ours.components]) == pytest.approx(gm.covariances_, rel=1e-9)
    assert np.array([c["mean"] for c in ours.components]) == pytest.approx(gm.means_, rel=1e-9)
    assert ours.n_params == gm._n_parameters()


@pytest.mark.parametrize(
    "spec, names",
    [
        ("standard", {"sigma2_1", "mu_2"}),
        ("shared-mean-bernoulli", {"theta", "sigma2_2"}),
        ("tied-variance", {"sigma2"}),
    ],
)
def test_numeric_m_step_agrees_with_the_closed_form(rng, spec, names):
    """Where sympy finds no closed form the runner maximises Q numerically; forced here on known ones."""
    from emsym.check import check
    from emsym.derive import derive

    s = load_spec(spec)
    closed, numeric = derive(s), derive(s, numeric=names)
    assert {u.name for u in numeric.updates if u.numeric} == names
    assert any(st.title.startswith("No closed form") for st in numeric.steps)
    X = np.concatenate([rng.normal(-2, 1, 100), rng.normal(2, 0.7, 80)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = run_em(CompiledModel(closed), X, max_iter=50, tol=-1)
        b = run_em(CompiledModel(numeric), X, max_iter=50, tol=-1)
    for k in a.params:
        assert b.params[k] == pytest.approx(a.params[k], rel=1e-7, abs=1e-9)
    assert check(s, n=300, derivation=numeric).passed
