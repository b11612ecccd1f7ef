"""A general-K Gaussian derivation instantiated for a concrete K and d gives the concrete derivation's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from emsym import mclust
from emsym.cache import get_derivation
from emsym.compile import CompiledModel
from emsym.instantiate import instantiate
from emsym.spec import load_spec

CASES = [
    ("standard-general", 4, 1),
    ({"components": "K", "variance": "tied"}, 3, 1),
    ({"components": "K", "prior": {"mean": {"normal": [0, 10]}, "variance": {"inverse-gamma": [2, 1]}}}, 3, 1),
    ("spherical", 3, 2),
    ("full", 3, 3),
    ("tied-full", 2, 2),
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
