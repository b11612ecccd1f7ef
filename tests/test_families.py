"""Non-Gaussian families (issue 9): derived, compiled and run, against independent references.

References: scipy.stats log densities for the log-likelihood; one EM iteration written by hand
in numpy (the textbook updates, PRML 9.3.3 for Bernoulli); the maximum-likelihood estimate of a
direct numerical optimiser (scipy.optimize on the log-likelihood itself, no EM).
"""

from __future__ import annotations

import contextlib
import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsym.cache import get_derivation
from emsym.check import check
from emsym.cli import main
from emsym.compile import compile_derivation
from emsym.em import run_em
from emsym.exceptions import DataError, SpecError
from emsym.spec import load_spec

stats = pytest.importorskip("scipy.stats")
optimize = pytest.importorskip("scipy.optimize")
special = pytest.importorskip("scipy.special")


def _write(path, text):
    path.write_text(text)
    return str(path)


def _csv(path, X, names):
    rows = "\n".join(",".join(repr(float(v)) for v in np.atleast_1d(r)) for r in X)
    return _write(path, ",".join(names) + "\n" + rows + "\n")


# -- data and hand-written references -------------------------------------------------------
def _poisson_data(rng):
    return np.concatenate([rng.poisson(1.5, 120), rng.poisson(7.0, 80), rng.poisson(15.0, 50)]).astype(float)


def _case(name, rng):
    """(model dict, X (n, d), init components, column names, logpdf(X, comp) -> (n,))."""
    if name == "poisson":
        X = _poisson_data(rng)[:, None]
        init = [{"weight": 0.3, "rate": 1.0}, {"weight": 0.3, "rate": 5.0}, {"weight": 0.4, "rate": 11.0}]
        return (
            {"family": "poisson", "components": 3},
            X,
            init,
            ["count"],
            lambda X, c: stats.poisson.logpmf(X[:, 0], c["rate"]),
        )
    if name == "exponential":
        X = np.concatenate([rng.exponential(0.5, 150), rng.exponential(6.0, 100)])[:, None]
        init = [{"weight": 0.5, "rate": 1.0}, {"weight": 0.5, "rate": 0.3}]
        return (
            {"family": "exponential", "components": 2},
            X,
            init,
            ["hours"],
            lambda X, c: stats.expon.logpdf(X[:, 0], scale=1 / c["rate"]),
        )
    if name == "bernoulli":
        P = np.array([[0.9, 0.8, 0.1, 0.2, 0.7, 0.1], [0.1, 0.3, 0.8, 0.9, 0.4, 0.6]])
        z = rng.random(300) < 0.4
        X = (rng.random((300, 6)) < P[z.astype(int)]).astype(float)
        init = [
            {"weight": 0.5, "p": [0.6, 0.55, 0.4, 0.45, 0.5, 0.4]},
            {"weight": 0.5, "p": [0.4, 0.45, 0.6, 0.55, 0.5, 0.6]},
        ]
        return (
            {"family": "bernoulli", "components": 2},
            X,
            init,
            list("abcdef"),
            lambda X, c: stats.bernoulli.logpmf(X, np.asarray(c["p"])).sum(axis=1),
        )
    if name == "multinomial":
        P = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
        z = (rng.random(200) < 0.5).astype(int)
        X = np.array([rng.multinomial(rng.integers(5, 25), P[k]) for k in z], dtype=float)
        init = [{"weight": 0.5, "p": [0.5, 0.3, 0.2]}, {"weight": 0.5, "p": [0.2, 0.3, 0.5]}]
        return (
            {"family": "multinomial", "components": 2},
            X,
            init,
            ["w1", "w2", "w3"],
            lambda X, c: np.array([stats.multinomial.logpmf(r, int(r.sum()), c["p"]) for r in X]),
        )
    raise KeyError(name)


def _loglik(X, comps, logpdf):
    return float(special.logsumexp([np.log(c["weight"]) + logpdf(X, c) for c in comps], axis=0).sum())


def _hand_em_step(name, X, comps, logpdf):
    """One EM iteration written out by hand (the textbook updates), independent of emsym."""
    L = np.array([np.log(c["weight"]) + logpdf(X, c) for c in comps])
    R = np.exp(L - special.logsumexp(L, axis=0))
    Nk = R.sum(axis=1)
    out = []
    for k in range(len(comps)):
        new = {"weight": Nk[k] / X.shape[0]}
        if name == "poisson":
            new["rate"] = R[k] @ X[:, 0] / Nk[k]
        elif name == "exponential":
            new["rate"] = Nk[k] / (R[k] @ X[:, 0])
        elif name == "bernoulli":
            new["p"] = R[k] @ X / Nk[k]
        else:  # multinomial: expected counts per category, normalised
            s = R[k] @ X
            new["p"] = s / s.sum()
        out.append(new)
    return out


def _run_cli(tmp_path, capsys, name, model, X, init, cols, *args):
    m = _write(tmp_path / f"{name}.yaml", json.dumps(model))
    d = _csv(tmp_path / f"{name}.csv", X, cols)
    i = _write(tmp_path / f"{name}-init.yaml", json.dumps({"components": init}))
    capsys.readouterr()
    assert main(["run", m, "--data", d, "--init", i, "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


FAMILIES = ["poisson", "exponential", "bernoulli", "multinomial"]


@pytest.mark.parametrize("name", FAMILIES)
def test_loglik_at_start_and_one_iteration_match_hand_references(name, tmp_path, capsys):
    rng = np.random.default_rng(11)
    model, X, init, cols, logpdf = _case(name, rng)
    out = _run_cli(tmp_path, capsys, name, model, X, init, cols, "--iterations", "1")
    assert out["loglik"][0] == pytest.approx(_loglik(X, init, logpdf), rel=1e-12)
    hand = _hand_em_step(name, X, init, logpdf)
    assert out["loglik"][1] == pytest.approx(_loglik(X, hand, logpdf), rel=1e-12)
    for ours, ref in zip(out["components"], hand):
        assert set(ours) == set(ref)
        for key in ref:
            assert np.allclose(ours[key], ref[key], rtol=1e-12, atol=1e-14), (key, ours[key], ref[key])


def _unpack(name, theta, K, d):
    """Unconstrained vector -> components (softmax weights, log rates, logit or softmax probabilities)."""
    w = special.softmax(np.r_[0.0, theta[: K - 1]])
    rest = theta[K - 1 :]
    comps = []
    for k in range(K):
        if name in ("poisson", "exponential"):
            comps.append({"weight": w[k], "rate": float(np.exp(rest[k]))})
        elif name == "bernoulli":
            comps.append({"weight": w[k], "p": special.expit(rest[k * d : (k + 1) * d])})
        else:
            comps.append({"weight": w[k], "p": special.softmax(np.r_[0.0, rest[k * (d - 1) : (k + 1) * (d - 1)]])})
    return comps


def _pack(name, comps):
    w = np.array([c["weight"] for c in comps])
    theta = list(np.log(w[1:] / w[0]))
    for c in comps:
        if name in ("poisson", "exponential"):
            theta.append(np.log(c["rate"]))
        elif name == "bernoulli":
            theta.extend(special.logit(np.asarray(c["p"])))
        else:
            p = np.asarray(c["p"])
            theta.extend(np.log(p[1:] / p[0]))
    return np.array(theta)


@pytest.mark.parametrize("name", FAMILIES)
def test_em_reaches_the_maximum_likelihood_of_a_direct_optimiser(name, tmp_path, capsys):
    rng = np.random.default_rng(5)
    model, X, init, cols, logpdf = _case(name, rng)
    out = _run_cli(tmp_path, capsys, name, model, X, init, cols, "--tol", "1e-12", "--max-iter", "5000")
    assert out["converged"]
    ours = out["components"]
    K, d = len(ours), X.shape[1]
    res = optimize.minimize(
        lambda t: -_loglik(X, _unpack(name, t, K, d), logpdf), _pack(name, init), method="BFGS", options={"gtol": 1e-8}
    )
    best = _unpack(name, res.x, K, d)
    assert out["loglik"][-1] >= -res.fun - 1e-6  # EM is at least as likely as the optimiser's optimum
    assert out["loglik"][-1] == pytest.approx(_loglik(X, ours, logpdf), rel=1e-12)
    order = np.argsort([np.ravel(c.get("rate", c.get("p")))[0] for c in best])
    mine = np.argsort([np.ravel(c.get("rate", c.get("p")))[0] for c in ours])
    for a, b in zip(order, mine):
        key = "rate" if "rate" in ours[0] else "p"
        assert best[a]["weight"] == pytest.approx(ours[b]["weight"], abs=2e-4)
        assert np.allclose(best[a][key], ours[b][key], rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("family", ["poisson", "exponential", "bernoulli", "multinomial", "categorical"])
def test_every_shipped_family_passes_check(family):
    report = check(load_spec({"family": family, "components": 3}), n=400, seed=2)
    assert report.passed, [i for i in report.items if i.passed is False]
    assert [i.passed for i in report.items][:3] == [True, True, True]


def test_map_updates_are_the_conjugate_posterior_modes():
    """The textbook MAP updates: Beta(a, b) on p gives (S + a - 1)/(N_k + a + b - 2), Dirichlet(alpha) on
    the weights gives (N_k + alpha - 1)/(N + K(alpha - 1))."""
    spec = load_spec(
        {
            "family": "bernoulli",
            "components": 3,
            "dim": 4,
            "prior": {"weights": {"dirichlet": 3}, "p": {"beta": [2, 5]}},
        }
    )
    model = compile_derivation(get_derivation(spec))
    rng = np.random.default_rng(0)
    X = (rng.random((50, 4)) < 0.3).astype(float)
    R = rng.dirichlet(np.ones(3), size=50).T
    params = {"pi": np.full(3, 1 / 3), "p": np.full((3, 4), 0.5)}
    new = model.m_step(np.ascontiguousarray(X.T), R, params)
    Nk = R.sum(axis=1)
    assert np.allclose(new["pi"], (Nk + 2) / (50 + 3 * 2), rtol=1e-14)
    assert np.allclose(new["p"], (R @ X + 1) / (Nk[:, None] + 5), rtol=1e-14)
    report = check(spec, n=300, seed=1)
    assert report.passed
    assert any("log posterior (MAP-EM) never decreases" in i.name for i in report.items)


def test_a_beta_prior_keeps_a_degenerate_probability_off_zero():
    """Coordinate 3 is never 1: ML sends p_k3 to 0 (held at the edge, with a warning); MAP does not."""
    rng = np.random.default_rng(3)
    X = (rng.random((80, 3)) < [0.7, 0.4, 0.0]).astype(float)
    init = {"pi": np.array([0.5, 0.5]), "p": np.array([[0.6, 0.5, 0.3], [0.4, 0.3, 0.2]])}
    ml = compile_derivation(get_derivation(load_spec({"family": "bernoulli", "components": 2, "dim": 3})))
    with pytest.warns(Warning, match="reached 0"):
        res = run_em(ml, X, init, iterations=5)
    assert np.all(res.params["p"][:, 2] <= 1e-11)
    spec = load_spec({"family": "bernoulli", "components": 2, "dim": 3, "prior": {"p": {"beta": [2, 2]}}})
    mapm = compile_derivation(get_derivation(spec))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = run_em(mapm, X, init, iterations=50)
    assert np.all(res.params["p"][:, 2] > 0.005)
    assert np.all(np.diff(res.logpost) >= -1e-9)


def test_partial_fix_and_shared_parameters():
    spec = load_spec({"family": "poisson", "components": 3, "rate": {"fixed": [None, 4, None]}})
    model = compile_derivation(get_derivation(spec))
    X = _poisson_data(np.random.default_rng(1))[:, None]
    res = run_em(model, X, iterations=30)
    assert res.components[1]["rate"] == 4.0
    assert model.n_free == 2 + 2
    shared = load_spec({"family": "exponential", "components": 2, "rate": "shared", "mixing": {"fixed": [0.3, 0.7]}})
    assert check(shared, n=300).passed
    model = compile_derivation(get_derivation(shared))
    res = run_em(model, X + 0.5, iterations=3)
    assert res.components[0]["rate"] == res.components[1]["rate"] == pytest.approx(1 / float(np.mean(X + 0.5)))
    # by hand: dQ/dlambda = sum_n sum_j gamma_nj (x_n/lambda - 1) = 0 and sum_j gamma_nj = 1 give the mean
    d = get_derivation(load_spec({"family": "poisson", "components": 3, "rate": "shared"}))
    assert d.update("rate").text == "sum_{n=1}^{N} (x_n)/N"
    assert "Use the normalisation of the responsibilities" in [s.title for s in d.steps_for("rate")]


def test_every_rate_fixed_leaves_the_weights_to_estimate(tmp_path):
    """rate: {fixed: [1, 5]}: only the weights are free.  Reference: with the rates known, one EM step
    of the weights is the mean of the responsibilities computed by hand from the Poisson pmf."""
    spec = load_spec({"family": "poisson", "components": 2, "rate": {"fixed": [1, 5]}})
    model = compile_derivation(get_derivation(spec))
    x = np.array([0, 1, 2, 5, 7, 4, 3, 6, 1, 0], dtype=float)
    res = run_em(model, x[:, None], {"pi": np.array([0.5, 0.5])}, iterations=1)
    f = np.array([stats.poisson.pmf(x, lam) for lam in (1.0, 5.0)])
    gamma = f / f.sum(axis=0)
    assert [c["rate"] for c in res.components] == [1.0, 5.0]
    assert np.allclose([c["weight"] for c in res.components], gamma.mean(axis=1), rtol=1e-12)
    assert check(spec, n=300).passed
    path = tmp_path / "m.yaml"
    path.write_text("family: poisson\ncomponents: 2\nrate: {fixed: [1, 5]}\n")
    data = tmp_path / "x.csv"
    data.write_text("x\n" + "\n".join(str(int(v)) for v in x) + "\n")
    assert main(["run", str(path), "--data", str(data)]) == 0


LOCATION = {"density": "exp(-(x - m)^2/2)/sqrt(2 pi)", "parameters": {"m": "real"}, "support": "real"}


def test_linked_poisson_rates_one_step_and_the_maximum_likelihood(tmp_path, capsys):
    """rate: {linked: [a, 2a, 3a]} -- rates in known ratios.  References: one EM step by hand
    (a = sum_n x_n / sum_k kappa_k N_k, from setting dQ/da = 0 on paper) and the maximum of the
    log-likelihood in (w, a) found by a direct optimiser."""
    rng = np.random.default_rng(8)
    X = rng.poisson(np.array([2.0, 4.0, 6.0])[rng.choice(3, size=400, p=[0.5, 0.3, 0.2])]).astype(float)
    model = {"family": "poisson", "components": 3, "rate": {"linked": ["a", "2a", "3a"]}}
    init = [{"weight": 0.4, "rate": 1.5}, {"weight": 0.3}, {"weight": 0.3}]  # the others follow the first
    kappa = np.array([1.0, 2.0, 3.0])
    w0, r0 = np.array([0.4, 0.3, 0.3]), 1.5 * kappa
    logp = np.log(w0) + stats.poisson.logpmf(X[:, None], r0)
    R = np.exp(logp - special.logsumexp(logp, axis=1, keepdims=True))
    a1 = X.sum() / (kappa * R.sum(axis=0)).sum()
    one = _run_cli(tmp_path, capsys, "linked", model, X[:, None], init, ["x"], "--iterations", "1")
    assert [c["rate"] for c in one["components"]] == pytest.approx(list(a1 * kappa), rel=1e-12)
    assert [c["weight"] for c in one["components"]] == pytest.approx(list(R.mean(axis=0)), rel=1e-12)
    full = _run_cli(tmp_path, capsys, "linked", model, X[:, None], init, ["x"], "--tol", "1e-12", "--max-iter", "5000")

    def negloglik(t):
        w = special.softmax(np.r_[0.0, t[:2]])
        return -special.logsumexp(np.log(w) + stats.poisson.logpmf(X[:, None], np.exp(t[2]) * kappa), axis=1).sum()

    best = optimize.minimize(
        negloglik,
        np.r_[0.0, 0.0, np.log(1.5)],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    )
    assert full["loglik"][-1] >= -best.fun - 1e-6
    assert full["components"][0]["rate"] == pytest.approx(np.exp(best.x[2]), rel=1e-4)
    assert check(load_spec(model), n=500).passed
    assert get_derivation(load_spec(model)).update("rate").text == "sum_{n=1}^{N} (x_n)/sum_{j=1}^{K} (N_j*kappa_j)"


def test_linked_real_parameter_equal_and_opposite():
    """A location density with m: {linked: [-a, a]} -- the update a = sum_n sum_k kappa_k gamma_nk x_n /
    sum_k kappa_k^2 N_k, checked against one step by hand and by emsym check."""
    spec = load_spec({"family": LOCATION, "components": 2, "m": {"linked": ["-a", "a"]}})
    model = compile_derivation(get_derivation(spec))
    rng = np.random.default_rng(2)
    X = np.r_[rng.normal(-1.5, 1, 150), rng.normal(1.5, 1, 250)][:, None]
    start = model.params_from_components([{"weight": 0.5, "m": -0.5}, {"weight": 0.5, "m": 0.5}])
    res = run_em(model, X, start, iterations=1)
    kappa, x = np.array([-1.0, 1.0]), X[:, 0]
    logp = np.log(0.5) + stats.norm.logpdf(x[:, None], 0.5 * kappa)
    R = np.exp(logp - special.logsumexp(logp, axis=1, keepdims=True))
    a1 = (R * kappa * x[:, None]).sum() / (kappa**2 * R.sum(axis=0)).sum()
    assert [c["m"] for c in res.components] == pytest.approx(list(a1 * kappa), rel=1e-12)
    assert check(spec, n=500).passed


def test_linked_parameter_without_closed_form_is_solved_for_a():
    """Weibull shape c: {linked: [a, 2a]} has no closed form; one numeric M-step must give the root of
    dQ/da = sum_n sum_k gamma_nk kappa_k (1/(kappa_k a) + log x_n - x_n^(kappa_k a) log x_n), found here by brentq."""
    spec = load_spec({"family": WEIBULL, "components": 2, "c": {"linked": ["a", "2a"]}})
    model = compile_derivation(get_derivation(spec))
    assert any(u.numeric for u in get_derivation(spec).updates)
    rng = np.random.default_rng(4)
    x = np.r_[rng.weibull(0.8, 200), rng.weibull(1.6, 200)]
    start = model.params_from_components([{"weight": 0.5, "c": 0.7}, {"weight": 0.5}])
    res = run_em(model, x[:, None], start, iterations=1)
    kappa = np.array([1.0, 2.0])
    c0 = 0.7 * kappa
    logp = np.log(0.5) + np.log(c0) + (c0 - 1) * np.log(x[:, None]) - x[:, None] ** c0
    R = np.exp(logp - special.logsumexp(logp, axis=1, keepdims=True))
    lx = np.log(x)[:, None]

    def dq(a):
        return float(np.sum(R * kappa * (1 / (kappa * a) + lx - x[:, None] ** (kappa * a) * lx)))

    a1 = optimize.brentq(dq, 0.05, 5.0, xtol=1e-14)
    assert [c["c"] for c in res.components] == pytest.approx(list(a1 * kappa), rel=1e-9)
    assert check(spec, n=400).passed


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"family": "bernoulli", "components": 2, "p": {"linked": ["a", "2a"]}}, "scalar real or positive"),
        (
            {"family": "poisson", "components": 2, "rate": {"linked": ["a", "-a"]}},
            r"'rate.linked\[1\]' should be a positive",
        ),
        ({"family": "poisson", "components": 2, "rate": {"linked": [None, 3]}}, "links no component"),
        (
            {"family": "poisson", "components": 3, "rate": {"linked": ["a", None, -2]}},
            r"'rate.linked\[2\]' should be a positive number",
        ),
        (
            {"family": "poisson", "components": 2, "rate": {"linked": ["a", "ell"]}},
            "'ell' is a name the derivation uses",
        ),
        (
            {
                "family": {
                    "density": "exp(-(x - m)^2/(2 s))/sqrt(2 pi s)",
                    "parameters": {"m": "real", "s": "positive"},
                },
                "components": 3,
                "m": {"linked": ["-a", "b", None]},
                "s": {"linked": ["c", "2c", "b"]},
            },
            "both use the name 'b'",
        ),
        ({"family": "poisson", "components": 3, "rate": {"linked": ["a", "2a"]}}, "one entry per component"),
        (
            {
                "family": {
                    "density": "exp(-(x - m)^2/(2 s))/sqrt(2 pi s)",
                    "parameters": {"m": "real", "s": "positive"},
                },
                "components": 2,
                "m": {"linked": ["-a", "a"]},
                "s": {"linked": ["a", "2a"]},
            },
            "both use the name 'a'",
        ),
    ],
)
def test_bad_links_are_one_clear_line(model, message):
    with pytest.raises(SpecError, match=message):
        load_spec(model)


def test_an_init_against_the_links_is_refused():
    model = compile_derivation(
        get_derivation(load_spec({"family": "poisson", "components": 2, "rate": {"linked": ["a", "2a"]}}))
    )
    with pytest.raises(
        DataError, match=r"links rate as \[a, 2a\], so the components linked to one name should have rate in those"
    ):
        model.params_from_components([{"weight": 0.5, "rate": 1}, {"weight": 0.5, "rate": 3}])


def test_derivation_is_the_same_for_every_k():
    """Derived once for a generic component: K = 2 and K = 50 give the same updates and steps."""
    small = get_derivation(load_spec({"family": "multinomial", "components": 2}))
    big = get_derivation(load_spec({"family": "multinomial", "components": 50}))
    assert [u.text for u in small.updates] == [u.text for u in big.updates]
    assert [s.plain for s in small.steps] == [s.plain for s in big.steps]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"family": "poison"}, "did you mean 'poisson'"),
        ({"family": "poisson", "mean": "free"}, "'mean' is a Gaussian option"),
        ({"family": "bernoulli", "prior": {"p": {"gamma": [1, 1]}}}, "expected beta"),
        ({"family": "poisson", "prior": {"rate": {"gamma": [0, 1]}}}, "shape a > 0"),
        ({"family": "poisson", "components": 2, "rate": {"fixed": [1]}}, "should be a list of 2 values"),
        ({"family": "bernoulli", "components": 2, "dim": 2, "p": {"fixed": [[0.5, 1], None]}}, "strictly between 0"),
        ({"family": "poisson", "components": 51}, "at most 50"),
    ],
)
def test_bad_model_files_are_one_clear_line(model, message):
    with pytest.raises(SpecError, match=message):
        load_spec(model)


@pytest.mark.parametrize(
    ("family", "rows", "message"),
    [
        ("poisson", ["3", "-1"], "line 3, column 1: the poisson family needs a whole number >= 0"),
        ("poisson", ["3", "2.5"], "line 3, column 1: the poisson family needs a whole number >= 0"),
        ("bernoulli", ["0,1", "2,0"], "line 3, column 1: the bernoulli family needs 0 or 1"),
        ("categorical", ["0,1", "1,1"], "line 3: the categorical family needs each row to have one 1"),
    ],
)
def test_data_outside_the_support_is_refused(family, rows, message, tmp_path, capsys):
    m = _write(tmp_path / "m.yaml", f"family: {family}\ncomponents: 2\n")
    header = "x" if family == "poisson" else "a,b"
    d = _write(tmp_path / "d.csv", header + "\n" + "\n".join(rows) + "\n")
    assert main(["run", m, "--data", d]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# -- densities the author writes -------------------------------------------------------------
RAYLEIGH = {"density": "x/s * exp(-x^2/(2 s))", "parameters": {"s": "positive"}, "support": "positive"}
GEOMETRIC = {"density": "(1 - q)^x q", "parameters": {"q": "unit"}, "support": "count", "name": "Geometric"}
WEIBULL = {"density": "c x^(c - 1) exp(-x^c)", "parameters": {"c": "positive"}, "support": "positive"}


def test_author_densities_derive_the_textbook_closed_forms():
    """Rayleigh: s_k = sum_n gamma_nk x_n^2 / (2 N_k); geometric: q_k = N_k / (N_k + sum_n gamma_nk x_n)."""
    rng = np.random.default_rng(4)
    x = rng.rayleigh(2.0, 200)
    R = rng.dirichlet(np.ones(2), size=200).T
    ray = compile_derivation(get_derivation(load_spec({"family": RAYLEIGH, "components": 2})))
    new = ray.m_step(x[None], R, {"pi": np.full(2, 0.5), "s": np.array([1.0, 2.0])})
    assert np.allclose(new["s"], (R @ x**2) / (2 * R.sum(axis=1)), rtol=1e-13)
    counts = rng.geometric(0.3, 200) - 1.0
    geo = compile_derivation(get_derivation(load_spec({"family": GEOMETRIC, "components": 2})))
    new = geo.m_step(counts[None], R, {"pi": np.full(2, 0.5), "q": np.array([0.2, 0.6])})
    Nk = R.sum(axis=1)
    assert np.allclose(new["q"], Nk / (Nk + R @ counts), rtol=1e-13)
    assert get_derivation(load_spec({"family": GEOMETRIC, "components": 2})).method == "EM"


def test_a_density_without_closed_form_gets_the_numeric_m_step(tmp_path, capsys):
    """Weibull shape c (scale 1): the stationarity condition has no closed form; the numeric M-step finds
    the maximiser, and EM reaches the optimum of a direct optimiser of the log-likelihood."""
    d = get_derivation(load_spec({"family": WEIBULL, "components": 2}))
    assert d.update("c").numeric
    assert any(s.title == "No closed form for c" for s in d.steps)
    assert check(load_spec({"family": WEIBULL, "components": 2}), n=300).passed
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.weibull(0.8, 200), rng.weibull(3.0, 200)])[:, None]
    init = [{"weight": 0.5, "c": 0.5}, {"weight": 0.5, "c": 2.0}]
    out = _run_cli(tmp_path, capsys, "wei", {"family": WEIBULL, "components": 2}, X, init, ["x"], "--tol", "1e-12")

    def logpdf(X, c):
        return stats.weibull_min.logpdf(X[:, 0], c["c"])

    assert out["loglik"][-1] == pytest.approx(_loglik(X, out["components"], logpdf), rel=1e-12)

    def comps(t):  # unconstrained: the logit of weight 2, the log of each shape
        return [{"weight": w, "c": np.exp(r)} for w, r in zip(special.softmax([0.0, t[0]]), t[1:])]

    res = optimize.minimize(
        lambda t: -_loglik(X, comps(t), logpdf),
        np.array([0.0, np.log(0.5), np.log(2.0)]),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    )
    assert out["loglik"][-1] >= -res.fun - 1e-6


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ({"density": "l*exp(-m*x)", "parameters": {"l": "positive"}}, "uses 'm', which is neither x nor"),
        ({"density": "2*l*exp(-l*x)", "parameters": {"l": "positive"}, "support": "positive"}, "integrates to 2"),
        ({"density": "l*exp(-l*x)", "parameters": {"l": "positiv"}}, "did you mean 'positive'"),
        ({"density": "__import__('os')", "parameters": {"l": "positive"}}, "not allowed"),
        ({"density": "l*exp(-l*x)", "parameters": {"x": "positive"}}, "cannot be a parameter name"),
        ({"density": "l", "parameters": {"l": "positive"}}, "does not depend on x"),
        ({"density": "-l*exp(-l*x)", "parameters": {"l": "positive"}, "support": "positive"}, "finite and >= 0"),
    ],
)
def test_bad_author_densities_are_refused(family, message):
    with pytest.raises(SpecError, match=message):
        load_spec({"family": family, "components": 2})


# -- the family exercises ----------------------------------------------------------------------
def _solved(name):
    from pathlib import Path

    from emsym.exercise import load_exercise
    from emsym.solve import solve

    root = Path(__file__).resolve().parent.parent
    sol = solve(load_exercise(root / "exercises" / f"{name}.yaml"))
    return sol, {r.part.id: r for r in sol.parts}


def _hand_bernoulli(X, w, P, iters, a=1.0, b=1.0, alpha=1.0):
    """EM (MAP with Beta(a, b) and Dirichlet(alpha) priors; a = b = alpha = 1 is maximum likelihood), by hand."""
    for _ in range(iters):
        Xb, Pb = X[:, None, :], P[None, :, :]  # 0 log 0 = 0: maximum likelihood reaches p = 0 here
        L = np.log(w) + (special.xlogy(Xb, Pb) + special.xlogy(1 - Xb, 1 - Pb)).sum(axis=2)
        R = np.exp(L - special.logsumexp(L, axis=1, keepdims=True))
        Nk = R.sum(axis=0)
        w = (Nk + alpha - 1) / (len(X) + len(w) * (alpha - 1))
        P = (R.T @ X + a - 1) / (Nk[:, None] + a + b - 2)
    return w, P


def test_family_exercises_match_hand_computations():
    sol, parts = _solved("own-poisson-counts")
    X = np.array(sol.exercise.data, dtype=float)[:, None]
    init = [{"weight": 0.5, "rate": 1.0}, {"weight": 0.5, "rate": 4.0}]
    logpdf = lambda X, c: stats.poisson.logpmf(X[:, 0], c["rate"])  # noqa: E731
    assert parts["loglik-init"].answer == pytest.approx(_loglik(X, init, logpdf), rel=1e-12)
    assert parts["rate2-one"].answer == pytest.approx(_hand_em_step("poisson", X, init, logpdf)[1]["rate"], rel=1e-12)
    assert (
        parts["rate-formula"].answer == "(gamma_1k*x_1 + gamma_2k*x_2 + gamma_3k*x_3)/(gamma_1k + gamma_2k + gamma_3k)"
    )

    sol, parts = _solved("prml-bernoulli-mixture")
    X = np.array(sol.exercise.data, dtype=float)
    w0, P0 = np.array([0.5, 0.5]), np.array([c["p"] for c in sol.exercise.init])
    _, P1 = _hand_bernoulli(X, w0, P0, 1)
    assert parts["p11-one"].answer == pytest.approx(P1[0, 0], rel=1e-12)
    _, P = _hand_bernoulli(X, w0, P0, 300)
    assert parts["p14-converged"].answer == pytest.approx(P[0, 3], abs=1e-9)  # maximum likelihood: 0 (held at 1e-12)

    sol, parts = _solved("own-map-bernoulli")
    _, P = _hand_bernoulli(X, w0, P0, 2000, a=2, b=2, alpha=2)
    assert parts["p14-converged"].answer == pytest.approx(P[0, 3], rel=1e-6)
    assert parts["p14-converged"].answer > 0.05  # the prior keeps it inside (0, 1)

    sol, parts = _solved("own-multinomial-documents")
    X = np.array(sol.exercise.data, dtype=float)
    init = [{"weight": 0.5, "p": [0.4, 0.3, 0.2, 0.1]}, {"weight": 0.5, "p": [0.1, 0.2, 0.3, 0.4]}]
    logpdf = lambda X, c: np.array([stats.multinomial.logpmf(r, int(r.sum()), c["p"]) for r in X])  # noqa: E731
    assert parts["loglik-init"].answer == pytest.approx(_loglik(X, init, logpdf), rel=1e-12)
    step = _hand_em_step("multinomial", X, init, logpdf)
    assert parts["p11-one"].answer == pytest.approx(step[0]["p"][0], rel=1e-12)


# -- MAP-EM for the Gaussian ---------------------------------------------------------------------
def test_gaussian_map_updates_are_the_posterior_modes():
    """Normal(m0, v0) on the means, InvGamma(a, b) on the variances, Dirichlet(alpha) on the weights:
    mu_k = (S_k/s_k + m0/v0)/(N_k/s_k + 1/v0), s_k = (sum_n gamma_nk (x_n - mu_k)^2 + 2b)/(N_k + 2a + 2)."""
    prior = {"weights": {"dirichlet": 3}, "mean": {"normal": [1, 4]}, "variance": {"inverse-gamma": [2, 1]}}
    spec = load_spec({"components": 2, "prior": prior})
    d = get_derivation(spec)
    assert d.method == "ECM"  # the mean's update uses the variance and back: conditional maximisation
    assert any(s.title == "Log prior (MAP-EM)" for s in d.steps)
    model = compile_derivation(d)
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, 40), rng.normal(5, 2, 30)])
    R = rng.dirichlet(np.ones(2), size=70).T
    old = {"pi_1": 0.5, "pi_2": 0.5, "mu_1": 0.0, "mu_2": 4.0, "sigma2_1": 1.5, "sigma2_2": 3.0}
    new = model.m_step(x[None], R, old)
    Nk = R.sum(axis=1)
    assert [new["pi_1"], new["pi_2"]] == pytest.approx((Nk + 2) / (70 + 4), rel=1e-13)
    for k in (1, 2):
        s_old, r = old[f"sigma2_{k}"], R[k - 1]
        mu = (r @ x / s_old + 1 / 4) / (Nk[k - 1] / s_old + 1 / 4)
        assert new[f"mu_{k}"] == pytest.approx(mu, rel=1e-13)
        assert new[f"sigma2_{k}"] == pytest.approx((r @ (x - mu) ** 2 + 2) / (Nk[k - 1] + 6), rel=1e-13)
    report = check(spec, n=300)
    assert report.passed
    items = {i.name: i.passed for i in report.items}
    assert items["agrees with scikit-learn"] is None  # no scikit-learn comparison for MAP
    assert items["agrees with the family engine"] is True  # the prior derived a second way


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"components": 2, "variance": {"fixed": [1, 2]}, "prior": {"variance": {"inverse-gamma": [2, 1]}}},
            "changes nothing",
        ),
        ({"components": 2, "dim": 2, "covariance": "VEV", "prior": {"mean": {"normal": [0, 1]}}}, "not derived"),
        ({"components": 2, "prior": {"mean": {"gamma": [1, 1]}}}, "expected normal"),
        ({"components": 2, "prior": {"variance": {"inverse-gamma": [2, -1]}}}, "scale b > 0"),
    ],
)
def test_bad_gaussian_priors(model, message):
    with pytest.raises(SpecError, match=message):
        load_spec(model)


def _family_model_files():
    from pathlib import Path

    models = Path(__file__).resolve().parent.parent / "models"
    return sorted(p for p in models.glob("*.yaml") if p.with_suffix(".csv").exists() and "family" in p.read_text())


@pytest.mark.parametrize("path", _family_model_files(), ids=lambda p: p.stem)
def test_shipped_family_model_files_run_on_their_data(path, capsys):
    init = path.with_name(f"{path.stem}-init.yaml")
    argv = ["run", str(path), "--data", str(path.with_suffix(".csv")), "--format", "json"]
    assert main(argv + (["--init", str(init)] if init.exists() else [])) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and np.all(np.diff(out.get("log_posterior", out["loglik"])) >= -1e-9)


# -- hostile model files for the family engine ----------------------------------------------------
_DENSITY_TEXT = st.text(alphabet="xlambdqs0123456789+-*/^().e _[]{}'\"\\", max_size=60)


@settings(max_examples=300, deadline=None)
@given(text=_DENSITY_TEXT, domain=st.sampled_from(["positive", "unit", "real", "bogus"]))
def test_any_density_text_is_a_density_or_one_clear_error(text, domain):
    try:
        spec = load_spec({"family": {"density": text, "parameters": {"l": domain}, "support": "positive"}})
    except SpecError as exc:
        assert "\n" not in str(exc).strip() or "column" in str(exc)
    else:  # it passed the normalisation check: it must derive
        assert get_derivation(spec, use_cache=False).updates


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        st.none(),
        st.integers(),
        st.floats(allow_nan=True),
        st.text(max_size=20),
        st.lists(st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=4)), max_size=4),
        st.dictionaries(st.sampled_from(["fixed", "linked", "free", "gamma", "beta"]), st.integers(-2, 2), max_size=2),
    ),
    key=st.sampled_from(["rate", "p", "mixing", "prior", "components", "dim", "family"]),
    family=st.sampled_from(["poisson", "bernoulli", "multinomial"]),
)
def test_any_family_model_value_is_accepted_or_one_clear_error(value, key, family):
    with contextlib.suppress(SpecError):  # anything else (a traceback) fails the test
        load_spec({"family": family, "components": 2, key: value})


def test_question_sheets_give_a_familys_starting_values():
    from pathlib import Path

    from emsym.exercise import load_exercise
    from emsym.render import render_questions

    root = Path(__file__).resolve().parent.parent
    md = render_questions(load_exercise(root / "exercises" / "own-multinomial-documents.yaml"), "md")
    assert "component 1: weight 0.5, p [0.4, 0.3, 0.2, 0.1]" in md
    md = render_questions(load_exercise(root / "exercises" / "own-poisson-counts.yaml"), "md")
    assert "component 2: weight 0.5, rate 4" in md


def test_a_vector_family_takes_more_coordinates_from_the_data_than_a_file_may_ask(tmp_path, capsys):
    """dim left out: the data's 150 binary columns (a model file may ask for at most 100; 28 x 28 images
    have 784).  Reference: the Bernoulli mixture log-likelihood of the returned parameters, by numpy."""
    rng = np.random.default_rng(0)
    X = (rng.random((200, 150)) < np.where(np.arange(200)[:, None] < 100, 0.2, 0.6)).astype(int)
    (tmp_path / "b.csv").write_text(",".join(f"p{i}" for i in range(150)) + "\n")
    with (tmp_path / "b.csv").open("a") as fh:
        fh.write("\n".join(",".join(map(str, row)) for row in X) + "\n")
    (tmp_path / "m.yaml").write_text("family: bernoulli\ncomponents: 2\n")
    args = ["run", str(tmp_path / "m.yaml"), "--data", str(tmp_path / "b.csv"), "--iterations", "2", "--format", "json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    w = np.array([c["weight"] for c in out["components"]])
    P = np.array([c["p"] for c in out["components"]])
    assert P.shape == (2, 150)
    logp = np.log(w) + X @ np.log(P).T + (1 - X) @ np.log(1 - P).T
    assert out["loglik"][-1] == pytest.approx(float(special.logsumexp(logp, axis=1).sum()), rel=1e-12)
