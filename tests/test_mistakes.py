"""Mistakes found by re-deriving, and follow-through credit.

References: the slips are worked by hand from the stationarity conditions of the Gaussian
mixture (``sum_n gamma_nk (x_n - mu_k)^2 / (2 sigma^4) - N_k / (2 sigma^2) = 0`` with a lost factor
2 gives S/(2 N_k) or 2 S/N_k), the MAP slip is the maximum-likelihood derivation emsym makes
without priors, and the carried-forward number is an M-step written out in numpy.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from emsym.derive import derive
from emsym.exercise import load_exercise
from emsym.grading import FormulaGrader, Mistake
from emsym.grading.parts import ExerciseGraders, grade_submissions
from emsym.mistakes import rederive
from emsym.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
GENERAL = derive(load_spec("standard-general"))


def _texts(d, name, key):
    return {m.text for m in rederive(d, name) if m.key == key}


def test_variance_chain_rule_slips_match_the_hand_derivation():
    texts = _texts(GENERAL, "sigma2_k", "chain-rule")
    S = "sum_{n=1}^{N} ((x_n - mu_k)**2*gamma_nk)"
    assert f"{S}/(2*N_k)" in texts and f"2*{S}/N_k" in texts


def test_dropped_lagrange_constraint_gives_counts():
    assert _texts(GENERAL, "pi_k", "no-lagrange") == {"N_k"}


def test_sign_slip_of_the_mean_negates_it():
    assert "-sum_{n=1}^{N} (x_n*gamma_nk)/N_k" in _texts(GENERAL, "mu_k", "sign-slip")


def test_forgotten_prior_gives_the_maximum_likelihood_update():
    import dataclasses

    from emsym.cache import get_derivation

    spec = load_exercise(EXERCISES / "own-map-bernoulli.yaml").model
    spec = spec.general() or spec
    d = get_derivation(spec)
    ml = get_derivation(dataclasses.replace(spec, priors=()))
    checked = 0
    for u in d.updates:
        slips = [m for m in rederive(d, u.name) if m.key == "no-prior"]
        if slips:
            assert sp.simplify(slips[0].expr - ml.update(u.name).display) == 0, u.name
            checked += 1
    assert checked >= 1


def test_every_family_gets_rederived_slips():
    from emsym.cache import get_derivation

    for model in ("poisson", "exponential", "bernoulli"):
        spec = load_spec(ROOT / "models" / f"{model}.yaml")
        d = get_derivation(spec.general() or spec)
        for u in d.updates:
            if u.numeric or u.param.vector:
                continue
            keys = {m.key for m in rederive(d, u.name)}
            assert keys, (model, u.name)


def test_grader_names_the_step_and_shows_both_versions():
    g = ExerciseGraders(EXERCISES / "gt-gmm-mle.yaml")
    v = g.grade("gt-gmm-mle", "sigma-k-general", "sum_n gamma_nk (x_n - mu_k)^2 / (2 N_k)")
    assert v.mistake == "chain-rule"
    assert "sigma instead of sigma^2" in v.feedback and "Differentiate with respect to sigma2_k" in v.feedback
    assert "the correct step is" in v.feedback and "your answer follows from" in v.feedback
    v = g.grade("gt-gmm-mle", "pi-k-general", "N_k")
    assert v.mistake == "no-lagrange" and "Lagrangian" in v.feedback
    v = g.grade("gt-gmm-mle", "mu-k-condition", "sum_n gamma_nk (x_n + mu_k) / sigma2_k = 0")
    assert v.mistake == "sign-slip" and "Set the derivative to zero" in v.feedback


def test_extra_mistakes_in_the_python_api():
    m = Mistake("half", "you halved it", "x_1/2", step="Solve", correct="y = x_1", wrong="y = x_1/2")
    g = FormulaGrader("x_1", mistakes=[m])
    v = g.grade("0.5 x_1")
    assert v.mistake == "half" and "step 'Solve'" in v.feedback and "y = x_1/2" in v.feedback


# -- follow-through -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gt():
    return ExerciseGraders(EXERCISES / "gt-gmm-mle.yaml")


def test_formula_follow_through_from_a_wrong_condition(gt):
    wrong_condition = {"mu-k-condition": "sum_n gamma_nk (x_n + mu_k) = 0"}
    v = gt.grade("gt-gmm-mle", "mu-k-general", "-sum_n gamma_nk x_n / N_k", earlier=wrong_condition)
    assert v.score == 0.5 and v.mistake == "carried-forward" and "mu-k-condition" in v.feedback
    # a right earlier answer: the later slip is the student's own
    right = {"mu-k-condition": "sum_n gamma_nk (x_n - mu_k) = 0"}
    assert gt.grade("gt-gmm-mle", "mu-k-general", "-sum_n gamma_nk x_n / N_k", earlier=right).score == 0
    # not what follows from the wrong condition
    assert gt.grade("gt-gmm-mle", "mu-k-general", "sum_n x_n / N", earlier=wrong_condition).score == 0
    # the right answer stays right whatever came before
    assert gt.grade("gt-gmm-mle", "mu-k-general", "sum_n gamma_nk x_n / N_k", earlier=wrong_condition).score == 1


def test_numeric_follow_through_recomputes_the_m_step():
    g = ExerciseGraders(EXERCISES / "own-three-components.yaml")
    ex = load_exercise(EXERCISES / "own-three-components.yaml")
    x = np.array(ex.data, dtype=float)
    comps = ex.init
    dens = np.array(
        [
            c["weight"] * np.exp(-((x - c["mean"]) ** 2) / (2 * c["variance"])) / np.sqrt(2 * np.pi * c["variance"])
            for c in comps
        ]
    ).T
    R = dens / dens.sum(axis=1, keepdims=True)
    student = 0.5  # a wrong responsibility of component 2 for point 4
    R[3] = R[3] * (1 - student) / (1 - R[3, 1])
    R[3, 1] = student
    mu2 = float((R[:, 1] * x).sum() / R[:, 1].sum())
    v = g.grade("own-three-components", "mu2-one-step", f"{mu2:.6f}", earlier={"estep-point4": "0.5"})
    assert v.score == 0.5 and v.mistake == "carried-forward"
    v = g.grade("own-three-components", "mu2-one-step", f"{mu2 + 0.1:.6f}", earlier={"estep-point4": "0.5"})
    assert v.score == 0


def test_uses_must_name_earlier_parts(tmp_path):
    text = (EXERCISES / "own-three-components.yaml").read_text().replace("uses: [estep-point4]", "uses: [weights]")
    f = tmp_path / "ex.yaml"
    f.write_text(text)
    from emsym.exercise import ExerciseError

    with pytest.raises(ExerciseError, match="ids of earlier parts"):
        load_exercise(f)


def _rows(n_students=6):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "exercise", "part", "answer"])
    expected = []
    for s in range(n_students):
        if s % 2:  # the wrong condition comes after the update in the file: still found
            w.writerow([f"s{s}", "gt-gmm-mle", "mu-k-general", "-sum_n gamma_nk x_n / N_k"])
            w.writerow([f"s{s}", "gt-gmm-mle", "mu-k-condition", "sum_n gamma_nk (x_n + mu_k) = 0"])
            expected += [0.5, 0.0]
        else:
            w.writerow([f"s{s}", "gt-gmm-mle", "mu-k-condition", "sum_n gamma_nk (x_n - mu_k) = 0"])
            w.writerow([f"s{s}", "gt-gmm-mle", "mu-k-general", "-sum_n gamma_nk x_n / N_k"])
            expected += [1.0, 0.0]
    return buf.getvalue(), expected


@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_follow_through_and_processes_keep_row_order(tmp_path, gt, jobs):
    text, expected = _rows()
    sub = tmp_path / "s.csv"
    sub.write_text(text)
    done = grade_submissions(gt, sub, fmt="json", jobs=jobs)
    import json

    rows = json.loads(done["text"])
    assert [r["row"] for r in rows] == list(range(2, 2 + len(expected)))
    assert [r["score"] for r in rows] == expected


def test_cli_given_gives_follow_through():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "emsym",
            "grade",
            str(EXERCISES / "gt-gmm-mle.yaml"),
            "--part",
            "mu-k-general",
            "--answer",
            r"-\frac{1}{N_k}\sum_{n=1}^{N}\gamma_{nk}x_n",
            "--given",
            "mu-k-condition=sum_n gamma_nk (x_n + mu_k) = 0",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("incorrect (score 0.5)") and "carried forward" in out.stdout
