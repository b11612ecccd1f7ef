"""Starting points shared by the runner and the families: k-means++ seeding and quantile groups."""

from __future__ import annotations

import numpy as np

__all__ = ["kmeanspp", "overall_variance", "quantile_groups"]


def kmeanspp(X: np.ndarray, K: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each new centre drawn with probability proportional to D(x)^2; X is (n, d)."""
    n = X.shape[0]
    centres = [X[rng.integers(n)]]
    d2 = np.sum((X - centres[0]) ** 2, axis=1)
    for _ in range(1, K):
        total = d2.sum()
        idx = rng.integers(n) if total <= 0 else int(np.searchsorted(np.cumsum(d2), rng.random() * total))
        centres.append(X[min(idx, n - 1)])
        d2 = np.minimum(d2, np.sum((X - centres[-1]) ** 2, axis=1))
    return np.array(centres)


def quantile_groups(x: np.ndarray, K: int) -> list[np.ndarray]:
    """The sorted values of a 1-d sample cut into K groups of (nearly) equal size."""
    return np.array_split(np.sort(np.ravel(x)), K)


def overall_variance(X: np.ndarray) -> float:
    """1/(d n) sum_n ||x_n - mean||^2 -- the SUTD notes' initial variance; X is (n, d)."""
    return float(np.mean((X - X.mean(axis=0)) ** 2))
