from __future__ import annotations

import dataclasses
import itertools

import pytest
import sympy as sp

from emsym.cache import get_derivation
from emsym.check import check
from emsym.exceptions import SpecError
from emsym.spec import load_spec, preset_names


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_passes(name):
    report = check(load_spec(name), n=300)
    assert report.passed, [i for i in report.items if i.passed is False]


def _all_variants():
    mixings = ["free", "equal", "bernoulli", {"fixed": [0.3, 0.7]}]
    means = ["free", "shared", {"fixed": [-2, 2]}]
    variances = ["free", "tied", {"fixed": [1, 2.5]}]
    for mixing, mean, variance in itertools.product(mixings, means, variances):
        yield {"components": 2, "mixing": mixing, "mean": mean, "variance": variance}


@pytest.mark.parametrize("data", list(_all_variants()), ids=lambda d: f"{d['mixing']}-{d['mean']}-{d['variance']}")
def test_every_univariate_combination_derives_and_checks_or_is_refused(data):
    try:
        spec = load_spec(data)
    except SpecError as exc:
        assert "nothing to estimate" in str(exc)
        return
    report = check(spec, n=250, seed=3)
    assert report.passed, [i for i in report.items if i.passed is False]


@pytest.mark.parametrize(
    "data",
    [
        {"components": 3, "dim": 2, "covariance": "spherical", "variance": "tied"},
        {"components": 2, "dim": 3, "covariance": "spherical", "mean": "shared", "mixing": "bernoulli"},
        {"components": 3, "dim": 2, "covariance": "spherical", "mean": {"fixed": [[0, 0], [3, 3], [-3, 3]]}},
    ],
)
def test_spherical_variants(data):
    assert check(load_spec(data), n=300).passed


def test_a_wrong_update_is_caught():
    """Dividing by N instead of N_1 in sigma2_1 (a classic mistake) must fail the check."""
    spec = load_spec("standard")
    d = get_derivation(spec)
    m = d.model
    wrong_expr = d.update("sigma2_1").expr.subs(sp.Sum(m.gamma[m.n, 1], (m.n, 1, m.N)), m.N)
    assert wrong_expr != d.update("sigma2_1").expr
    updates = tuple(dataclasses.replace(u, expr=wrong_expr) if u.name == "sigma2_1" else u for u in d.updates)
    report = check(spec, n=300, derivation=dataclasses.replace(d, updates=updates))
    failed = [i.name for i in report.items if i.passed is False]
    assert "update of sigma2_1 maximises Q" in failed
    assert "agrees with scikit-learn" in failed
    assert "agrees with the family engine" in failed  # the family engine's own derivation has N_1


def test_small_values_are_stepped_on_their_own_scale():
    """A 4-component exponential model's smallest rate is about 0.016 (rates 4^-k); stepped by 1e-5
    (the scale of the model's largest value), its central difference missed the gradient tolerance and
    the model failed its own check.  Steps relative to the moved values pass it."""
    report = check(load_spec({"family": "exponential", "components": 4}), n=500)
    assert report.passed, report
