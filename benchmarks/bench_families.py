"""Family engine benchmarks (issue 9): cold derivation CPU per family and K, and a Bernoulli run.

1. Cold derivation: a fresh process per (family, K) derives with the cache bypassed; the CPU time
   of ``derive_family`` alone (process CPU, ``time.process_time``) -- targets: <= 1 s for every
   shipped family and every K <= 50, and it must not grow with K (one generic component).
2. Bernoulli mixture, 10^5 points x 64 binary coordinates, K = 10, 20 iterations from the same
   start: ``emsym run --iterations 20`` as a whole process against a hand-written, vectorised numpy
   EM (``HAND`` below) as a whole process reading the same CSV; both report the final
   log-likelihood, which must agree (the same work).  Target: emsym <= 1.0x the hand script.
   The warm-up run stores the derivation and its compiled plan; the timed runs load the plan
   (no sympy).  Bytecode is written as an installed package has it (PYTHONDONTWRITEBYTECODE unset).

    python benchmarks/bench_families.py [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import DATA, HERE, alternate

PROBE = r"""
import json, sys, time
from emsym.spec import load_spec
from emsym.family_derive import derive_family
spec = load_spec({"family": sys.argv[1], "components": int(sys.argv[2])})
t = time.process_time()
derive_family(spec)
print(json.dumps({"cpu": time.process_time() - t}))
"""

HAND = r"""
import sys
import numpy as np
X = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
init = np.load(sys.argv[2])
w, P = init["w"], init["p"]
for it in range(int(sys.argv[3]) + 1):
    logP, log1P = np.log(P), np.log1p(-P)
    L = X @ (logP - log1P).T + log1P.sum(axis=1) + np.log(w)    # (n, K) log w_k + log f_k(x_n)
    mx = L.max(axis=1, keepdims=True)
    R = np.exp(L - mx)
    s = R.sum(axis=1, keepdims=True)
    ll = float(np.sum(np.log(s) + mx))
    if it == int(sys.argv[3]):
        break
    R /= s
    Nk = R.sum(axis=0)
    w = Nk / len(X)
    P = (R.T @ X) / Nk[:, None]
print(repr(ll))
"""


GAUSSIAN = r"""
import json, sys, time
from emsym.spec import load_spec
from emsym.cache import get_derivation
import emsym.derive, emsym.instantiate  # imported (with sympy) before the clock starts, as the families' probe does
name, d, K = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = d if d == "d" else int(d)  # "d": a concrete K with a general d
if name == "fixed variances":  # pinned per component: derived per component, not from a general form
    spec = load_spec({"components": K, "dim": d, "variance": {"fixed": [k + 1 for k in range(K)]}})
else:
    spec = load_spec(name).instantiate(components=K, dim=d)
t = time.process_time()
D = get_derivation(spec, use_cache=False)  # the general form, then written out for K components
cpu = time.process_time() - t
t = time.process_time()
for s in D.steps:
    s.latex, s.plain
print(json.dumps({"cpu": cpu, "print": time.process_time() - t, "steps": len(D.steps)}))
"""


def gaussian_derivation(ks, env) -> None:
    """The Gaussian: a cold derivation of a concrete K (fresh process, cache bypassed), CPU seconds.

    ``get_derivation`` derives the variant once for a generic component and writes it out for K
    (``emsym.instantiate``), steps included; printing the steps (LaTeX and text) is timed apart.
    A variant pinned per component (1-d, fixed variances 1..K) is derived per component.
    """
    print("\nGaussian, cold derivation of a concrete K (CPU seconds; + printing every step)")
    print(f"  {'model':18}" + "".join(f"  K={K:<12}" for K in ks))
    rows = (("standard-general", 1), ("spherical", 2), ("VVV", 2), ("VEV", 2), ("VVV", "d"), ("fixed variances", 1))
    for name, d in rows:
        cells = []
        for K in ks:
            proc = subprocess.run(
                [sys.executable, "-c", GAUSSIAN, name, str(d), str(K)],
                capture_output=True,
                text=True,
                env=env,
                cwd=HERE.parent,
            )
            if proc.returncode:
                sys.exit(proc.stderr)
            r = json.loads(proc.stdout)
            cells.append(f"{r['cpu']:.2f} + {r['print']:.2f}")
        print(f"  {name + (', d general' if d == 'd' else ''):18}" + "".join(f"  {c:<14}" for c in cells))


def derivation_cpu(families, ks, env) -> dict:
    out = {}
    for fam in families:
        for K in ks:
            proc = subprocess.run(
                [sys.executable, "-c", PROBE, fam, str(K)], capture_output=True, text=True, env=env, cwd=HERE.parent
            )
            if proc.returncode:
                sys.exit(proc.stderr)
            out[(fam, K)] = json.loads(proc.stdout)["cpu"]
    return out


def bernoulli(n: int, d: int, K: int, iters: int, repeats: int, env) -> None:
    rng = np.random.default_rng(0)
    P = rng.uniform(0.05, 0.95, size=(K, d))
    z = rng.integers(K, size=n)
    X = (rng.random((n, d)) < P[z]).astype(np.int8)
    DATA.mkdir(exist_ok=True)
    csv = DATA / f"bernoulli-{n}x{d}.csv"
    if not csv.exists():
        with open(csv, "w") as fh:
            fh.write(",".join(f"c{j}" for j in range(d)) + "\n")
            np.savetxt(fh, X, fmt="%d", delimiter=",")
    start = rng.uniform(0.25, 0.75, size=(K, d))
    w = np.full(K, 1.0 / K)
    tmp = Path(tempfile.mkdtemp())
    (tmp / "model.yaml").write_text(f"family: bernoulli\ncomponents: {K}\n")
    (tmp / "init.json").write_text(
        json.dumps({"components": [{"weight": w[k], "p": list(start[k])} for k in range(K)]})
    )
    np.savez(tmp / "init.npz", w=w, p=start)
    (tmp / "hand.py").write_text(HAND)
    emsym = [sys.executable, "-m", "emsym", "run", str(tmp / "model.yaml"), "--data", str(csv)]
    emsym += ["--init", str(tmp / "init.json"), "--iterations", str(iters), "--format", "json"]
    cmds = {"emsym": emsym, "hand": [sys.executable, str(tmp / "hand.py"), str(csv), str(tmp / "init.npz"), str(iters)]}
    subprocess.run(cmds["emsym"], capture_output=True, env=env, check=True)  # warm the derivation cache
    res = alternate(cmds, repeats, env)
    ours = json.loads(res["emsym"][1])["loglik"][-1]
    hand = float(res["hand"][1])
    if abs(ours - hand) > 1e-8 * abs(hand):
        sys.exit(f"unequal work: final log-likelihood emsym {ours!r}, hand {hand!r}")
    t_e, t_h = res["emsym"][0], res["hand"][0]
    print(f"\nBernoulli {n} x {d}, K = {K}, {iters} iterations, median of {repeats} whole processes")
    print(f"  emsym run   {t_e:7.2f} s   final log-likelihood {ours:.10g}")
    print(f"  hand numpy  {t_h:7.2f} s   final log-likelihood {hand:.10g}")
    print(f"  ratio emsym / hand = {t_e / t_h:.2f}x (target <= 1.0x)")
    in_process(X.astype(float), start, w, iters, repeats)


def in_process(X, start, w, iters: int, repeats: int) -> None:
    """The EM loops alone, in this process: emsym's compiled derived updates against the hand loop."""
    import time

    from emsym.cache import get_derivation
    from emsym.compile import compile_derivation
    from emsym.em import run_em
    from emsym.spec import load_spec

    spec = load_spec({"family": "bernoulli", "components": len(w), "dim": X.shape[1]})
    model = compile_derivation(get_derivation(spec))
    t_e, t_h = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        ours = run_em(model, X, {"pi": w.copy(), "p": start.copy()}, iterations=iters).loglik[-1]
        t_e.append(time.perf_counter() - t)
        t = time.perf_counter()
        hand = _hand_loop(X, w.copy(), start.copy(), iters)
        t_h.append(time.perf_counter() - t)
    assert abs(ours - hand) <= 1e-8 * abs(hand), (ours, hand)
    print(
        f"  loops alone, in one process (median of {repeats}): emsym {np.median(t_e):.2f} s, "
        f"hand {np.median(t_h):.2f} s, ratio {np.median(t_e) / np.median(t_h):.2f}x"
    )


def _hand_loop(X, w, P, iters: int) -> float:
    """The loop of HAND (the same lines), as a function for the in-process timing."""
    for it in range(iters + 1):
        logP, log1P = np.log(P), np.log1p(-P)
        L = X @ (logP - log1P).T + log1P.sum(axis=1) + np.log(w)
        mx = L.max(axis=1, keepdims=True)
        R = np.exp(L - mx)
        s = R.sum(axis=1, keepdims=True)
        ll = float(np.sum(np.log(s) + mx))
        if it == iters:
            break
        R /= s
        Nk = R.sum(axis=0)
        w = Nk / len(X)
        P = (R.T @ X) / Nk[:, None]
    return ll


def main() -> None:
    quick = "--quick" in sys.argv
    env = dict(os.environ, EMSYM_CACHE_DIR=tempfile.mkdtemp(), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    # as an installed emsym runs: its modules' bytecode written once (the warm-up run), not compiled per process
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    families = ["poisson", "exponential", "bernoulli", "multinomial", "categorical"]
    ks = [2, 10] if quick else [2, 10, 20, 50]
    cpu = derivation_cpu(families, ks, env)
    print("Cold derivation CPU seconds (fresh process, cache bypassed; derive_family only)")
    print(f"  {'family':12}" + "".join(f"  K={K:<5}" for K in ks))
    for fam in families:
        print(f"  {fam:12}" + "".join(f"  {cpu[(fam, K)]:<7.2f}" for K in ks))
    print(f"  largest: {max(cpu.values()):.2f} s (target <= 1 s)")
    gaussian_derivation(ks, env)
    if quick:
        bernoulli(20_000, 64, 10, 20, 1, env)
    else:
        bernoulli(100_000, 64, 10, 20, 3, env)


if __name__ == "__main__":
    main()
