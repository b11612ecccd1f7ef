"""Randomised variants: a pure function of (exercise, seed), well posed, refused when impossible.

The reference for a variant's answers is the mixture log-likelihood and E-step written out in
numpy from the variant's own points and start.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emsym.exercise import ExerciseError, load_exercise
from emsym.solve import solve
from emsym.variants import student_seed, variant

ROOT = Path(__file__).resolve().parents[1]
PRACTICE = ROOT / "exercises" / "mit-686x-em-practice.yaml"


@pytest.fixture(scope="module")
def ex():
    return load_exercise(PRACTICE)


def _answers(sol):
    return {r.part.id: r.answer for r in sol.parts}


def test_same_seed_same_variant_other_seed_other_numbers(ex):
    a, b, c = variant(ex, 11), variant(ex, 11), variant(ex, 12)
    assert a.data == b.data and a.data != c.data
    assert _answers(solve(a)) == _answers(solve(b))
    assert a.seed == 11 and "(variant 11)" in a.title


def test_variant_answers_match_a_hand_computation(ex):
    for seed in range(5):
        v = variant(ex, seed)
        x = np.array(v.data)
        w = np.array([c["weight"] for c in v.init])
        mu = np.array([float(np.ravel(c["mean"])[0]) for c in v.init])
        var = np.array([c["variance"] for c in v.init])
        dens = w * np.exp(-((x[:, None] - mu) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)
        got = _answers(solve(v))
        assert got["loglik"] == pytest.approx(np.log(dens.sum(axis=1)).sum(), rel=1e-9)
        R = dens / dens.sum(axis=1, keepdims=True)
        assert got["resp-1"] == pytest.approx(R[0, 0], rel=1e-9, abs=1e-15)
        assert got["mu-after-one"] == pytest.approx((R[:, 0] * x).sum() / R[:, 0].sum(), rel=1e-9)


def test_variants_are_well_posed(ex):
    r = ex.randomise
    for seed in range(30):
        v = variant(ex, seed)
        assert r.points[0] <= len(v.data) <= r.points[1]
        assert all(round(p, 1) == p for p in v.data)  # decimals: 1


def test_formula_parts_do_not_depend_on_the_variant(ex):
    a, b = solve(variant(ex, 1)), solve(variant(ex, 2))
    fa = next(r for r in a.parts if r.part.id == "mstep-sigma2")
    fb = next(r for r in b.parts if r.part.id == "mstep-sigma2")
    assert fa.answer == fb.answer


def test_student_seed_is_stable_and_personal():
    assert student_seed("mit", "ada") == student_seed("mit", "ada")
    assert student_seed("mit", "ada") != student_seed("mit", "bob")
    assert student_seed("mit", "ada") != student_seed("gt", "ada")


def _write(tmp_path, text):
    f = tmp_path / "ex.yaml"
    f.write_text(text)
    return f


def test_an_impossible_randomisation_is_refused_with_the_reason(tmp_path):
    text = PRACTICE.read_text().replace("separation: 2", "separation: 15")
    ex = load_exercise(_write(tmp_path, text))  # reads; solving (validate, solve, serve) refuses it
    with pytest.raises(ExerciseError, match=r"randomise: no well-posed variant .* not 15 standard deviations apart"):
        solve(ex)
    r = subprocess.run(
        [sys.executable, "-m", "emsym", "validate", str(tmp_path / "ex.yaml")], capture_output=True, text=True
    )
    assert r.returncode != 0 and "not 15 standard deviations apart" in r.stdout + r.stderr


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("points: [5, 6]", "points: [6, 5]", "randomise.points"),
        ("points: [5, 6]", "points: lots", "a number of points"),
        ("decimals: 1", "decimals: 12", "0 to 6 decimals"),
        ("jitter: 1", "jiter: 1", "one of points, truth"),
        ("mean: [4, 7]", "mean: [7, 4]", "a number or a range"),
    ],
)
def test_bad_randomise_keys_are_named(tmp_path, old, new, words):
    with pytest.raises(ExerciseError, match=words):
        load_exercise(_write(tmp_path, PRACTICE.read_text().replace(old, new)))


def test_cli_seed_repeats_and_differs(tmp_path):
    def run(seed):
        return subprocess.run(
            [sys.executable, "-m", "emsym", "solve", str(PRACTICE), "--seed", str(seed), "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert run(3) == run(3)
    assert run(3) != run(4)
