"""Property tests: the compiled derived M-step equals weighted statistics computed directly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from emsym.cache import get_derivation
from emsym.compile import CompiledModel
from emsym.spec import load_spec

STANDARD3 = CompiledModel(get_derivation(load_spec({"components": 3})))
SPHERICAL2 = CompiledModel(get_derivation(load_spec({"components": 2, "dim": 3, "covariance": "spherical"})))

finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


@st.composite
def data_and_resp(draw, K, d):
    n = draw(st.integers(K + 1, 40))
    X = draw(arrays(float, (n, d), elements=finite))
    raw = draw(arrays(float, (n, K), elements=st.floats(0.01, 1.0)))
    return X, raw / raw.sum(axis=1, keepdims=True)


@settings(max_examples=60, deadline=None)
@given(data_and_resp(3, 1))
def test_standard_m_step_is_weighted_statistics(case):
    X, R = case
    new = STANDARD3.m_step(np.ascontiguousarray(X.T), np.ascontiguousarray(R.T), {})
    Nk = R.sum(axis=0)
    means = (R * X).sum(axis=0) / Nk
    for k in range(3):
        assert np.isclose(new[f"pi_{k + 1}"], Nk[k] / len(X), rtol=1e-10)
        assert np.isclose(new[f"mu_{k + 1}"], means[k], rtol=1e-9, atol=1e-9)
        var = np.sum(R[:, k] * (X[:, 0] - means[k]) ** 2) / Nk[k]
        assert np.isclose(new[f"sigma2_{k + 1}"], var, rtol=1e-8, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(data_and_resp(2, 3))
def test_spherical_m_step_averages_over_coordinates(case):
    X, R = case
    new = SPHERICAL2.m_step(np.ascontiguousarray(X.T), np.ascontiguousarray(R.T), {})
    for k in range(2):
        w = R[:, k]
        mean = (w[:, None] * X).sum(axis=0) / w.sum()
        assert np.allclose(new[f"mu_{k + 1}"], mean, rtol=1e-9, atol=1e-9)
        var = np.sum(w * np.sum((X - mean) ** 2, axis=1)) / (3 * w.sum())
        assert np.isclose(new[f"sigma2_{k + 1}"], var, rtol=1e-8, atol=1e-9)
