"""`emsym run` as a whole process vs scikit-learn's whole process (load + fit) on the same CSV.

10^6 one-dimensional points, K = 3, the same initial values, 30 iterations; the parameters
must agree to 1e-6 (relative).  Also measures emsym's peak memory (tracemalloc, in process)
against the data + responsibilities arrays.

    python benchmarks/bench_run.py [--points N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import tracemalloc
import warnings

import numpy as np
from _common import DATA, HERE, alternate


def make_data(n: int, path) -> None:
    rng = np.random.default_rng(2026)
    z = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    x = np.array([-3.0, 1.0, 5.0])[z] + np.array([1.0, 0.6, 1.5])[z] * rng.standard_normal(n)
    with open(path, "w") as fh:
        fh.write("x\n")
        np.savetxt(fh, x, fmt="%.17g")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=30)
    args = ap.parse_args()
    DATA.mkdir(exist_ok=True)
    csv = DATA / f"run-{args.points}.csv"
    if not csv.exists():
        make_data(args.points, csv)
    init = DATA / "run-init.json"
    init.write_text(
        json.dumps(
            {
                "components": [
                    {"weight": 0.4, "mean": -2.0, "variance": 2.0},
                    {"weight": 0.3, "mean": 0.5, "variance": 1.0},
                    {"weight": 0.3, "mean": 4.0, "variance": 3.0},
                ]
            }
        )
    )
    env = dict(os.environ, EMSYM_CACHE_DIR=tempfile.mkdtemp(prefix="emsym-bench-"))
    emsym = [
        sys.executable,
        "-m",
        "emsym",
        "run",
        "standard-3",
        "--data",
        str(csv),
        "--init",
        str(init),
        "--iterations",
        str(args.iterations),
        "--format",
        "json",
    ]
    model = DATA / "standard-3.yaml"
    model.write_text("components: 3\n")
    emsym[4] = str(model)
    ref = [sys.executable, str(HERE / "sklearn_reference.py"), str(csv), str(init), str(args.iterations), "full"]
    alternate({"warm-up": emsym}, 1, env)  # fills the derivation cache once, as any second run finds it
    res = alternate({"emsym": emsym, "sklearn": ref}, args.repeats, env)
    ours_doc, theirs_doc = json.loads(res["emsym"][1]), json.loads(res["sklearn"][1])
    print(f"iterations: emsym {ours_doc['iterations']}, scikit-learn {theirs_doc['iterations']}")
    if ours_doc["iterations"] != theirs_doc["iterations"]:
        sys.exit("unequal work: the two sides ran different numbers of iterations; no ratio is reported")
    ours, theirs = ours_doc["components"], theirs_doc["components"]
    err = max(
        abs(a[f] - b[f]) / max(abs(b[f]), 1e-300)
        if f == "weight"
        else float(np.max(np.abs(np.array(a[f]) - np.array(b[f])) / np.abs(np.array(b[f]))))
        for a, b in zip(ours, theirs)
        for f in ("weight", "mean", "covariance")
    )
    t_e, t_s = res["emsym"][0], res["sklearn"][0]
    print(f"emsym run (whole process, warm derivation cache): {t_e:.2f} s   (median of {args.repeats})")
    print(f"scikit-learn load + fit (whole process):          {t_s:.2f} s")
    print(f"ratio emsym / scikit-learn: {t_e / t_s:.2f}   (target <= 1)")
    print(f"largest relative parameter difference: {err:.1e}   (target <= 1e-6)")

    sys.path.insert(0, str(HERE.parent))
    from emsym import CompiledModel, get_derivation, load_spec, run_em
    from emsym.data import load_data, load_init_components

    m = CompiledModel(get_derivation(load_spec(str(model))))
    tracemalloc.start()
    data = load_data(csv)
    p0 = m.params_from_components(load_init_components(init, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_em(m, data.X, p0, max_iter=args.iterations, tol=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    base = data.X.nbytes + data.X.shape[0] * 3 * 8
    print(
        f"peak traced memory: {peak / 2**20:.1f} MiB = {peak / base:.2f} x (data + responsibilities "
        f"{base / 2**20:.1f} MiB)   (target <= 3)"
    )
    ok = t_e <= t_s and err <= 1e-6 and peak <= 3 * base
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
