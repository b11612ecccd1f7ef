"""General answers (sums over indices): single-grade latency, sympy side by side, 10^6 through batch grading.

The answers are typed variants of the Georgia Tech exercise's general parts (the mean update,
its stationarity condition, the weight update) -- plain text, LaTeX, Unicode, renamed indices,
equations -- and typical mistakes; the right verdict of each is known by construction.

1. Latency: the exercise's graders in a running process grade each answer; p50 / p99 / max.
2. sympy side by side, in the same process: each readable answer becomes a sympy expression
   (built from emsym's parse tree, with sympy Sum and Indexed; sympy never sees the text) and
   ``simplify(answer - expected) == 0`` decides it (for an equation, lhs - rhs); timed per answer.
3. Batch: a CSV of ``--rows`` rows (default 10^6) drawn from those answers goes through
   ``grade_submissions`` with every core; every verdict must be the labelled one.

    python benchmarks/bench_grade_general.py [--rows N] [--jobs J] [--sympy-answers M]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from _common import HERE

sys.path.insert(0, str(HERE.parent))
EXERCISE = HERE.parent / "exercises" / "gt-gmm-mle.yaml"

# (part, answer, right?) -- written as students write them
ANSWERS = [
    ("mu-k-general", "sum_n gamma_nk x_n / N_k", True),
    ("mu-k-general", r"\frac{\sum_{n=1}^{N} \gamma_{nk} x_n}{\sum_{n=1}^{N} \gamma_{nk}}", True),
    ("mu-k-general", r"\frac{1}{N_k}\sum_{n=1}^N \gamma(z_{nk})\, x_n", True),
    ("mu-k-general", "sum_i gamma_ik x_i / sum_m gamma_mk", True),
    ("mu-k-general", "Σ_n γ(z_nk) xₙ / N_k", True),
    ("mu-k-general", "sum(gamma_nk*x_n, n)/N_k", True),
    ("mu-k-general", "sum_n (x_n gamma_nk) / sum_n gamma_nk", True),
    ("mu-k-general", "sum_n x_n / N", False),
    ("mu-k-general", "sum_n gamma_nk x_n", False),
    ("mu-k-general", "sum_n gamma_nk x_n / N", False),
    ("mu-k-general", "-sum_n gamma_nk x_n / N_k", False),
    ("mu-k-general", "2 sum_n gamma_nk x_n / N_k", False),
    ("mu-k-general", "(gamma_1k x_1 + gamma_2k x_2)/N_k", False),
    ("mu-k-general", "sum_n gamma_nk x_n / N_k + abs(x_1 - 1e11) - (1e11 - x_1)", False),
    ("sigma-k-general", "1/N_k sum_n gamma_nk (x_n - mu_k)^2", True),
    ("sigma-k-general", r"\frac{1}{N_k}\sum_{n=1}^{N}\gamma_{nk}(x_n-\mu_k)^2", True),
    ("sigma-k-general", "sum_n gamma_nk (x_n^2 - 2 x_n mu_k + mu_k^2) / N_k", True),
    ("sigma-k-general", "sum_n gamma_nk (x_n - mu_k)^2 / (2 N_k)", False),
    ("sigma-k-general", "sum_n gamma_nk x_n^2 / N_k - mu_k^2", False),
    ("pi-k-general", "N_k / N", True),
    ("pi-k-general", "sum_n gamma_nk / N", True),
    ("pi-k-general", "sum_n gamma_nk / sum_n sum_j gamma_nj", True),
    ("pi-k-general", "N_k", False),
    ("pi-k-general", "N_k / K", False),
    ("mu-k-condition", "sum_n gamma_nk (x_n - mu_k)/sigma2_k = 0", True),
    ("mu-k-condition", "sum_n gamma_nk (x_n - mu_k) = 0", True),
    ("mu-k-condition", "sum_n gamma_nk x_n = N_k*mu_k", True),
    ("mu-k-condition", "sum_n gamma_nk (x_n + mu_k) = 0", False),
    ("mu-k-condition", "sum_n (x_n - mu_k) = 0", False),
]


def to_sympy(tree, idx):
    """A sympy expression from emsym's tree: indexed names become Indexed, sums Sum (1..N or 1..K)."""
    import sympy as sp

    kind = tree[0]
    if kind == "num":
        f = Fraction(tree[2])
        return sp.Rational(f.numerator, f.denominator)
    if kind == "var":
        name = tree[1]
        if "_" in name:
            base, sub = name.split("_", 1)
            if all(c in idx for c in sub):
                return sp.IndexedBase(base)[tuple(sp.Symbol(c, integer=True) for c in sub)]
        return sp.Symbol(name)
    if kind == "const":
        return sp.pi if tree[1] == "pi" else sp.E
    if kind == "neg":
        return -to_sympy(tree[1], idx)
    if kind == "call":
        return {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs}[tree[1]](to_sympy(tree[2], idx))
    if kind == "big":
        _, op, letter, _low, high, body = tree
        i = sp.Symbol(letter, integer=True)
        top = sp.Symbol(idx[letter]) if high is None or isinstance(high, str) else high
        f = sp.Sum if op == "sum" else sp.Product
        return f(to_sympy(body, idx), (i, 1, top))
    a, b = to_sympy(tree[1], idx), to_sympy(tree[2], idx)
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b, "^": a**b, "=": a - b}[kind]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--sympy-answers", type=int, default=len(ANSWERS))
    ap.add_argument("--repeat", type=int, default=20, help="latency: grade each answer this many times")
    args = ap.parse_args()
    from emsym.grading.parts import ExerciseGraders, grade_submissions
    from emsym.grading.space import DEFAULT_INDICES

    graders = ExerciseGraders(EXERCISE)
    ex = "gt-gmm-mle"
    wrong = [(p, a, ok) for p, a, ok in ANSWERS if (graders.grade(ex, p, a).verdict == "correct") != ok]
    print(f"{len(ANSWERS)} labelled answers, {len(wrong)} graded wrongly" + (f": {wrong}" if wrong else ""))

    # 1. latency in a running process (each grader warmed once, as a server would be)
    times = []
    for _ in range(args.repeat):
        for p, a, _ in ANSWERS:
            t = time.perf_counter()
            graders.grade(ex, p, a)
            times.append(time.perf_counter() - t)
    t_ms = np.array(times) * 1e3
    print(
        f"latency per grade ({len(t_ms)} grades): p50 {np.percentile(t_ms, 50):.2f} ms, "
        f"p99 {np.percentile(t_ms, 99):.2f} ms, max {t_ms.max():.1f} ms"
    )

    # 2. sympy simplify(a - b) == 0, same answers, same process
    import sympy as sp

    emsym_each = float(np.median(t_ms))
    sym_times, sym_right, sym_failed = [], 0, 0
    for p, a, ok in ANSWERS[: args.sympy_answers]:
        g = graders.graders[(ex, p)]
        tree = g.read(a).tree
        expected = g.expected.tree
        t = time.perf_counter()
        try:
            same = sp.simplify(to_sympy(tree, DEFAULT_INDICES) - to_sympy(expected, DEFAULT_INDICES)) == 0
        except Exception:  # sympy itself fails on some sums (StopIteration inside sum_add): no verdict
            same = None
        sym_times.append(time.perf_counter() - t)
        sym_right += same == ok
        sym_failed += same is None
    sym_each = float(np.median(sym_times)) * 1e3
    print(
        f"sympy simplify(a - b) == 0 on {len(sym_times)} answers: median {sym_each:.1f} ms per answer, "
        f"{sym_right}/{len(sym_times)} verdicts right ({sym_failed} raised); emsym median {emsym_each:.2f} ms: "
        f"ratio emsym/sympy = 1/{sym_each / emsym_each:.0f}"
    )

    # 3. batch: --rows rows through grade_submissions on every core
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(ANSWERS), args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "subs.csv"
        with open(sub, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["student", "exercise", "part", "answer"])
            for r, i in enumerate(pick):
                p, a, _ = ANSWERS[i]
                w.writerow([f"s{r}", ex, p, a])
        out = Path(tmp) / "graded.json"
        t = time.perf_counter()
        done = grade_submissions(graders, sub, out=out, fmt="json", jobs=args.jobs)
        elapsed = time.perf_counter() - t
        rows = json.loads(out.read_text())
    right = sum((r["verdict"] == "correct") == ANSWERS[i][2] for r, i in zip(rows, pick))
    in_order = [r["row"] for r in rows] == list(range(2, args.rows + 2))
    print(
        f"batch: {done['rows']:,} rows with {args.jobs} processes in {elapsed:.1f} s "
        f"({done['rows'] / elapsed:,.0f} answers/s); {right:,}/{len(rows):,} verdicts right; rows in order: {in_order}"
    )


if __name__ == "__main__":
    main()
