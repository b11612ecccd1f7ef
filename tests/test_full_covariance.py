"""Full covariance in d dimensions: matrix-calculus derivation, runner, check, references.

References are independent of emsym's derivation: finite differences (Jacobi's formula),
a hand-written numpy transcription of the textbook M-step (Bishop, PRML eqs. 9.24-9.26;
the Georgia Tech notes' Sigma_k), scikit-learn's GaussianMixture ('full', 'tied') and a
direct maximisation of the log-likelihood with scipy.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emsym.cache import get_derivation
from emsym.check import check
from emsym.compile import CompiledModel
from emsym.em import run_em
from emsym.exceptions import CollapseWarning, ConvergenceWarning
from emsym.printing import text
from emsym.spec import load_spec


def _spd(rng, d, scale=1.0):
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return scale * (Q * rng.uniform(0.5, 2.0, d)) @ Q.T


def _data(seed=0, n=(120, 180)):
    rng = np.random.default_rng(seed)
    A = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], n[0])
    B = rng.multivariate_normal([3, 1], [[1.5, -0.5], [-0.5, 0.8]], n[1])
    return np.vstack([A, B])


def _model(**kw):
    spec = load_spec({"components": 2, "dim": 2, "covariance": "full", **kw})
    return CompiledModel(get_derivation(spec))


INIT = [
    {"weight": 0.4, "mean": np.array([0.5, 0.5]), "variance": np.array([[1.0, 0.2], [0.2, 1.0]])},
    {"weight": 0.6, "mean": np.array([2.0, 0.0]), "variance": np.array([[2.0, 0.0], [0.0, 1.0]])},
]


def test_jacobi_formula_the_derivation_states_holds_numerically():
    """d log|L| / dL = L^-1 for symmetric L (the rule emsym applies where sympy returns 0)."""
    rng = np.random.default_rng(1)
    L = _spd(rng, 4)
    h = 1e-6
    grad = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            E = np.zeros((4, 4))
            E[i, j] = h
            grad[i, j] = (np.linalg.slogdet(L + E)[1] - np.linalg.slogdet(L - E)[1]) / (2 * h)
    np.testing.assert_allclose(grad, np.linalg.inv(L).T, rtol=1e-6, atol=1e-8)


def test_derivation_records_matrix_calculus_steps_and_textbook_updates():
    d = get_derivation(load_spec({"components": "K", "dim": "d", "covariance": "full"}))
    titles = [s.title for s in d.steps]
    assert "Precision and trace form" in titles
    assert "Differentiate Q with respect to Lambda_k" in titles
    assert d.method == "EM"
    assert d.update("mu_k").text == "1/N_k*sum_{n=1}^{N} (gamma_nk*x_n)"
    assert d.update("Sigma_k").text == "1/N_k*sum_{n=1}^{N} (gamma_nk*(x_n - mu_k)*(x_n^T - mu_k^T))"
    assert d.update("Sigma_k").uses == ("mu_k",)
    tied = get_derivation(load_spec({"components": "K", "dim": "d", "covariance": "full", "variance": "tied"}))
    assert tied.update("Sigma").text == "1/N*sum_{j=1}^{K} (sum_{n=1}^{N} (gamma_nj*(x_n - mu_j)*(x_n^T - mu_j^T)))"


def test_shared_mean_with_free_covariances_is_a_precision_weighted_average():
    d = get_derivation(load_spec({"components": 2, "dim": 2, "covariance": "full", "mean": "shared"}))
    assert d.method == "ECM"  # mu uses Sigma_k, Sigma_k uses mu
    u = d.update("mu")
    assert set(u.uses) == {"Sigma_1", "Sigma_2"}
    assert text(u.display) == (
        "(N_1*Sigma_1^-1 + N_2*Sigma_2^-1)^-1*(Sigma_1^-1*sum_{n=1}^{N} (gamma_n1*x_n) + "
        "Sigma_2^-1*sum_{n=1}^{N} (gamma_n2*x_n))"
    )
    # a tied covariance cancels: the shared mean is the plain data mean
    tied = get_derivation(
        load_spec({"components": 2, "dim": 2, "covariance": "full", "mean": "shared", "variance": "tied"})
    )
    assert tied.update("mu").text == "1/N*sum_{n=1}^{N} (x_n)"
    assert tied.method == "EM"


def _hand_m_step(X, R, tied=False):
    """PRML 9.24-9.26 in numpy: N_k, mu_k, Sigma_k (tied: pooled scatter / N)."""
    Nk = R.sum(axis=0)
    mu = (R.T @ X) / Nk[:, None]
    S = [((X - mu[k]) * R[:, k : k + 1]).T @ (X - mu[k]) for k in range(R.shape[1])]
    if tied:
        pooled = sum(S) / len(X)
        S = [pooled] * R.shape[1]
    else:
        S = [S[k] / Nk[k] for k in range(R.shape[1])]
    return Nk / len(X), mu, np.array(S)


def _hand_e_step(X, w, mu, S):
    L = np.column_stack([np.log(w[k]) + multivariate_normal(mu[k], S[k]).logpdf(X) for k in range(len(w))])
    return np.exp(L - logsumexp(L, axis=1, keepdims=True)), float(logsumexp(L, axis=1).sum())


@pytest.mark.parametrize("tied", [False, True])
def test_one_iteration_matches_a_hand_computation(tied):
    X = _data()
    model = _model(variance="tied" if tied else "free")
    init = [dict(c) for c in INIT]
    if tied:
        init[1]["variance"] = init[0]["variance"]
    params = model.params_from_components(init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = run_em(model, X, params, max_iter=1, tol=-1.0)
    w0 = np.array([c["weight"] for c in init])
    R, ll0 = _hand_e_step(X, w0, np.array([c["mean"] for c in init]), np.array([c["variance"] for c in init]))
    w, mu, S = _hand_m_step(X, R, tied)
    assert res.loglik[0] == pytest.approx(ll0, rel=1e-12)
    got = res.components
    np.testing.assert_allclose([c["weight"] for c in got], w, rtol=1e-12)
    np.testing.assert_allclose([c["mean"] for c in got], mu, rtol=1e-12)
    np.testing.assert_allclose([c["covariance"] for c in got], S, rtol=1e-11)


@pytest.mark.parametrize("cov_type", ["full", "tied"])
def test_agrees_with_sklearn_in_two_dimensions(cov_type):
    from sklearn.mixture import GaussianMixture

    X = _data(seed=4)
    model = _model(variance="free" if cov_type == "full" else "tied")
    init = [dict(c) for c in INIT]
    if cov_type == "tied":
        init[1]["variance"] = init[0]["variance"]
    covs = np.array([c["variance"] for c in init])
    gm = GaussianMixture(
        2,
        covariance_type=cov_type,
        reg_covar=0.0,
        max_iter=50,
        tol=0.0,
        weights_init=[c["weight"] for c in init],
        means_init=[c["mean"] for c in init],
        precisions_init=np.linalg.inv(covs) if cov_type == "full" else np.linalg.inv(covs[0]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
        res = run_em(model, X, model.params_from_components(init), max_iter=50, tol=-1.0)
    ref = gm.covariances_ if cov_type == "full" else np.array([gm.covariances_] * 2)
    np.testing.assert_allclose([c["covariance"] for c in res.components], ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([c["mean"] for c in res.components], gm.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([c["weight"] for c in res.components], gm.weights_, rtol=1e-9)
    assert res.n_params == gm._n_parameters()
    assert res.bic == pytest.approx(gm.bic(X), rel=1e-9)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"variance": "tied"},
        {"mean": "shared"},
        {"mean": "shared", "variance": "tied"},
        {"mixing": "equal"},
        {"variance": {"fixed": [[[1, 0.3], [0.3, 1]], [[2, -0.5], [-0.5, 1]]]}},
        {"mean": {"fixed": [[0, 0], [3, 1]]}},
        {"components": 3, "dim": 3},
    ],
)
def test_emsym_check_passes(kw):
    spec = load_spec({"components": 2, "dim": 2, "covariance": "full", **kw})
    report = check(spec, n=400)
    assert report.passed, [i for i in report.items if i.passed is False]


def test_converged_estimate_maximises_the_log_likelihood():
    """scipy BFGS over (softmax weights, means, Cholesky factors) from EM's answer finds nothing higher."""
    X = _data(seed=7)
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = run_em(model, X, model.params_from_components(INIT), max_iter=2000, tol=1e-12)
    comps = res.components

    def pack(cs):
        out = [np.log(cs[0]["weight"] / cs[1]["weight"])]
        for c in cs:
            L = np.linalg.cholesky(c["covariance"])
            out += list(c["mean"]) + [np.log(L[0, 0]), L[1, 0], np.log(L[1, 1])]
        return np.array(out)

    def nll(v):
        a = v[0]
        w = np.array([np.exp(a), 1.0]) / (1 + np.exp(a))
        cols = []
        for k in range(2):
            m = v[1 + 5 * k : 3 + 5 * k]
            l0, l1, l2 = v[3 + 5 * k : 6 + 5 * k]
            L = np.array([[np.exp(l0), 0], [l1, np.exp(l2)]])
            cols.append(np.log(w[k]) + multivariate_normal(m, L @ L.T).logpdf(X))
        return -float(logsumexp(np.column_stack(cols), axis=1).sum())

    v0 = pack(comps)
    assert -nll(v0) == pytest.approx(res.loglik[-1], rel=1e-12)
    best = minimize(nll, v0, method="BFGS")
    assert -best.fun <= res.loglik[-1] + 1e-6


def test_a_collapsing_covariance_is_regularised_with_a_warning():
    """Three collinear points own one component: its covariance turns singular; floor, not crash."""
    rng = np.random.default_rng(2)
    line = np.array([[10.0, 10.0], [11.0, 11.0], [12.0, 12.0]])
    X = np.vstack([rng.normal(size=(100, 2)), line])
    model = _model()
    init = model.params_from_components(
        [
            {"weight": 0.97, "mean": np.zeros(2), "variance": np.eye(2)},
            {"weight": 0.03, "mean": np.array([11.0, 11.0]), "variance": np.eye(2)},
        ]
    )
    with pytest.warns(CollapseWarning, match="nearly\\) singular"):
        res = run_em(model, X, init, max_iter=50, tol=1e-10)
    low = np.linalg.eigvalsh(res.components[1]["covariance"])[0]
    floor = 1e-6 * float(np.mean((X - X.mean(axis=0)) ** 2))
    assert low == pytest.approx(floor, rel=1e-6)
    assert np.all(np.isfinite(res.loglik))


def test_semi_supervised_full_covariance_keeps_labels_one_hot():
    X = _data(seed=9)
    labels = np.zeros(len(X), dtype=int)
    labels[:4], labels[120:124] = 1, 2
    model = CompiledModel(
        get_derivation(load_spec({"components": 2, "dim": 2, "covariance": "full", "labelled": True}))
    )
    res = run_em(model, X, labels=labels, responsibilities=True)
    np.testing.assert_array_equal(res.responsibilities[:4], [[1, 0]] * 4)
    np.testing.assert_array_equal(res.responsibilities[120:124], [[0, 1]] * 4)
    # the labelled points' component is the one near their cluster
    assert np.linalg.norm(res.components[0]["mean"] - [0, 0]) < 0.5
    assert np.linalg.norm(res.components[1]["mean"] - [3, 1]) < 0.5


def test_cli_full_covariance_errors_are_one_line(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("x1,x2\n" + "\n".join(f"{a},{b}" for a, b in _data()) + "\n")
    model = tmp_path / "m.yaml"
    model.write_text("components: 2\ndim: 3\ncovariance: full\n")
    init = tmp_path / "i.yaml"
    init.write_text(
        "components:\n  - {weight: 0.5, mean: [0, 0], covariance: [[1, 2], [2, 1]]}\n"
        "  - {weight: 0.5, mean: [3, 1], variance: 1}\n"
    )
    for args, message in [
        (["run", str(model), "--data", str(data)], "3-dimensional, but the data has 2"),
        (
            ["run", str(model).replace("m.yaml", "m2.yaml"), "--data", str(data), "--init", str(init)],
            "should be positive definite",
        ),
    ]:
        (tmp_path / "m2.yaml").write_text("components: 2\ndim: 2\ncovariance: full\n")
        out = subprocess.run([sys.executable, "-m", "emsym", *args], capture_output=True, text=True)
        assert out.returncode == 2
        assert message in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


FIXED_VAR = {"spherical": [1, 2], "diag": [[1, 2], [2, 1]], "full": [[[1, 0.3], [0.3, 1]], [[2, -0.5], [-0.5, 1]]]}


@pytest.mark.parametrize("cov", ["spherical", "diag", "full"])
def test_every_multivariate_combination_passes_check(cov):
    """covariance x variance (free, tied, fixed) x mean (free, shared, fixed) x mixing (free, equal) in 2-d."""
    import itertools

    for var, mean, mix in itertools.product(["free", "tied", "fixed"], ["free", "shared", "fixed"], ["free", "equal"]):
        if var == mean == "fixed" and mix == "equal":
            continue  # nothing to estimate (refused by the spec)
        spec = load_spec(
            {
                "components": 2,
                "dim": 2,
                "covariance": cov,
                "mixing": mix,
                "variance": {"fixed": FIXED_VAR[cov]} if var == "fixed" else var,
                "mean": {"fixed": [[0, 0], [3, 1]]} if mean == "fixed" else mean,
            }
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = check(spec, n=300)
        assert report.passed, (var, mean, mix, [i.detail for i in report.items if i.passed is False])


@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical"])
def test_default_stopping_rule_lands_on_the_maximum(cov_type):
    """With the default tol and param_tol, a run ends within 1e-7 of scikit-learn run for 3,000 iterations."""
    from sklearn.mixture import GaussianMixture

    X = _data(seed=11)
    covariance = "full" if cov_type in ("full", "tied") else cov_type
    variance = "tied" if cov_type == "tied" else "free"
    model = CompiledModel(
        get_derivation(load_spec({"components": 2, "dim": 2, "covariance": covariance, "variance": variance}))
    )
    start = {"full": np.eye(2), "tied": np.eye(2), "diag": np.array([1.0, 1.0]), "spherical": 1.0}[cov_type]
    init = [
        {"weight": 0.5, "mean": np.array([0.5, 0.5]), "variance": start},
        {"weight": 0.5, "mean": np.array([2.0, 0.0]), "variance": start},
    ]
    res = run_em(model, X, model.params_from_components(init))
    assert res.converged
    prec = {"full": np.array([np.eye(2)] * 2), "tied": np.eye(2), "diag": np.ones((2, 2)), "spherical": np.ones(2)}[
        cov_type
    ]
    assert res.iterations < 1000
    gm = GaussianMixture(
        2,
        covariance_type=cov_type,
        reg_covar=0.0,
        max_iter=3000,
        tol=0.0,
        weights_init=[0.5, 0.5],
        means_init=[[0.5, 0.5], [2.0, 0.0]],
        precisions_init=prec,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol 0: scikit-learn warns that it ran out of iterations
        gm.fit(X)
    np.testing.assert_allclose([c["mean"] for c in res.components], gm.means_, atol=1e-7)
    np.testing.assert_allclose([c["weight"] for c in res.components], gm.weights_, atol=1e-7)
    ours = np.array([c["covariance"] for c in res.components])
    theirs = {
        "full": gm.covariances_,
        "tied": np.array([gm.covariances_] * 2),
        "diag": np.array([np.diag(v) for v in gm.covariances_]) if cov_type == "diag" else None,
        "spherical": np.array([v * np.eye(2) for v in gm.covariances_]),
    }[cov_type]
    np.testing.assert_allclose(ours, theirs, atol=1e-7)


def test_cli_runs_full_and_mclust_models(tmp_path):
    import json

    X = _data()
    data = tmp_path / "d.csv"
    data.write_text("x1,x2\n" + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in X) + "\n")
    init = tmp_path / "i.json"
    init.write_text(
        json.dumps(
            {
                "components": [
                    {"weight": c["weight"], "mean": c["mean"].tolist(), "covariance": c["variance"].tolist()}
                    for c in INIT
                ]
            }
        )
    )
    model = tmp_path / "m.yaml"
    model.write_text("components: 2\ndim: 2\ncovariance: full\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "emsym",
            "run",
            str(model),
            "--data",
            str(data),
            "--init",
            str(init),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    m = _model()
    ref = run_em(m, X, m.params_from_components(INIT))
    np.testing.assert_allclose(
        [c["covariance"] for c in got["components"]], [c["covariance"] for c in ref.components], rtol=1e-12
    )
    assert got["n_params"] == 11
    out = subprocess.run([sys.executable, "-m", "emsym", "derive", "VEI"], capture_output=True, text=True)
    assert out.returncode == 0 and "VEI has no closed-form M-step" in out.stdout
    out = subprocess.run([sys.executable, "-m", "emsym", "check", "EVV"], capture_output=True, text=True)
    assert out.returncode == 0 and "all checks passed" in out.stdout
