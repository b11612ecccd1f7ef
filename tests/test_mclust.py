"""mclust's 14 covariance models: names, parameter counts, the constrained M-step, EM runs.

Independent references: mclust's table of covariance parameter counts (transcribed by hand
below), a direct numerical maximisation of the covariance part of Q with scipy over the
(volume, shape, orientation) parameterisation, and scikit-learn for the four models it has.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.optimize import minimize

from emsym import mclust
from emsym.cache import get_derivation
from emsym.check import check
from emsym.compile import CompiledModel
from emsym.em import run_em
from emsym.exceptions import SpecError
from emsym.spec import load_spec

# mclust's documented number of covariance parameters (K components, d dimensions)
TABLE = {
    "EII": lambda K, d: 1,
    "VII": lambda K, d: K,
    "EEI": lambda K, d: d,
    "VEI": lambda K, d: K + d - 1,
    "EVI": lambda K, d: 1 + K * (d - 1),
    "VVI": lambda K, d: K * d,
    "EEE": lambda K, d: d * (d + 1) // 2,
    "VEE": lambda K, d: K + d * (d + 1) // 2 - 1,
    "EVE": lambda K, d: 1 + K * (d - 1) + d * (d - 1) // 2,
    "VVE": lambda K, d: K * d + d * (d - 1) // 2,
    "EEV": lambda K, d: 1 + (d - 1) + K * d * (d - 1) // 2,
    "VEV": lambda K, d: K + (d - 1) + K * d * (d - 1) // 2,
    "EVV": lambda K, d: 1 + K * (d * (d + 1) // 2 - 1),
    "VVV": lambda K, d: K * d * (d + 1) // 2,
}


@pytest.mark.parametrize("name", mclust.NAMES)
def test_parameter_counts_match_mclust(name):
    for K, d in [(2, 2), (3, 4)]:
        model = CompiledModel(get_derivation(load_spec({"components": K, "dim": d, "covariance": name})))
        assert model.n_free == (K - 1) + K * d + TABLE[name](K, d)


def test_six_names_are_the_models_emsym_already_has():
    pairs = {
        "EII": ("spherical", "tied"),
        "VII": ("spherical", "free"),
        "EEI": ("diag", "tied"),
        "VVI": ("diag", "free"),
        "EEE": ("full", "tied"),
        "VVV": ("full", "free"),
    }
    for name, (cov, var) in pairs.items():
        spec = load_spec({"components": 2, "dim": 3, "covariance": name})
        assert (spec.covariance, spec.variance) == (cov, var)
        assert spec == load_spec({"components": 2, "dim": 3, "covariance": cov, "variance": var})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"dim": 1, "covariance": "VEI"}, r"is for d > 1 dimensions"),
        ({"dim": 2, "covariance": "VEI", "variance": "tied"}, r"already says what the variances are"),
        ({"dim": 2, "covariance": "EEE", "variance": "free"}, r"already says what the variances are"),
        ({"dim": 2, "covariance": "VEV", "mean": "shared"}, r"needs a free mean per component"),
        ({"dim": 2, "covariance": "VIE"}, r"mclust name"),
    ],
)
def test_bad_mclust_specs(data, message):
    with pytest.raises(SpecError, match=message):
        load_spec({"components": 2, **data})


def test_derivation_says_which_have_no_closed_form():
    for name in mclust.DECOMPOSED:
        d = get_derivation(load_spec(name))
        text = " ".join(s.text for s in d.steps) + " ".join(d.notes)
        assert ("no closed-form M-step" in text) == (name in mclust.NO_CLOSED_FORM), name
        assert d.update("Sigma").block == name
        assert d.update("mu_k").text == "1/N_k*sum_{n=1}^{N} (gamma_nk*x_n)"


def _parts(name, theta, K, d):
    """(volume, shape, orientation) parameters -> per-component scales (K,), shapes (K, d) with product 1,
    and rotations (K, d, d), each shared where the name says E and fixed where it says I."""
    v, s, o = name
    i = 0
    nv = 1 if v == "E" else K
    scale = np.exp(theta[i : i + nv]) * np.ones(K)
    i += nv
    shape = np.ones((K, d))
    if s != "I":
        ns = 1 if s == "E" else K
        raw = theta[i : i + ns * (d - 1)].reshape(ns, d - 1)
        i += ns * (d - 1)
        shape = np.exp(np.hstack([raw, -raw.sum(axis=1, keepdims=True)])) * np.ones((K, d))
    R = np.broadcast_to(np.eye(d), (K, d, d))
    if o != "I":
        no, m = (1 if o == "E" else K), d * (d - 1) // 2
        Rs = []
        for g in range(no):
            A = np.zeros((d, d))
            A[np.triu_indices(d, 1)] = theta[i + g * m : i + (g + 1) * m]
            Rs.append(expm(A - A.T))
        R = np.array(Rs * K if no == 1 else Rs)
    return scale, shape, R


def _unpack(name, theta, K, d):
    """(volume, shape, orientation) parameters -> K covariances satisfying model ``name``."""
    lam, A, D = _parts(name, theta, K, d)
    return np.einsum("k,kij,kj,klj->kil", lam, D, A, D)


def _scatter(seed, K=3, d=3):
    rng = np.random.default_rng(seed)
    W = []
    for k in range(K):
        Y = rng.normal(size=(40 + 10 * k, d)) @ rng.normal(size=(d, d))
        W.append(Y.T @ Y)
    return np.array(W), np.array([40.0 + 10 * k for k in range(K)])


def _safe_q(W, N, S):
    try:
        q = mclust.q_sigma(W, N, S)
    except np.linalg.LinAlgError:
        return -1e300  # outside the model's domain (a singular matrix): worse than anything
    return q if np.isfinite(q) else -1e300


CLOSED = [n for n in mclust.DECOMPOSED if n not in mclust.NO_CLOSED_FORM]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", CLOSED)
def test_closed_form_m_step_is_the_global_maximum(name, seed):
    """EVI, EEV, EVV: Q_Sigma at emsym's one-pass M-step >= the best of scipy L-BFGS from six starts."""
    W, N = _scatter(seed)
    K, d = W.shape[:2]
    S, passes = mclust.constrained_covariances(name, W, N, np.array([np.eye(d)] * K))
    assert passes == 1
    ours = mclust.q_sigma(W, N, S)
    rng = np.random.default_rng(seed + 100)
    best = max(
        -minimize(
            lambda t: -_safe_q(W, N, _unpack(name, t, K, d)),
            rng.normal(scale=0.3, size=mclust.n_covariance_params(name, K, d)),
            method="L-BFGS-B",
            options={"maxiter": 5000},
        ).fun
        for _ in range(6)
    )
    assert ours >= best - 1e-7 * abs(best)
    assert ours <= best + 1e-5 * abs(best)  # scipy reaches it too: the same maximum


def _around(name, S, delta):
    """Covariances near S within model ``name``: volumes, shapes (|A| = 1) and orientations moved by delta."""
    _, _, o = name
    K, d, _ = S.shape
    w, V = np.linalg.eigh(S)
    if o == "I":
        V = np.broadcast_to(np.eye(d), (K, d, d))
        w = np.diagonal(S, axis1=1, axis2=2)
    elif o == "E":
        V = np.broadcast_to(V[0], (K, d, d))
        w = np.einsum("kji,kjl,kli->ki", V, S, V)
    scale, shape, R = _parts(name, delta, K, d)
    D = V @ R
    return np.einsum("k,kij,kj,klj->kil", scale, D, w * shape, D)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", list(mclust.NO_CLOSED_FORM))
def test_iterative_m_step_is_a_constrained_local_maximum(name, seed):
    """VEI, VEE, EVE, VVE, VEV: scipy BFGS started at emsym's answer, moving within the model, finds no
    higher Q_Sigma, and the answer is no worse than the previous covariances (a generalised EM step).
    Q_Sigma can have several local maxima here (EVE and VVE especially); emsym's block ascent runs
    from several starts, but promises a local maximum, as mclust's own iterative M-steps do."""
    W, N = _scatter(seed)
    K, d = W.shape[:2]
    old = mclust.random_covariances(name, K, d, np.random.default_rng(seed))
    S, passes = mclust.constrained_covariances(name, W, N, old)
    assert passes > 1
    ours = mclust.q_sigma(W, N, S)
    assert ours >= mclust.q_sigma(W, N, old)
    assert mclust.q_sigma(W, N, _around(name, S, np.zeros(mclust.n_covariance_params(name, K, d)))) == pytest.approx(
        ours, rel=1e-12
    )
    res = minimize(
        lambda t: -_safe_q(W, N, _around(name, S, t)), np.zeros(mclust.n_covariance_params(name, K, d)), method="BFGS"
    )
    assert -res.fun <= ours + 1e-9 * abs(ours)


@pytest.mark.parametrize("name", mclust.DECOMPOSED)
def test_m_step_never_decreases_q_from_the_previous_covariances(name):
    rng = np.random.default_rng(5)
    K, d = 2, 3
    W = np.array([(lambda Y: Y.T @ Y)(rng.normal(size=(30, d)) @ rng.normal(size=(d, d))) for _ in range(K)])
    N = np.array([30.0, 30.0])
    old = mclust.random_covariances(name, K, d, rng)
    new, _ = mclust.constrained_covariances(name, W, N, old)
    assert mclust.q_sigma(W, N, new) >= mclust.q_sigma(W, N, old) - 1e-9


@pytest.mark.parametrize("name", mclust.NAMES)
def test_every_name_passes_emsym_check(name):
    report = check(load_spec({"components": 2, "dim": 3, "covariance": name}), n=400)
    assert report.passed, [i for i in report.items if i.passed is False]


def test_nested_models_order_the_maximised_likelihoods():
    """A model that contains another reaches at least its likelihood (same data, same start)."""
    rng = np.random.default_rng(0)
    X = np.vstack(
        [
            rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], 200),
            rng.multivariate_normal([3, 2], [[2, -0.7], [-0.7, 1]], 300),
        ]
    )
    best = {}
    for name in mclust.NAMES:
        model = CompiledModel(get_derivation(load_spec({"components": 2, "dim": 2, "covariance": name})))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            best[name] = run_em(model, X, max_iter=2000, tol=1e-12).loglik[-1]
    for small, big in [
        ("EII", "VII"),
        ("EII", "EEI"),
        ("EEI", "VEI"),
        ("VEI", "VVI"),
        ("EVI", "VVI"),
        ("EEE", "VEE"),
        ("VEE", "VVE"),
        ("EVE", "VVE"),
        ("EEV", "VEV"),
        ("VEV", "VVV"),
        ("EVV", "VVV"),
        ("VVE", "VVV"),
    ]:
        assert best[big] >= best[small] - 1e-6, (small, big)
