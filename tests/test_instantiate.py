"""A general-K Gaussian derivation instantiated for a concrete K and d gives the concrete derivation's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from emsym import mclust
from emsym.cache import get_derivation
from emsym.compile import CompiledModel
from emsym.derive import derive
from emsym.instantiate import instantiate
from emsym.spec import load_spec

IW = [[2, 0.5, 0], [0.5, 1, 0], [0, 0, 3]]  # an inverse Wishart's scale matrix (d = 3)
CASES = [
    ("standard-general", 4, 1),
    ({"components": "K", "variance": "tied"}, 3, 1),
    ({"components": "K", "prior": {"mean": {"normal": [0, 10]}, "variance": {"inverse-gamma": [2, 1]}}}, 3, 1),
    ("spherical", 3, 2),
    ("full", 3, 3),
    ("tied-full", 2, 2),
    ({"components": "K", "dim": "d", "covariance": "full", "prior": {"variance": {"inverse-wishart": [4, 2]}}}, 3, 2),
    ({"components": "K", "dim": 3, "variance": "tied", "prior": {"variance": {"inverse-wishart": [4, IW]}}}, 2, 3),
    ({"components": "K", "dim": "d", "covariance": "full", "prior": {"mean": {"normal": [1, 3]}}}, 3, 2),
    *[(name, 3, 2) for name in mclust.NAMES],
]


@pytest.mark.parametrize(("source", "K", "d"), CASES, ids=lambda c: str(c)[:30])
def test_instantiated_updates_equal_the_concrete_derivation(source, K, d):
    general = load_spec(source)
    concrete = general.instantiate(components=K, dim=d)
    ours = CompiledModel(instantiate(get_derivation(general), concrete))
    ref = CompiledModel(get_derivation(concrete))
    assert sorted(u.name for u in ours.derivation.updates) == sorted(u.name for u in ref.derivation.updates)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, d))
    X[:30] += 3.0
    XT = np.ascontiguousarray(X.T)
    params = ref.default_init(X, 0)
    R = rng.dirichlet(np.ones(K), size=80).T
    a, b = ours.m_step(XT, R, params, exact=True), ref.m_step(XT, R, params, exact=True)
    assert set(a) == set(b)
    for name in b:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-11, atol=1e-13, err_msg=name)
    assert ours.Q(XT, R, a) == pytest.approx(ref.Q(XT, R, b), rel=1e-12)


READS_CASES = [
    ("standard-general", 3, 1),
    ({"components": "K", "variance": "tied"}, 3, 1),
    ({"components": "K", "prior": {"mean": {"normal": [0, 10]}, "variance": {"inverse-gamma": [2, 1]}}}, 2, 1),
    ("spherical", 2, 2),
    ("EEI", 2, 2),
    ("full", 2, 2),
    ({"components": "K", "dim": "d", "covariance": "full", "prior": {"variance": {"inverse-wishart": [4, 2]}}}, 2, 2),
    ("VVE", 2, 2),
    # a concrete K with a general d: written out for K, d kept general
    ("spherical", 3, "d"),
    ("EEI", 2, "d"),
    ({"components": "K", "dim": "d", "covariance": "diag", "prior": {"variance": {"inverse-gamma": [2, 1]}}}, 3, "d"),
    ("full", 2, "d"),
    ("VEV", 2, "d"),
]


@pytest.mark.parametrize(("source", "K", "d"), READS_CASES, ids=lambda c: str(c)[:30])
def test_instantiated_steps_read_like_the_per_component_derivation(source, K, d):
    """Step by step against the per-component derivation: the same titles, texts, parameters, updates and notes,
    and (scalar models) every step's equation equal to the per-component one, summed out for N = 3."""
    general = load_spec(source)
    concrete = general.instantiate(components=K, dim=d)
    ours, ref = instantiate(derive(general), concrete), derive(concrete)
    assert [(s.title, s.param, s.text) for s in ours.steps] == [(s.title, s.param, s.text) for s in ref.steps]
    assert [(u.name, u.text, u.uses) for u in ours.updates] == [(u.name, u.text, u.uses) for u in ref.updates]
    assert ours.notes[:-1] == ref.notes and "generic component k" in ours.notes[-1]
    if ref.model.full:  # matrix expressions: titles and updates above; their values in the test before
        return
    N = sp.Symbol("N", integer=True, positive=True)
    for a, b in zip(ours.steps, ref.steps):
        gap = (a.expr.lhs - a.expr.rhs) - (b.expr.lhs - b.expr.rhs)
        assert sp.expand(gap.subs(N, 3).doit()) == 0, (a.title, a.plain, b.plain)


def test_a_concrete_gaussian_is_derived_once_for_a_generic_component(monkeypatch, tmp_path):
    """get_derivation: K = 2 and K = 7 of one variant share one symbolic derivation (for a general K)."""
    from emsym import cache

    monkeypatch.setenv("EMSYM_CACHE_DIR", str(tmp_path))
    cache.clear_memory()
    calls = []
    real = cache.derive
    monkeypatch.setattr(cache, "derive", lambda s: calls.append(s) or real(s))
    two = cache.get_derivation(load_spec("standard"))
    seven = cache.get_derivation(load_spec("standard-general").instantiate(components=7, dim=1))
    assert [s.components for s in calls] == ["K"]
    assert [u.name for u in seven.updates][:7] == [f"pi_{c}" for c in range(1, 8)]
    assert any(s.title == "Differentiate Q with respect to mu_7" for s in seven.steps)
    assert two.update("mu_2").text == "sum_{n=1}^{N} (x_n*gamma_n2)/N_2"
    cache.clear_memory()


def test_written_out_steps_name_their_component_and_share_its_symbols():
    """The text of 'Differentiate Q with respect to mu_2' says mu_2 (it said mu_k), and each name is one
    sympy symbol across the steps (N_1 written out from N_k had every derived assumption, so it was not
    the N_1 of the other steps: N_1 - N_1 did not cancel)."""
    d = get_derivation(load_spec("standard"))
    texts = {s.title: s.text for s in d.steps}
    assert texts["Differentiate Q with respect to mu_2"] == "Only the terms of Q that contain mu_2 survive."
    assert texts["Differentiate L with respect to pi_1"] == "Only the terms of L that contain pi_1 survive."
    symbols: dict[str, set] = {}
    for s in d.steps:
        for a in s.expr.atoms(sp.Symbol):
            symbols.setdefault(a.name, set()).add(a)
    assert {name: len(v) for name, v in symbols.items() if len(v) > 1} == {}
