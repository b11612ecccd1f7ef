"""Full-covariance EM loop, like for like with scikit-learn, in one process.

Both sides run exactly 20 iterations (emsym: tol = -1 and param_tol = -1, so no stopping rule can
fire; scikit-learn: tol = 0) from the same start (the same means, weights 1/K and the data's
covariance for every component), with no K-means (scikit-learn's ``init_params='random_from_data'``
plus the given start), no regularisation, and one BLAS thread on both sides. The iteration counts of
both sides are printed and the script fails if they differ.

    .venv/bin/python benchmarks/bench_loop_full.py
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from emsym import CompiledModel, get_derivation, load_spec, run_em

CASES = ((200_000, 8, 5), (100_000, 20, 10))
ITERATIONS = 20


def main() -> int:
    rng = np.random.default_rng(1)
    for n, d, K in CASES:
        X = np.concatenate([rng.normal(rng.normal(0, 4, d), 1.0, (n // K, d)) for _ in range(K)])
        model = CompiledModel(get_derivation(load_spec({"components": K, "dim": d, "covariance": "full"})))
        means, cov = X[rng.choice(len(X), K, replace=False)], np.cov(X.T)
        init = model.params_from_components([{"weight": 1 / K, "mean": list(m), "variance": cov} for m in means])
        times: dict[str, list[float]] = {"emsym": [], "sklearn": []}
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(3):  # alternated runs
                start = time.perf_counter()
                ours = run_em(model, X, init, max_iter=ITERATIONS, tol=-1, param_tol=-1)
                times["emsym"].append(time.perf_counter() - start)
                gm = GaussianMixture(
                    K,
                    covariance_type="full",
                    max_iter=ITERATIONS,
                    tol=0,
                    reg_covar=0,
                    init_params="random_from_data",
                    weights_init=np.full(K, 1 / K),
                    means_init=means,
                    precisions_init=np.array([np.linalg.inv(cov)] * K),
                )
                start = time.perf_counter()
                gm.fit(X)
                times["sklearn"].append(time.perf_counter() - start)
        if ours.iterations != gm.n_iter_:
            print(f"unequal work: emsym ran {ours.iterations} iterations, scikit-learn {gm.n_iter_}")
            return 1
        e, s = np.median(times["emsym"]), np.median(times["sklearn"])
        print(
            f"n={n} d={d} K={K}: {ours.iterations} iterations each; emsym {e:.2f} s, scikit-learn {s:.2f} s "
            f"(median of 3, one BLAS thread); ratio {e / s:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
