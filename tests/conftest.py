from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def mit_data():
    """MIT 6.86x homework: data x(0..4) and theta0 = (0.5, 0.5, 6, 7, 1, 4)."""
    x = np.array([-1.0, 0.0, 4.0, 5.0, 6.0])
    init = [{"weight": 0.5, "mean": 6.0, "variance": 1.0}, {"weight": 0.5, "mean": 7.0, "variance": 4.0}]
    return x, init
