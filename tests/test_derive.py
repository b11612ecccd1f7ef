"""Derived updates against hand derivations and the seeds' published formulas (symbolically)."""

from __future__ import annotations

import pytest
import sympy as sp

from emsym.derive import derive, linearise
from emsym.spec import load_spec


def same(a, b) -> bool:
    """Symbolic equality of two update expressions, sums over the data made linear."""
    return sp.simplify(linearise(a) - linearise(b)) == 0


def test_georgia_tech_general_k_updates():
    """Georgia Tech lecture: mu_k = sum_n gamma_nk x_n / N_k, pi_k = N_k / N (Lagrange), sigma_k."""
    d = derive(load_spec("standard-general"))
    m = d.model
    n, N, k = m.n, m.N, m.k
    g, x = m.gamma, m.x
    Nk = sp.Sum(g[n, k], (n, 1, N))
    assert same(d.update("mu_k").expr, sp.Sum(g[n, k] * x[n], (n, 1, N)) / Nk)
    assert same(d.update("sigma2_k").expr, sp.Sum(g[n, k] * (x[n] - m.mu_[k]) ** 2, (n, 1, N)) / Nk)
    assert same(d.update("pi_k").expr, Nk / N)
    lam_steps = [s for s in d.steps if s.title == "Solve for the multiplier"]
    assert lam_steps and (lam_steps[0].expr.lhs, lam_steps[0].expr.rhs) == (m.lam, -N)


def test_mit_concrete_k2_updates():
    d = derive(load_spec("standard"))
    m = d.model
    n, N, g, x = m.n, m.N, m.gamma, m.x
    for c in (1, 2):
        Nc = sp.Sum(g[n, c], (n, 1, N))
        assert same(d.update(f"mu_{c}").expr, sp.Sum(g[n, c] * x[n], (n, 1, N)) / Nc)
        assert same(d.update(f"sigma2_{c}").expr, sp.Sum(g[n, c] * (x[n] - m.mu_[c]) ** 2, (n, 1, N)) / Nc)
        assert same(d.update(f"pi_{c}").expr, Nc / N)
    assert d.method == "EM"
    assert d.update("sigma2_1").uses == ("mu_1",)


def test_nyu_q6_shared_mean_bernoulli_matches_published_formula():
    """NYU Q6 (C): mu <- sum x (r s0^2 + (1-r) s1^2) / sum (r s0^2 + (1-r) s1^2), r = P(z=1|x)."""
    d = derive(load_spec("shared-mean-bernoulli"))
    m = d.model
    n, N, g, x = m.n, m.N, m.gamma, m.x
    s0, s1 = m.sigma2_[1], m.sigma2_[2]  # z = 0 is component 1, z = 1 (weight theta) is component 2
    r, one_minus_r = g[n, 2], g[n, 1]
    w = r * s0 + one_minus_r * s1
    published = sp.Sum(x[n] * w, (n, 1, N)) / sp.Sum(w, (n, 1, N))
    assert same(d.update("mu").expr, published)
    published_s1 = sp.Sum(r * (x[n] - m.mu_shared) ** 2, (n, 1, N)) / sp.Sum(r, (n, 1, N))
    assert same(d.update("sigma2_2").expr, published_s1)
    assert same(d.update("theta").expr, sp.Sum(g[n, 2], (n, 1, N)) / N)
    assert d.method == "ECM"
    assert d.update("mu").conditional and set(d.update("mu").uses) == {"sigma2_1", "sigma2_2"}
    assert any("ECM" in note for note in d.notes)


def test_nyu_q5_equal_shared_fixed_matches_published_formula():
    """NYU Q5 (B): mu = sum (r + (1-r)/4) x / sum (r + (1-r)/4)."""
    d = derive(load_spec("equal-shared-fixed"))
    m = d.model
    n, N, g, x = m.n, m.N, m.gamma, m.x
    w = g[n, 1] + g[n, 2] / 4
    assert same(d.update("mu").expr, sp.Sum(w * x[n], (n, 1, N)) / sp.Sum(w, (n, 1, N)))
    assert [u.name for u in d.updates] == ["mu"]


def test_sutd_spherical_variance_has_one_over_d():
    """SUTD eq. (24): sigma_i^2 = 1/(d n_i) sum_t p(i|t) ||x_t - mu_i||^2."""
    d = derive(load_spec("spherical"))
    m = d.model
    n, N, g, x, k, i, l = m.n, m.N, m.gamma, m.x, m.k, m.i, m.l
    Nk = sp.Sum(g[n, k], (n, 1, N))
    sq = sp.Sum((x[n, i] - m.mu_[k, i]) ** 2, (i, 1, m.d))
    assert same(d.update("sigma2_k").expr, sp.Sum(g[n, k] * sq, (n, 1, N)) / (m.d * Nk))
    assert same(d.update("mu_k").expr, sp.Sum(g[n, k] * x[n, l], (n, 1, N)) / Nk)


def test_tied_variance_pools_components():
    d = derive(load_spec("tied-variance"))
    m = d.model
    n, N, g, x = m.n, m.N, m.gamma, m.x
    pooled = sum(sp.Sum(g[n, c] * (x[n] - m.mu_[c]) ** 2, (n, 1, N)) for c in (1, 2, 3)) / N
    assert same(d.update("sigma2").expr, pooled)


def test_fixed_means_free_variance_uses_the_fixed_values():
    d = derive(load_spec({"components": 2, "mean": {"fixed": [-1, 3]}}))
    m = d.model
    n, N, g, x = m.n, m.N, m.gamma, m.x
    assert same(d.update("sigma2_2").expr, sp.Sum(g[n, 2] * (x[n] - 3) ** 2, (n, 1, N)) / sp.Sum(g[n, 2], (n, 1, N)))
    assert [u.name for u in d.updates] == ["pi_1", "pi_2", "sigma2_1", "sigma2_2"]


@pytest.mark.parametrize("mixing", ["equal", {"fixed": [0.25, 0.75]}])
def test_equal_or_fixed_mixing_has_no_weight_update(mixing):
    d = derive(load_spec({"components": 2, "mixing": mixing}))
    assert [u.name for u in d.updates] == ["mu_1", "mu_2", "sigma2_1", "sigma2_2"]


def test_every_update_has_recorded_steps_in_sympy_and_latex():
    d = derive(load_spec("standard"))
    titles = [s.title for s in d.steps]
    for wanted in (
        "Mixture density",
        "Log-likelihood",
        "Complete-data log-likelihood",
        "E-step",
        "Q function",
        "Lagrangian for the mixing weights",
        "Solve for the multiplier",
    ):
        assert wanted in titles
    for u in d.updates:
        steps = d.steps_for(u.name)
        titles = [s.title for s in steps]
        objective = "L" if u.name.startswith("pi") else "Q"  # the weights go through the Lagrangian
        assert titles[:3] == [
            f"Differentiate {objective} with respect to {u.name}",
            "Set the derivative to zero",
            f"Solve for {u.name}",
        ]
        assert titles[-1] == f"M-step update of {u.name}"
        assert all(s.latex and s.plain and isinstance(s.expr, sp.Basic) for s in steps)
    # PRML (9.20)-(9.22): the Lagrangian, the multiplier lambda = -N, and pi_k = N_k / N
    steps = {s.title: s.plain for s in d.steps if s.param is None}
    assert steps["Lagrangian for the mixing weights"] == "L = Q + lambda*(pi_1 + pi_2 - 1)"
    assert steps["Solve for the multiplier"] == "lambda = -N"
    assert d.update("pi_1").text == "N_1/N"
    # PRML (9.17): mu_k = (1/N_k) sum_n gamma(z_nk) x_n
    assert d.update("mu_1").latex == r"\frac{\sum_{n=1}^{N} x_{n} \gamma_{n1}}{N_{1}}"
    assert d.steps_for("mu_1")[-1].latex == r"\mu_{1} = " + d.update("mu_1").latex


def test_derivation_is_a_plain_dict_for_json():
    import json

    out = json.loads(json.dumps(derive(load_spec("fixed-sigma")).to_dict()))
    assert out["parameters"] == ["pi_1", "pi_2", "mu_1", "mu_2"]
    assert out["updates"][0]["expression"] == "N_1/N"


def test_diagonal_covariance_general_k_and_d():
    """Per coordinate l: sigma2_kl = sum_n gamma_nk (x_nl - mu_kl)^2 / N_k; tied pools over components / N."""
    d = derive(load_spec({"components": "K", "dim": "d", "covariance": "diag"}))
    m = d.model
    n, N, g, x, k, l = m.n, m.N, m.gamma, m.x, m.k, m.l
    Nk = sp.Sum(g[n, k], (n, 1, N))
    assert same(d.update("sigma2_k").expr, sp.Sum(g[n, k] * (x[n, l] - m.mu_[k, l]) ** 2, (n, 1, N)) / Nk)
    t = derive(load_spec({"components": 2, "dim": 2, "covariance": "diag", "variance": "tied"}))
    tm = t.model
    pooled = (
        sum(sp.Sum(tm.gamma[tm.n, c] * (tm.x[tm.n, tm.l] - tm.mu_[c, tm.l]) ** 2, (tm.n, 1, tm.N)) for c in (1, 2))
        / tm.N
    )
    assert same(t.update("sigma2").expr, pooled)


def test_labelled_model_splits_the_objective():
    """NYU Q3: labelled points contribute the joint, unlabelled ones the marginal; updates unchanged."""
    plain = derive(load_spec({"components": 2, "variance": "tied"}))
    d = derive(load_spec({"components": 2, "variance": "tied", "labelled": True}))
    step = next(s for s in d.steps if s.title == "Objective with labelled points")
    sums = sorted(step.expr.rhs.atoms(sp.Sum), key=str)
    limits = {str(sm.limits[0][1:]) for sm in sums}
    assert "(1, M)" in limits and "(M + 1, N)" in limits
    assert [u.text for u in d.updates] == [u.text for u in plain.updates]


def test_sums_print_as_a_textbook_writes_them():
    """(x_n - mu_k), not sympy's (-mu_k + x_n); '- N_k Lambda_k mu_k', never '+ -N_k ...'."""
    d = derive(load_spec("standard"))
    assert d.update("sigma2_1").text == "sum_{n=1}^{N} ((x_n - mu_1)**2*gamma_n1)/N_1"
    assert r"\left(x_{n} - \mu_{1}\right)^{2}" in d.update("sigma2_1").latex
    full = derive(load_spec("full"))
    plains = [s.plain for s in full.steps_for("mu_k")]
    assert "Lambda_k*sum_{n=1}^{N} (gamma_nk*x_n) - N_k*Lambda_k*mu_k = 0" in plains
    assert not any("+ -" in s.plain or "+ -" in s.latex for s in full.steps)


def test_variance_names_print_as_squares():
    from emsym.printing import latex

    s2, var = sp.Symbol("s2_1"), sp.IndexedBase("sigma2")[sp.Symbol("k")]
    assert latex(s2) == "{s^{2}_{1}}"  # not s_{21}
    assert latex(var**2) == r"\left({\sigma^{2}_{k}}\right)^{2}"  # not the stacked {\sigma^{2}_{k}}^{2}
    assert latex(sp.Symbol("sigma2_2") ** 2) == r"\left({\sigma^{2}_{2}}\right)^{2}"
    assert latex(sp.sqrt(sp.Symbol("sigma2_2"))) == r"\sqrt{{\sigma^{2}_{2}}}"


@pytest.mark.parametrize(
    "model",
    [
        {"components": 4, "variance": {"fixed": [1, 2, 3, 4]}, "mixing": "free"},
        {"components": 3, "mean": {"linked": ["-a", None, "2a"]}, "variance": "tied"},
        {"components": 3, "dim": 2, "covariance": "diag", "variance": {"fixed": [[1, 2], [2, 1], [1, 1]]}},
        {"components": "K", "dim": "d", "covariance": "diag"},
    ],
)
def test_differentiating_only_the_terms_that_hold_a_parameter_changes_nothing(model):
    """Q is pruned to the terms that may hold p before sympy differentiates it (the cost was K^2).
    Reference: sympy's derivative of the whole objective, for every parameter."""
    from emsym.derive import _Deriver, _terms_with

    deriver = _Deriver(load_spec(model))
    Q, atoms = deriver.m.Q, {}
    for p in deriver.m.params:
        if isinstance(p.symbol, (sp.Symbol, sp.Indexed)):
            pruned, whole = sp.diff(_terms_with(Q, p, atoms), p.symbol), sp.diff(Q, p.symbol)
            # the same expression, or the whole one with sums of zeros (sum_i 0) the pruned one lacks
            assert pruned == whole or (pruned - whole).doit() == 0, p.name


def test_a_derivative_step_shows_no_sums_of_zeros():
    """With fixed diagonal variances the derivative used to print '- gamma_n2*sum_{i=1}^{2} (0)/2' for
    each other component."""
    d = derive(
        load_spec({"components": 3, "dim": 2, "covariance": "diag", "variance": {"fixed": [[1, 2], [2, 1], [1, 1]]}})
    )
    for step in d.steps:
        if step.title.startswith("Differentiate"):
            assert "(0)" not in step.plain, step.title
