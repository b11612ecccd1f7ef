"""`emsym run` with full covariance, whole process, vs scikit-learn's whole process (load + fit).

2*10^5 points in d = 8, K = 5 full-covariance components, the same initial values, 20
iterations (tol 0, no regularisation on either side); the parameters must agree to 1e-6
(relative to each array's largest entry).  Both read the same CSV in their own process.

    python benchmarks/bench_run_full.py [--points N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np
from _common import DATA, HERE, alternate

D, K = 8, 5


def make_data(n: int, path, rng) -> tuple[np.ndarray, np.ndarray]:
    means = rng.normal(0, 4, size=(K, D))
    covs = []
    for _ in range(K):
        Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
        covs.append((Q * rng.uniform(0.3, 2.0, D)) @ Q.T)
    z = rng.choice(K, size=n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    X = means[z] + np.einsum("nij,nj->ni", np.linalg.cholesky(np.array(covs))[z], rng.standard_normal((n, D)))
    with open(path, "w") as fh:
        fh.write(",".join(f"x{i + 1}" for i in range(D)) + "\n")
        np.savetxt(fh, X, fmt="%.17g", delimiter=",")
    return means, np.array(covs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args()
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(2026)
    csv = DATA / f"run-full-{args.points}.csv"
    means, _ = make_data(args.points, csv, rng)  # regenerated: cheap, and the init depends on it
    init = DATA / "run-full-init.json"
    start = means + rng.normal(0, 1.0, size=means.shape)  # perturbed truth, identity-ish covariances
    init.write_text(
        json.dumps(
            {
                "components": [
                    {"weight": 1 / K, "mean": start[k].tolist(), "covariance": (np.eye(D) * 2.0).tolist()}
                    for k in range(K)
                ]
            }
        )
    )
    model = DATA / "full-5x8.yaml"
    model.write_text(f"components: {K}\ndim: {D}\ncovariance: full\n")
    env = dict(os.environ, EMSYM_CACHE_DIR=tempfile.mkdtemp(prefix="emsym-bench-"))
    emsym = [
        sys.executable,
        "-m",
        "emsym",
        "run",
        str(model),
        "--data",
        str(csv),
        "--init",
        str(init),
        "--iterations",
        str(args.iterations),
        "--format",
        "json",
    ]
    ref = [sys.executable, str(HERE / "sklearn_reference.py"), str(csv), str(init), str(args.iterations), "full"]
    cold = alternate({"cold": emsym}, 1, env)["cold"][0]  # derives and fills the cache
    res = alternate({"emsym": emsym, "sklearn": ref}, args.repeats, env)
    ours_doc, theirs_doc = json.loads(res["emsym"][1]), json.loads(res["sklearn"][1])
    print(f"iterations: emsym {ours_doc['iterations']}, scikit-learn {theirs_doc['iterations']}")
    if ours_doc["iterations"] != theirs_doc["iterations"]:
        sys.exit("unequal work: the two sides ran different numbers of iterations; no ratio is reported")
    ours, theirs = ours_doc["components"], theirs_doc["components"]
    err = 0.0
    for a, b in zip(ours, theirs):
        for f in ("weight", "mean", "covariance"):
            x, y = np.array(a[f]), np.array(b[f])
            err = max(err, float(np.max(np.abs(x - y)) / np.max(np.abs(y))))
    t_e, t_s = res["emsym"][0], res["sklearn"][0]
    print(f"{args.points} points, d = {D}, K = {K}, full covariance, {args.iterations} iterations")
    print(f"emsym run (whole process, warm derivation cache): {t_e:.2f} s   (median of {args.repeats})")
    print(f"emsym run (whole process, cold cache: derives):   {cold:.2f} s")
    print(f"scikit-learn load + fit (whole process):          {t_s:.2f} s")
    print(f"ratio emsym / scikit-learn: {t_e / t_s:.2f}   (target <= 1)")
    print(f"largest relative parameter difference: {err:.1e}   (target <= 1e-6)")


if __name__ == "__main__":
    main()
