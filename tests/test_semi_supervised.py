"""Semi-supervised EM in one dimension (NYU Q3): one iteration by hand, and the maximum of the
semi-supervised objective found directly by scipy (both independent of emsym's derivation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import norm

from emsym.cache import get_derivation
from emsym.compile import CompiledModel
from emsym.em import run_em
from emsym.spec import load_spec


def _data():
    rng = np.random.default_rng(21)
    x = np.concatenate([rng.normal(-1.0, 1.0, 60), rng.normal(2.0, 0.7, 40)])
    labels = np.zeros(100, dtype=int)
    labels[[0, 3, 7, 11]] = 1
    labels[[60, 65, 70]] = 2
    return x, labels


def _objective(x, labels, w, mu, var):
    """sum over labelled points of log w_y N(x | y) + sum over the others of log sum_k w_k N(x | k)."""
    L = np.column_stack([np.log(w[k]) + norm.logpdf(x, mu[k], np.sqrt(var[k])) for k in range(2)])
    known = labels > 0
    return float(L[known, labels[known] - 1].sum() + logsumexp(L[~known], axis=1).sum())


MODEL = CompiledModel(get_derivation(load_spec({"components": 2, "labelled": True})))
INIT = [{"weight": 0.5, "mean": -0.5, "variance": 1.5}, {"weight": 0.5, "mean": 1.0, "variance": 1.0}]


@pytest.mark.filterwarnings("ignore::emsym.exceptions.ConvergenceWarning")  # one iteration on purpose
def test_one_iteration_matches_a_hand_computation():
    x, labels = _data()
    w0, mu0, v0 = np.array([0.5, 0.5]), np.array([-0.5, 1.0]), np.array([1.5, 1.0])
    L = np.column_stack([np.log(w0[k]) + norm.logpdf(x, mu0[k], np.sqrt(v0[k])) for k in range(2)])
    R = np.exp(L - logsumexp(L, axis=1, keepdims=True))
    R[labels > 0] = np.eye(2)[labels[labels > 0] - 1]  # labelled points: one-hot
    Nk = R.sum(axis=0)
    mu = R.T @ x / Nk
    var = np.array([R[:, k] @ (x - mu[k]) ** 2 / Nk[k] for k in range(2)])
    res = run_em(MODEL, x, MODEL.params_from_components(INIT), labels=labels, max_iter=1, tol=-1.0)
    assert res.loglik[0] == pytest.approx(_objective(x, labels, w0, mu0, v0), rel=1e-12)
    np.testing.assert_allclose([c["weight"] for c in res.components], Nk / len(x), rtol=1e-12)
    np.testing.assert_allclose([c["mean"][0] for c in res.components], mu, rtol=1e-12)
    np.testing.assert_allclose([c["covariance"][0, 0] for c in res.components], var, rtol=1e-12)


def test_converged_run_is_the_maximum_of_the_semi_supervised_objective():
    x, labels = _data()
    res = run_em(MODEL, x, MODEL.params_from_components(INIT), labels=labels)
    assert res.converged

    def unpack(t):
        w = np.exp([t[0], 0.0]) / (1 + np.exp(t[0]))
        return w, t[1:3], np.exp(t[3:5])

    w = np.array([c["weight"] for c in res.components])
    mu = np.array([c["mean"][0] for c in res.components])
    var = np.array([c["covariance"][0, 0] for c in res.components])
    assert res.loglik[-1] == pytest.approx(_objective(x, labels, w, mu, var), rel=1e-12)
    best = minimize(
        lambda t: -_objective(x, labels, *unpack(t)),
        np.array([0.0, -0.5, 1.0, 0.0, 0.0]),
        method="BFGS",
        options={"gtol": 1e-10},
    )
    bw, bmu, bvar = unpack(best.x)
    assert -best.fun <= res.loglik[-1] + 1e-9
    np.testing.assert_allclose(w, bw, atol=1e-5)
    np.testing.assert_allclose(mu, bmu, atol=1e-5)
    np.testing.assert_allclose(var, bvar, atol=1e-5)
