"""Worked sheets: all exercises to Markdown + HTML with figures, and a single sheet.

Whole processes: `emsym solve exercises --format md,html --out DIR` (target <= 10 s), then
one exercise (`emsym solve exercises/mit-686x-em.yaml --format html`), both with a warm
derivation cache; and a single sheet solved and rendered in a running process after the
first (target <= 1 s).

    python benchmarks/bench_solve.py
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

from _common import HERE, wall

sys.path.insert(0, str(HERE.parent))


def main() -> None:
    env = dict(os.environ, EMSYM_CACHE_DIR=tempfile.mkdtemp(prefix="emsym-bench-"))
    out = tempfile.mkdtemp(prefix="emsym-sheets-")
    ex = str(HERE.parent / "exercises")
    cmd = [sys.executable, "-m", "emsym", "solve", ex, "--format", "md,html", "--out", out]
    cold, _ = wall(cmd, env)  # fills the derivation and figure caches

    def cpu(run) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    cpu_warm, cpu_drawn = [], []
    for _ in range(3):
        cpu_warm.append(cpu(lambda: wall(cmd, env)))
        shutil.rmtree(os.path.join(env["EMSYM_CACHE_DIR"], "figures"), ignore_errors=True)
        cpu_drawn.append(cpu(lambda: wall(cmd, env)))
    times = [wall(cmd, env)[0] for _ in range(3)]
    n = len([f for f in os.listdir(out) if f.endswith(".html")])
    one = [
        wall([sys.executable, "-m", "emsym", "solve", f"{ex}/mit-686x-em.yaml", "--format", "html", "--out", out], env)[
            0
        ]
        for _ in range(3)
    ]
    os.environ["EMSYM_CACHE_DIR"] = env["EMSYM_CACHE_DIR"]
    from emsym.exercise import load_exercise
    from emsym.plots import figures
    from emsym.render import render_sheet
    from emsym.solve import solve

    def sheet():
        s = solve(load_exercise(f"{ex}/mit-686x-em.yaml"))
        render_sheet(s, "html", figures=figures(s))

    sheet()
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        sheet()
        warm.append(time.perf_counter() - t)
    print(
        f"all {n} exercises, Markdown + HTML with figures, whole process: {statistics.median(times):.2f} s wall "
        f"(median of 3; cold derivation cache {cold:.2f} s); CPU {statistics.median(cpu_warm):.2f} s with the "
        f"figure cache warm, {statistics.median(cpu_drawn):.2f} s drawing every figure (target <= 7 s CPU)"
    )
    print(
        f"one sheet (MIT 6.86x, HTML), whole process: {statistics.median(one):.2f} s "
        f"(mostly importing numpy, sympy and matplotlib)"
    )
    print(f"one sheet in a running process after the first: {statistics.median(warm):.2f} s (target <= 1 s)")
    print("PASS" if statistics.median(cpu_warm) <= 7 and statistics.median(warm) <= 1 else "FAIL")


if __name__ == "__main__":
    main()
