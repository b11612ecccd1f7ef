"""The practice app under load, page times, and randomised variants.

1. ``emsym serve`` runs as its own process on 127.0.0.1 (a fresh SQLite file); 20 client threads
   each send ``--requests`` graded answers (numbers and formulas, right and wrong) to
   ``/api/grade`` at once; latency per submission p50 / p99 / max, and every attempt recorded.
2. The exercise page with its figure: the first request (solves the student's variant, draws the
   figure) and the next ones.
3. 1,000 randomised variants of the MIT 6.86x practice exercise, each drawn and solved with all
   its answers (in one process): time per variant.

    python benchmarks/bench_serve.py [--clients 20] [--requests 25] [--variants 1000]
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _common import HERE

sys.path.insert(0, str(HERE.parent))
EXERCISES = HERE.parent / "exercises"
PRACTICE = "mit-686x-em-practice"
ANSWERS = [
    ("mstep-sigma2", "sum_n gamma_nk (x_n - mu_k)^2 / N_k"),
    ("mstep-sigma2", r"\frac{1}{N_k}\sum_{n=1}^N \gamma_{nk}(x_n-\mu_k)^2"),
    ("mstep-sigma2", "sqrt(sum_n gamma_nk (x_n - mu_k)^2 / N_k)"),
    ("mstep-sigma2", "sum_n gamma_nk (x_n - mu_k)^2 / (2 N_k)"),
    ("loglik", "-12.3"),
    ("resp-1", "0.5"),
    ("mu-after-one", "1.25"),
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url, student, part, answer):
    body = json.dumps({"exercise": PRACTICE, "part": part, "answer": answer}).encode()
    req = urllib.request.Request(
        url + "/api/grade",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Cookie": f"emsym_student={student}"},
    )
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
        status = r.status
    return time.perf_counter() - t, status


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=25)
    ap.add_argument("--variants", type=int, default=1000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    port = _port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emsym", "serve", str(EXERCISES), "--port", str(port), "--db", str(tmp / "a.db")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        # each student's variant solved once before the timed run (as after their first page)
        for k in range(args.clients):
            _call(url, f"s{k}", "loglik", "0")
        page = []
        for _ in range(5):
            req = urllib.request.Request(url + f"/ex/{PRACTICE}", headers={"Cookie": "emsym_student=pagetest"})
            t = time.perf_counter()
            urllib.request.urlopen(req, timeout=60).read()
            fig = urllib.request.Request(url + f"/ex/{PRACTICE}/figure/start.png", headers=req.headers)
            urllib.request.urlopen(fig, timeout=60).read()
            page.append(time.perf_counter() - t)

        def client(k):
            out = []
            for i in range(args.requests):
                part, answer = ANSWERS[(k + i) % len(ANSWERS)]
                out.append(_call(url, f"s{k}", part, answer))
            return out

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = [r for batch in pool.map(client, range(args.clients)) for r in batch]
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lat = np.array([r[0] for r in results]) * 1e3
    ok = all(r[1] == 200 for r in results)
    con = sqlite3.connect(tmp / "a.db")
    recorded = con.execute("SELECT count(*) FROM attempts").fetchone()[0] - args.clients
    con.close()
    print(
        f"{args.clients} concurrent clients x {args.requests} submissions: p50 {np.percentile(lat, 50):.1f} ms, "
        f"p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms; {len(lat) / wall:.0f} submissions/s; "
        f"all 200: {ok}; attempts recorded {recorded}/{len(lat)}"
    )
    print(f"exercise page + figure: first {page[0] * 1e3:.0f} ms, then median {np.median(page[1:]) * 1e3:.0f} ms")

    from emsym.exercise import load_exercise
    from emsym.solve import solve
    from emsym.variants import variant

    ex = load_exercise(EXERCISES / f"{PRACTICE}.yaml")
    solve(variant(ex, 0))  # derivation cached, imports done
    times = []
    for seed in range(args.variants):
        t = time.perf_counter()
        sol = solve(variant(ex, seed))
        times.append(time.perf_counter() - t)
        assert len(sol.parts) == len(ex.parts)
    times_ms = np.array(times) * 1e3
    print(
        f"{args.variants} variants drawn and solved: mean {times_ms.mean():.1f} ms, p99 "
        f"{np.percentile(times_ms, 99):.1f} ms, max {times_ms.max():.1f} ms per variant"
    )


if __name__ == "__main__":
    main()
