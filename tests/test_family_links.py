"""Family links in groups, as mixtools allows them: several names, free (null) and fixed (number) entries
beside linked ones.  References: one EM step computed by hand from the stationarity conditions (set on
paper for each group), the maximum of the log-likelihood found by a direct optimiser, scipy's root
finder for a density without a closed form, and ``emsym check``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import optimize, special, stats

from emsym.cache import get_derivation
from emsym.check import check
from emsym.cli import main
from emsym.compile import compile_derivation
from emsym.em import run_em
from emsym.exceptions import DataError
from emsym.spec import load_spec

POISSON = {"family": "poisson", "components": 4, "rate": {"linked": ["a", "2a", None, 5]}}
EXPONENTIAL = {"family": "exponential", "components": 4, "rate": {"linked": ["a", "b", "2b", None]}}
WEIBULL = {"density": "c x^(c - 1) exp(-x^c)", "parameters": {"c": "positive"}, "support": "positive"}


def _model(model):
    return compile_derivation(get_derivation(load_spec(model)))


def _responsibilities(logp):
    return np.exp(logp - special.logsumexp(logp, axis=1, keepdims=True))


def _poisson_data():
    rng = np.random.default_rng(11)
    z = rng.choice(4, size=600, p=[0.3, 0.3, 0.25, 0.15])
    return rng.poisson(np.array([3.0, 6.0, 12.0, 5.0])[z]).astype(float)


def test_poisson_groups_one_step_by_hand():
    """[a, 2a, null, 5]: a = sum_n x_n (gamma_n1 + gamma_n2) / (N_1 + 2 N_2), lambda_3 = its own
    free update, lambda_4 = 5 throughout."""
    x = _poisson_data()
    model = _model(POISSON)
    start = model.params_from_components(
        [{"weight": 0.25, "rate": 2.0}, {"weight": 0.25}, {"weight": 0.25, "rate": 10.0}, {"weight": 0.25}]
    )
    assert list(start["rate"]) == [2.0, 4.0, 10.0, 5.0]  # the second follows the first, the fourth is fixed
    res = run_em(model, x[:, None], start, iterations=1)
    R = _responsibilities(np.log(0.25) + stats.poisson.logpmf(x[:, None], start["rate"]))
    N, S = R.sum(axis=0), R.T @ x
    a = (S[0] + S[1]) / (N[0] + 2 * N[1])
    assert [c["rate"] for c in res.components] == pytest.approx([a, 2 * a, S[2] / N[2], 5.0], rel=1e-12)
    assert [c["weight"] for c in res.components] == pytest.approx(list(N / len(x)), rel=1e-12)


def test_poisson_groups_reach_the_maximum_likelihood(tmp_path, capsys):
    x = _poisson_data()
    (tmp_path / "m.yaml").write_text(json.dumps(POISSON))
    (tmp_path / "x.csv").write_text("x\n" + "\n".join(str(int(v)) for v in x) + "\n")
    init = [{"weight": 0.25, "rate": 2.0}, {"weight": 0.25}, {"weight": 0.25, "rate": 10.0}, {"weight": 0.25}]
    (tmp_path / "init.json").write_text(json.dumps({"components": init}))
    capsys.readouterr()
    argv = ["run", str(tmp_path / "m.yaml"), "--data", str(tmp_path / "x.csv"), "--init", str(tmp_path / "init.json")]
    assert main([*argv, "--format", "json", "--tol", "1e-13", "--max-iter", "20000"]) == 0
    out = json.loads(capsys.readouterr().out)

    def negloglik(t):
        w = special.softmax(np.r_[0.0, t[:3]])
        rates = np.array([np.exp(t[3]), 2 * np.exp(t[3]), np.exp(t[4]), 5.0])
        return -special.logsumexp(np.log(w) + stats.poisson.logpmf(x[:, None], rates), axis=1).sum()

    best = optimize.minimize(
        negloglik,
        np.r_[0.0, 0.0, 0.0, np.log(3.0), np.log(12.0)],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 40000, "maxfev": 40000},
    )
    assert out["loglik"][-1] >= -best.fun - 1e-6
    rates = [c["rate"] for c in out["components"]]
    assert rates[1] == pytest.approx(2 * rates[0], rel=1e-12) and rates[3] == 5.0
    assert rates[0] == pytest.approx(np.exp(best.x[3]), rel=1e-3)
    assert rates[2] == pytest.approx(np.exp(best.x[4]), rel=1e-3)


def test_exponential_two_names_one_step_by_hand():
    """[a, b, 2b, null]: for each group, rate_g = sum_j ell_j N_j / sum_j ell_j kappa_j sum_n gamma_nj x_n."""
    rng = np.random.default_rng(5)
    x = rng.exponential(1 / np.array([2.0, 0.5, 1.0, 0.1])[rng.choice(4, size=500)])
    model = _model(EXPONENTIAL)
    start = model.params_from_components(
        [{"weight": 0.25, "rate": 1.5}, {"weight": 0.25, "rate": 0.4}, {"weight": 0.25}, {"weight": 0.25, "rate": 0.2}]
    )
    res = run_em(model, x[:, None], start, iterations=1)
    R = _responsibilities(np.log(0.25) + stats.expon.logpdf(x[:, None], scale=1 / start["rate"]))
    N, S = R.sum(axis=0), R.T @ x
    b = (N[1] + N[2]) / (S[1] + 2 * S[2])
    expected = [N[0] / S[0], b, 2 * b, N[3] / S[3]]
    assert [c["rate"] for c in res.components] == pytest.approx(expected, rel=1e-12)


def test_a_group_without_closed_form_is_solved_group_by_group():
    """Weibull shape c: [a, 2a, null] -- no closed form; each group's numeric M-step must be the root
    of its own dQ/da (the free component: dQ/dc_3), found here by brentq."""
    spec = load_spec({"family": WEIBULL, "components": 3, "c": {"linked": ["a", "2a", None]}})
    model = compile_derivation(get_derivation(spec))
    assert get_derivation(spec).update("c").numeric
    rng = np.random.default_rng(6)
    x = np.r_[rng.weibull(0.7, 200), rng.weibull(1.4, 200), rng.weibull(3.0, 150)]
    start = model.params_from_components([{"weight": 1 / 3, "c": 0.6}, {"weight": 1 / 3}, {"weight": 1 / 3, "c": 2.5}])
    res = run_em(model, x[:, None], start, iterations=1)
    c0 = start["c"]
    lx = np.log(x)[:, None]
    R = _responsibilities(np.log(1 / 3) + np.log(c0) + (c0 - 1) * lx - x[:, None] ** c0)

    def dq(value, kappa, ell):
        c = kappa * value
        return float(np.sum(ell * R * kappa * (1 / c + lx - x[:, None] ** c * lx)))

    kappa = np.array([1.0, 2.0, 1.0])
    a = optimize.brentq(dq, 0.05, 5.0, args=(kappa, np.array([1.0, 1.0, 0.0])), xtol=1e-14)
    c3 = optimize.brentq(dq, 0.05, 20.0, args=(kappa, np.array([0.0, 0.0, 1.0])), xtol=1e-14)
    assert [c["c"] for c in res.components] == pytest.approx([a, 2 * a, c3], rel=1e-9)
    assert check(spec, n=400).passed


@pytest.mark.parametrize("model", [POISSON, EXPONENTIAL], ids=["poisson", "exponential"])
def test_groups_pass_check(model):
    assert check(load_spec(model), n=500).passed


def test_the_derivation_shows_one_group_and_counts_each_group_once():
    d = get_derivation(load_spec(POISSON))
    titles = [s.title for s in d.steps]
    assert "Linked values of rate" in titles
    step = d.steps[titles.index("Linked values of rate")]
    assert "[a, 2a, null, 5]" in step.text and "a free component (null) is a group of its own" in step.text
    assert (
        d.update("rate").text == "sum_{n=1}^{N} (x_n*sum_{j=1}^{K} (ell_j*gamma_nj))/sum_{j=1}^{K} (N_j*kappa_j*ell_j)"
    )
    assert _model(POISSON).n_free == 3 + 2  # three weights, and a and lambda_3


def test_an_init_against_a_group_or_a_fixed_value_is_refused():
    model = _model(EXPONENTIAL)
    with pytest.raises(DataError, match=r"links rate as \[a, b, 2b, null\], so the components linked"):
        model.params_from_components(
            [
                {"weight": 0.25, "rate": 1},
                {"weight": 0.25, "rate": 1},
                {"weight": 0.25, "rate": 1},
                {"weight": 0.25, "rate": 1},
            ]
        )
    with pytest.raises(DataError, match=r"components\[3\].rate is 4.0, but the model fixes it at 5.0"):
        _model(POISSON).params_from_components(
            [{"weight": 0.25, "rate": 1}, {"weight": 0.25}, {"weight": 0.25, "rate": 1}, {"weight": 0.25, "rate": 4}]
        )


NORMAL = {"density": "exp(-(x - m)^2/(2 v))/sqrt(2 pi v)", "parameters": {"m": "real", "v": "positive"}}


def test_a_group_whose_update_holds_another_parameter_is_a_cycle():
    """m: {linked: [a, 2a, null]} in a normal density with a free variance v.  a's condition holds the
    variances (a = sum_j kappa_j S_j / v_j / sum_j kappa_j^2 N_j / v_j) and v_k's holds m_k, so the two
    depend on each other: an ECM step, m first (the natural order) and v at the new m.  Reference: both
    conditional maximisers set to zero on paper."""
    model = {"family": NORMAL, "components": 3, "m": {"linked": ["a", "2a", None]}}
    d = get_derivation(load_spec(model))
    assert d.method == "ECM"
    assert [u.name for u in d.updates] == ["pi", "m", "v"]
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(1.0, 1.0, 150), rng.normal(2.0, 1.5, 150), rng.normal(8.0, 0.7, 100)])
    fitted = _model(model)
    start = fitted.params_from_components(
        [{"weight": 1 / 3, "m": 0.5, "v": 2.0}, {"weight": 1 / 3, "v": 3.0}, {"weight": 1 / 3, "m": 9.0, "v": 1.0}]
    )
    m0, v0 = start["m"], start["v"]
    R = _responsibilities(np.log(1 / 3) + stats.norm.logpdf(x[:, None], m0, np.sqrt(v0)))
    N, S = R.sum(axis=0), R.T @ x
    a = (S[0] / v0[0] + 2 * S[1] / v0[1]) / (N[0] / v0[0] + 4 * N[1] / v0[1])
    m1 = np.array([a, 2 * a, S[2] / N[2]])
    v1 = (R * (x[:, None] - m1) ** 2).sum(axis=0) / N
    res = run_em(fitted, x[:, None], start, iterations=1)
    assert [c["m"] for c in res.components] == pytest.approx(list(m1), rel=1e-12)
    assert [c["v"] for c in res.components] == pytest.approx(list(v1), rel=1e-12)
    assert check(load_spec(model), n=300).passed


@pytest.mark.parametrize(
    ("links", "groups"),
    [(["a", "2a", "3a"], [[0, 1, 2]]), (["a", "2a", None], [[0, 1], [2]])],
    ids=["one-name", "groups"],
)
def test_a_gamma_prior_on_linked_rates_one_step_by_hand(links, groups):
    """rate: {linked: ...} with rate ~ Gamma(a0, b0) on each component's rate kappa_k a.  On paper, for a
    group g: d/da [sum_j ell_j (S_j log(kappa_j a) - N_j kappa_j a + (a0 - 1) log(kappa_j a) - b0 kappa_j a)] = 0
    gives a = (sum_j ell_j S_j + (a0 - 1) n_g) / sum_j ell_j kappa_j (N_j + b0), n_g the group's size."""
    a0, b0 = 3.0, 0.5
    model = {"family": "poisson", "components": 3, "rate": {"linked": links}, "prior": {"rate": {"gamma": [a0, b0]}}}
    rng = np.random.default_rng(4)
    x = rng.poisson(np.repeat([3.0, 6.0, 9.0], 120)).astype(float)
    fitted = _model(model)
    start = fitted.params_from_components(
        [{"weight": 0.3, "rate": 2.0}, {"weight": 0.3}, {"weight": 0.4, "rate": 6.0 if len(groups) == 1 else 10.0}]
    )
    R = _responsibilities(np.log(start["pi"]) + stats.poisson.logpmf(x[:, None], start["rate"]))
    N, S = R.sum(axis=0), R.T @ x
    kappa = np.array([1.0, 2.0, 3.0 if len(groups) == 1 else 1.0])
    want = np.empty(3)
    for g in groups:
        a = (S[g].sum() + (a0 - 1) * len(g)) / (kappa[g] * (N[g] + b0)).sum()
        want[g] = kappa[g] * a
    res = run_em(fitted, x[:, None], start, iterations=1)
    assert [c["rate"] for c in res.components] == pytest.approx(list(want), rel=1e-12)
    assert check(load_spec(model), n=300).passed
