"""Small data: the fixed cost per iteration, emsym against scikit-learn in one process.

A 1-d mixture of three Gaussians, n points, the same start on both sides, exactly the same number
of iterations (emsym ``run_em(..., tol=-1)``, scikit-learn ``GaussianMixture(tol=0, reg_covar=0,
init_params="random_from_data")`` with the start given; both counts printed and required equal),
one BLAS thread, median of 5 alternated runs per size.

    python benchmarks/bench_small.py [--sizes 100,1000,10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import statistics
import sys
import time
import warnings

import numpy as np
from _common import HERE

sys.path.insert(0, str(HERE.parent))

START = [(1 / 3, -3.0, 1.0), (1 / 3, 0.5, 1.0), (1 / 3, 3.0, 1.0)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,10000,100000,1000000")
    args = ap.parse_args()
    from sklearn.mixture import GaussianMixture

    from emsym.cache import get_derivation
    from emsym.compile import compile_derivation
    from emsym.em import run_em
    from emsym.spec import spec_from_dict

    model = compile_derivation(get_derivation(spec_from_dict({"components": 3, "name": "three"})))
    init = model.params_from_components([{"weight": w, "mean": m, "variance": v} for w, m, v in START])
    rng = np.random.default_rng(0)
    print(f"{'n':>9} {'iterations':>10} {'emsym':>10} {'scikit-learn':>13} {'ratio':>6}")
    for n in (int(s) for s in args.sizes.split(",")):
        X = np.concatenate([rng.normal(c, 1.0, n // 3 + (k < n % 3)) for k, c in enumerate((-4, 0, 4))])[:, None]
        iters = 100 if n <= 10_000 else 20

        def ours(X=X, iters=iters):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return run_em(model, X, init, max_iter=iters, tol=-1).iterations

        def theirs(X=X, iters=iters):
            g = GaussianMixture(
                3,
                covariance_type="full",
                reg_covar=0,
                tol=0,
                max_iter=iters,
                init_params="random_from_data",
                weights_init=[w for w, _, _ in START],
                means_init=[[m] for _, m, _ in START],
                precisions_init=[[[1 / v]] for _, _, v in START],
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g.fit(X)
            return g.n_iter_

        a_it, b_it = ours(), theirs()  # warm up; and the counts must match
        if a_it != b_it:
            raise SystemExit(f"n = {n}: unequal work, emsym {a_it} iterations, scikit-learn {b_it}")
        ta, tb = [], []
        for _ in range(5):
            t = time.perf_counter()
            ours()
            ta.append(time.perf_counter() - t)
            t = time.perf_counter()
            theirs()
            tb.append(time.perf_counter() - t)
        a, b = statistics.median(ta), statistics.median(tb)
        print(f"{n:>9} {a_it:>10} {a * 1e3:>8.1f}ms {b * 1e3:>11.1f}ms {a / b:>6.2f}")


if __name__ == "__main__":
    main()
