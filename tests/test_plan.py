"""A family model's compiled plan (emsym.family_plan): stored as JSON, run without sympy.

References: the model compiled straight from its derivation (the plan read back must do exactly
the same arithmetic), ``np.einsum`` for the matrix products of the contractions, and the
first process's own result for the second, sympy-free process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from emsym import cache
from emsym.family_compile import FamilyCompiledModel
from emsym.family_plan import Plan, _contract
from emsym.spec import load_spec

WEIBULL = {"density": "c x^(c - 1) exp(-x^c)", "parameters": {"c": "positive"}, "support": "positive"}
GEOMETRIC = {"density": "(1 - q)^x q", "parameters": {"q": "unit"}, "support": "count"}

MODELS = {
    "poisson": {"family": "poisson", "components": 3},
    "exponential": {"family": "exponential", "components": 2},
    "bernoulli": {"family": "bernoulli", "components": 3, "dim": 4},
    "multinomial": {"family": "multinomial", "components": 2, "dim": 3},
    "categorical": {"family": "categorical", "components": 2, "dim": 3},
    "map": {
        "family": "bernoulli",
        "components": 2,
        "dim": 3,
        "prior": {"weights": {"dirichlet": 2}, "p": {"beta": [2, 3]}},
    },
    "partial-fix": {"family": "poisson", "components": 3, "rate": {"fixed": [None, 4, None]}},
    "shared": {"family": "bernoulli", "components": 2, "dim": 3, "p": "shared"},
    "numeric": {"family": WEIBULL, "components": 2},
    "geometric": {"family": GEOMETRIC, "components": 2, "mixing": "equal"},
}


@pytest.mark.parametrize("name", MODELS)
def test_a_plan_read_back_runs_exactly_like_the_derivation(name):
    spec = load_spec(MODELS[name])
    derivation = cache.get_derivation(spec)
    direct = FamilyCompiledModel.from_derivation(derivation)
    stored = direct.plan.to_json()
    assert json.loads(stored)["format"] == "emsym-plan-1"
    again = FamilyCompiledModel(spec, Plan.from_json(stored), lambda: derivation)
    rng = np.random.default_rng(3)
    truth = direct.random_truth(rng)
    X = direct.sample(truth, 200, rng)
    start = direct.default_init(X, seed=1)
    XT = np.ascontiguousarray(X.T)
    L = direct.log_joint(XT, start)
    np.testing.assert_array_equal(again.log_joint(XT, start), L)
    R = np.exp(L - L.max(axis=0))
    R /= R.sum(axis=0)
    one, two = direct.m_step(XT, R, start), again.m_step(XT, R, start)
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_array_equal(np.asarray(two[key]), np.asarray(one[key]))
    assert again.log_prior(one) == direct.log_prior(one)
    assert again.method == derivation.method and again.update_order == direct.update_order
    assert again.derivation is derivation  # read only when asked for


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[]", b'{"format": "emsym-plan-0"}', b'{"format": "emsym-plan-1", "method": "EM"}'],
)
def test_anything_but_a_plan_is_refused(payload):
    with pytest.raises(ValueError, match="plan"):
        Plan.from_json(payload)


SHAPES = [  # (shapes of the factors in the (K, d, n) layout, summed axes)
    ([(1, 5, 7), (4, 5, 1)], [1]),  # sum_l x_nl log p_kl: a matrix product
    ([(4, 1, 7), (1, 5, 7)], [2]),  # sum_n gamma_nk x_nl
    ([(4, 1, 7), (1, 5, 7)], [1, 2]),  # summed in one operand only, then a product
    ([(4, 5, 7), (1, 5, 7)], [2]),  # a kept common axis (batch): einsum
    ([(4, 5, 1), (4, 5, 7)], [0, 1]),
    ([(1, 5, 7), (1, 5, 7)], [1, 2]),
    ([(4, 1, 7), (1, 5, 1), (4, 5, 7)], [0, 2]),  # three factors: einsum
]


@pytest.mark.parametrize(("shapes", "axes"), SHAPES)
def test_contractions_agree_with_einsum(shapes, axes):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=s) for s in shapes]
    full = np.ones(np.broadcast_shapes(*shapes))
    for a in arrays:
        full = full * a
    expected = full.sum(axis=tuple(axes), keepdims=True)
    got = _contract(arrays, [ax for ax in axes if any(a.shape[ax] != 1 for a in arrays)])
    np.testing.assert_allclose(np.broadcast_to(got, expected.shape), expected, rtol=1e-12, atol=1e-12)


PROBE = """
import contextlib, io, json, sys
from emsym.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = main(sys.argv[1:])
print(json.dumps({"status": status, "sympy": "sympy" in sys.modules, "run": json.loads(out.getvalue())}))
"""


def test_a_second_run_of_a_family_model_needs_no_sympy(tmp_path):
    """The first process derives and stores the plan; the second runs it without importing sympy."""
    rng = np.random.default_rng(5)
    X = (rng.random((300, 6)) < rng.uniform(0.2, 0.8, size=(2, 6))[rng.integers(2, size=300)]).astype(int)
    (tmp_path / "m.yaml").write_text("family: bernoulli\ncomponents: 2\n")
    data = tmp_path / "d.csv"
    data.write_text("a,b,c,d,e,f\n" + "\n".join(",".join(map(str, row)) for row in X) + "\n")
    env = dict(os.environ, EMSYM_CACHE_DIR=str(tmp_path / "cache"))
    args = [sys.executable, "-c", PROBE, "run", str(tmp_path / "m.yaml"), "--data", str(data), "--format", "json"]
    first, second = (
        json.loads(subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout) for _ in range(2)
    )
    assert first["status"] == second["status"] == 0
    assert first["sympy"] and not second["sympy"]
    assert second["run"] == first["run"]
    assert len(os.listdir(tmp_path / "cache" / "plans")) == 1
