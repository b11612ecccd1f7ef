"""General answers: sums over indices, LaTeX and Unicode, equations, soundness of the sampler.

The expected answers are emsym's own derivation of the K-component Gaussian mixture (the
update and stationarity steps of ``standard-general``); the student answers are typed by hand,
the way textbooks and students write them.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsym.derive import derive
from emsym.grading import FormulaGrader, GraderError, parse
from emsym.grading.parser import to_text
from emsym.spec import load_spec

D = derive(load_spec("standard-general"))


def _update(name: str) -> str:
    return D.update(name).text.replace("**", "^")


def _condition(name: str) -> str:
    step = next(s for s in D.steps if s.param == name and s.title == "Set the derivative to zero")
    return step.plain


MU = FormulaGrader(_update("mu_k"))
SIGMA2 = FormulaGrader(_update("sigma2_k"))
PI = FormulaGrader(_update("pi_k"))


@pytest.mark.parametrize(
    "answer",
    [
        "sum_n gamma_nk x_n / N_k",
        "(1/N_k) sum_{n=1}^{N} gamma_{nk} x_n",
        "sum(gamma_nk*x_n, n)/sum(gamma_nk, n)",
        "sum_i gamma_ik x_i / sum_m gamma_mk",  # bound indices renamed
        "Σ_n γ(z_nk) xₙ / N_k",  # Unicode, Bishop's gamma(z_nk)
        "∑ₙ γₙₖ xₙ / Nₖ",
        r"\frac{\sum_{n=1}^{N} \gamma_{nk} x_n}{\sum_{n=1}^{N} \gamma_{nk}}",
        r"\frac{1}{N_k}\sum_{n=1}^N \gamma(z_{nk})\, x_n",
        r"$\left(\sum_{n=1}^{N}\gamma_{nk}\right)^{-1} \sum_{n=1}^{N} x_n \cdot \gamma_{nk}$",
        "sum_n gamma_kn x_n / N_k",  # the same table, indices in the other order
        "sum_n (gamma_nk x_n / N_k)",
        "sum_n gamma_nk x_n / sum_n gamma_nk",
    ],
)
def test_general_mean_update_rewrites_are_correct(answer):
    v = MU.grade(answer)
    assert v.verdict == "correct", (answer, v.feedback)
    assert "read as" in v.feedback  # the reading is shown back


@pytest.mark.parametrize(
    "answer",
    [
        "sum_n x_n / N",  # unweighted
        "sum_n gamma_nk x_n",  # not divided
        "sum_n gamma_nk x_n / N",  # N for N_k
        "(gamma_1k x_1 + gamma_2k x_2)/N_k",  # right only for two points
        "sum_{n=1}^{3} gamma_nk x_n / N_k",  # right only for three points
        "sum_n gamma_nk x_n / sum_n sum_j gamma_nj",
    ],
)
def test_general_mean_update_mistakes_are_incorrect(answer):
    assert MU.grade(answer).verdict == "incorrect", answer


def test_general_variance_and_weight_updates():
    assert SIGMA2.grade("1/N_k sum_n gamma_nk (x_n - mu_k)^2").verdict == "correct"
    assert SIGMA2.grade("sum_n gamma_nk x_n^2 / N_k - mu_k^2").verdict == "incorrect"  # mu_k is not the mean here
    assert SIGMA2.grade("sum_n gamma_nk (x_n - mu_k) / N_k").verdict == "incorrect"
    for ok in ("sum_n gamma_nk / N", "sum_n gamma_nk / sum_n sum_j gamma_nj", r"\frac{N_k}{N}"):
        assert PI.grade(ok).verdict == "correct", ok
    assert PI.grade("N_k / K").verdict == "incorrect"
    assert PI.grade("N_k").mistake == "not-divided"


@pytest.mark.parametrize(
    "answer, words",
    [
        ("gamma_nk x_n / N_k", "index n in gamma_nk is not bound by a sum"),
        ("sum_n gamma_nj x_n / N_j", "this answer is about k"),
        ("sum_q gamma_qk x_q / N_k", "unknown name 'gamma_qk'"),
        ("sum_{n=0}^{N} gamma_nk x_n / N_k", "should start at 1"),
        ("sum_{n=1}^{M} gamma_nk x_n / N_k", "should end at N"),
        ("sum_{n=1}^{2.5} gamma_nk x_n / N_k", "whole number"),
        (r"\sum_{n=1}^{\infty} \gamma_{nk} x_n", "must be finite"),
        ("sum x_n", "write the index of the sum"),
        ("sum_i gamma_ik x_i / sum_j gamma_jk", "gamma takes a point index"),
        (r"\mathcal{N}(x_n)", "LaTeX command \\mathcal is not supported"),
        (r"\input{/etc/passwd}", "LaTeX command \\input is not supported"),
        ("sum_n gamma_nk x_n / N_k = 0", "without '='"),
    ],
)
def test_index_and_latex_errors_are_student_facing(answer, words):
    v = MU.grade(answer)
    assert v.verdict == "invalid" and words in v.feedback, v.feedback


def test_latex_error_shows_the_column():
    v = MU.grade(r"\frac{1}{N_k} \mathcal{S}")
    assert "column 15" in v.feedback and "^" in v.feedback


def test_reading_is_shown_for_latex():
    assert parse(r"\hat{\mu}_k + \sigma^2_k").text == "hatmu_k + sigma_k^2"
    assert parse("𝜇_k + µ²").text == "mu_k + mu^2"


# -- equations ----------------------------------------------------------------------------
EQ = FormulaGrader(_condition("mu_k"), unknowns=["mu_k"])


@pytest.mark.parametrize(
    "answer",
    [
        "sum_n gamma_nk (x_n - mu_k)/sigma2_k = 0",
        "sum_n gamma_nk (x_n - mu_k) = 0",  # times sigma2_k, which never vanishes
        "sum_n gamma_nk x_n = N_k*mu_k",
        "2*sum_n gamma_nk (x_n - mu_k) / sigma2_k = 0",
        "N_k mu_k - sum_n gamma_nk x_n = 0",
    ],
)
def test_equation_answers_are_multiples_of_the_condition(answer):
    v = EQ.grade(answer)
    assert v.verdict == "correct", (answer, v.feedback)


@pytest.mark.parametrize(
    "answer",
    [
        "sum_n gamma_nk (x_n + mu_k) = 0",
        "sum_n (x_n - mu_k) = 0",
        "sum_n gamma_nk (x_n - mu_k) (mu_k - 1) = 0",  # a factor with the unknown adds a root
        "sum_n gamma_nk (x_n - mu_k) (sigma2_k - 1) = 0",  # a factor that vanishes
    ],
)
def test_equation_mistakes_are_incorrect(answer):
    assert EQ.grade(answer).verdict == "incorrect", answer


def test_equation_where_an_expression_is_expected_and_back():
    assert "an equation is expected" in EQ.grade("sum_n gamma_nk (x_n - mu_k)").feedback
    plain = FormulaGrader(_condition("mu_k"))  # no unknowns: only constant multiples
    assert plain.grade("3*(sum_n gamma_nk (x_n - mu_k)/sigma2_k) = 0").verdict == "correct"
    assert plain.grade("sum_n gamma_nk (x_n - mu_k) = 0").verdict == "incorrect"


# -- soundness -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expected, answer",
    [
        ("x_1 - 3", "-abs(3 - x_1)"),  # agrees for x_1 < 3 only
        ("x_1 - 3", "-abs(x_1 - 1e11) + 1e11 - 3"),  # agrees for x_1 < 1e11 only
        ("x", "sqrt(x^2)"),  # x is real
        ("log(x)", "log(abs(x))"),
        ("mu_k", "abs(mu_k)"),
        ("x_1*x_2", "abs(x_1)*x_2"),
        ("sum_n gamma_nk x_n / N_k", "sum_n gamma_nk x_n / N_k + abs(x_1 - 1e11) - (1e11 - x_1)"),
        ("sum_n gamma_nk x_n / N_k", "sum_n gamma_nk sqrt(x_n^2) / N_k"),
    ],
)
def test_answers_that_agree_on_part_of_the_domain_are_incorrect(expected, answer):
    assert FormulaGrader(expected).grade(answer).verdict == "incorrect"


@pytest.mark.parametrize(
    "expected, answer",
    [
        ("x_1 - 3", "(x_1 + 1e12) - 1e12 - 3"),
        ("sum_n gamma_nk x_n / N_k", "(sum_n gamma_nk (x_n + 1e9) / N_k) - 1e9"),
        ("sum_n gamma_nk (x_n - mu_k)^2 / N_k", "sum_n gamma_nk (x_n^2 - 2 x_n mu_k + mu_k^2) / N_k"),
    ],
)
def test_floating_point_cancellation_is_not_a_false_reject(expected, answer):
    v = FormulaGrader(expected).grade(answer)
    assert v.verdict == "correct", v.feedback


def test_tolerance_is_configurable_per_part():
    loose = FormulaGrader("sum_n gamma_nk x_n / N_k", tolerance="1%")
    assert loose.grade("1.001 * sum_n gamma_nk x_n / N_k").verdict == "correct"
    assert MU.grade("1.001 * sum_n gamma_nk x_n / N_k").verdict == "incorrect"


def test_declared_conditions_and_indices():
    g = FormulaGrader("sum_d (x_d - mu_d)^2", indices={"d": "D"})
    assert g.grade("sum_e (x_e - mu_e)^2").verdict == "invalid"  # e is not an index here
    assert g.grade("sum_d x_d^2 - 2 sum_d x_d mu_d + sum_d mu_d^2").verdict == "correct"
    with pytest.raises(GraderError, match="definition"):
        FormulaGrader("sum_n gamma_nk x_n", where=["x_1 + x_2 = 1"])
    w = FormulaGrader("sum_n r_nk x_n / R_k", where=["R_k = sum_n r_nk"])
    assert w.grade("sum_n r_nk x_n / sum_n r_nk").verdict == "correct"


# -- hostile -----------------------------------------------------------------------------
HOSTILE = [
    "sum_n " * 30 + "x_n",
    "prod_n prod_m prod_i prod_j prod_k prod_l gamma_nk",
    "sum_n gamma_nk x_n ^ 64 ^ 64",
    "(" * 200 + "x_n" + ")" * 200,
    r"\frac{" * 50 + "1" + "}{2}" * 50,
    "sum_{n=1}^{999999} x_n",
    "sum_n gamma_nk x_n / N_k\u202e",
    "__import__('os').system('x')",
    "sum_{n=1}^{N} " + "+".join(["gamma_nk*x_n"] * 150),
]


@pytest.mark.parametrize("answer", HOSTILE)
def test_hostile_general_answers_stay_bounded(answer):
    start = time.perf_counter()
    v = MU.grade(answer)
    assert time.perf_counter() - start < 2.0
    assert v.verdict in ("invalid", "incorrect")


# -- random trees with sums round-trip --------------------------------------------------------
leaf = st.sampled_from([("var", "x_n"), ("var", "gamma_nk"), ("var", "mu_k"), ("var", "sigma2_k"), ("var", "N_k")])


def _tree(children):
    return st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/"]), children, children),
        st.tuples(st.just("neg"), children),
    )


@settings(max_examples=60, deadline=None)
@given(st.recursive(leaf, _tree, max_leaves=6))
def test_random_general_sums_grade_correct_against_themselves(body):
    text = to_text(("big", "sum", "n", None, None, body))
    try:
        g = FormulaGrader(text)
    except GraderError:
        return
    assert g.grade(text).verdict == "correct", text
    renamed = text.replace("_n", "_i").replace("sum_i", "sum_i")
    assert g.grade(renamed).verdict == "correct", renamed
    assert g.grade(f"({text}) * 1.01 + 0.5").verdict == "incorrect"


def test_sigma_squared_in_latex_is_the_variance():
    g = FormulaGrader("sum_n gamma_nk*(x_n - mu_k)^2/N_k")
    assert g.grade(r"\frac{1}{N_k}\sum_n \gamma_{nk}(x_n-\mu_k)^2").verdict == "correct"
    s = FormulaGrader("(x_1 - mu_1)^2/sigma2_1")
    assert s.grade(r"\frac{(x_1-\mu_1)^2}{\sigma_1^2}").verdict == "correct"
    assert s.grade("(x_1 - mu_1)^2/sigma_1").mistake == "sigma-for-sigma2"


def test_an_answer_fitted_to_the_published_sample_points_fails_at_fresh_ones(monkeypatch):
    from emsym.grading import parser

    monkeypatch.setitem(parser.LIMITS, "length", 5000)  # room for the fitted polynomial
    g = FormulaGrader("x_1 + x_2")
    roots = g.space.env["x_1"]  # public: the seed is in the source
    poly = "*".join(f"(x_1 - ({float(v)!r}))" for v in roots)
    fitted = f"x_1 + x_2 + {poly}"
    assert (g.answer_values(g.read(fitted)) == g.value).all()  # it does match every published point
    assert g.grade(fitted).verdict == "incorrect"


def test_the_asked_name_on_the_left_is_read_as_the_answer():
    g = FormulaGrader("sum_n gamma_nk*(x_n - mu_k)^2/N_k", targets=["sigma2_k"])
    for a in (
        r"\sigma_k^2 = \frac{1}{N_k}\sum_n \gamma_{nk}(x_n-\mu_k)^2",
        "sigma2_k = sum_n gamma_nk (x_n - mu_k)^2 / N_k",
    ):
        assert g.grade(a).verdict == "correct", a
    assert "without '='" in g.grade("x = sum_n gamma_nk (x_n - mu_k)^2 / N_k").feedback
    assert "without '='" in FormulaGrader("x_1 + x_2").grade("y = x_1 + x_2").feedback  # no target: refused


def test_superscript_before_subscript_in_unicode_and_plain_text():
    assert parse("σ²ₖ").text == "sigma_k^2"
    assert parse("sigma^2_k + 1").text == "sigma_k^2 + 1"
    assert parse("x^{2}_{n}").text == "x_n^2"


def test_sums_in_a_question_that_writes_its_terms_out():
    """The MIT E-step asks for pi_k N_k over pi_1 N_1 + pi_2 N_2: a sum over j runs over the terms it names."""
    g = FormulaGrader("N_k*pi_k/(N_1*pi_1 + N_2*pi_2)")
    assert g.grade("pi_k N_k / sum_j pi_j N_j").verdict == "correct"
    assert g.grade(r"\frac{\pi_k N_k}{\sum_{j=1}^{2} \pi_j N_j}").verdict == "correct"
    assert g.grade("pi_k N_k / sum_j pi_j N_k").verdict == "incorrect"
    assert "pi_3 is not one of this question's names" in g.grade("pi_k N_k / sum_{j=1}^{3} pi_j N_j").feedback
