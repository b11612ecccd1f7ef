"""Grading speed: `emsym grade --answers` vs sympy's simplify(a - b) == 0, and single-grade latency.

1. 10,000 typed answers to the MIT 6.86x sigma^2 question (benchmarks/grade_corpus.py, the
   right verdict of each known by construction) are graded by `emsym grade --answers FILE
   --format jsonl` as a whole process; every verdict must be right.
2. In the same run, the same answers are checked with sympy: each readable answer becomes a
   sympy expression (built from emsym's parse tree -- sympy is not given the text) and
   `simplify(answer - expected) == 0` decides it.  Only that is timed; unreadable answers
   cost sympy nothing here, which favours sympy.
3. Latency: one FormulaGrader in a running process (symbolic confirmation on, as in the
   Python API and for single answers) grades each distinct answer separately with its memo of
   confirmations emptied first (every answer unseen); p50/p99/max.

    python benchmarks/bench_grade.py [--answers N] [--sympy-answers M]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
from _common import DATA, HERE
from grade_corpus import EXPECTED, corpus

sys.path.insert(0, str(HERE.parent))


def to_sympy(tree):
    import sympy as sp

    kind = tree[0]
    if kind == "num":
        f = Fraction(tree[2])
        return sp.Rational(f.numerator, f.denominator)
    if kind == "var":
        return sp.Symbol(tree[1])
    if kind == "const":
        return sp.pi if tree[1] == "pi" else sp.E
    if kind == "neg":
        return -to_sympy(tree[1])
    if kind == "call":
        return {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs}[tree[1]](to_sympy(tree[2]))
    a, b = to_sympy(tree[1]), to_sympy(tree[2])
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b, "^": a**b}[kind]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answers", type=int, default=10_000)
    ap.add_argument("--sympy-answers", type=int, default=None, help="check only the first M with sympy")
    args = ap.parse_args()
    import sympy as sp

    from emsym.grading import FormulaGrader
    from emsym.grading.parser import InvalidAnswer, parse

    items = corpus(args.answers)
    DATA.mkdir(exist_ok=True)
    path = DATA / f"answers-{args.answers}.txt"
    path.write_text("\n".join(a for a, _ in items) + "\n", encoding="utf-8")

    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "emsym", "grade", "--expected", EXPECTED, "--answers", str(path), "--format", "jsonl"],
        capture_output=True,
        text=True,
        check=True,
    )
    t_emsym = time.perf_counter() - t
    verdicts = [json.loads(line)["verdict"] for line in proc.stdout.splitlines()]
    wrong = sum(v != want for v, (_, want) in zip(verdicts, items)) + abs(len(verdicts) - len(items))
    print(f"emsym grade --answers, {len(items)} answers, whole process: {t_emsym:.2f} s; verdicts wrong: {wrong}")

    expected = to_sympy(parse(EXPECTED).tree)
    subset = items[: args.sympy_answers] if args.sympy_answers else items
    t_sympy, checked, sympy_wrong = 0.0, 0, 0
    for answer, want in subset:
        try:
            tree = parse(answer).tree
        except InvalidAnswer:
            continue
        if (answer.count("mu_k") and "hatmu" not in answer) or "Nk" in answer:
            continue  # names the question does not allow: no sympy work
        t = time.perf_counter()
        same = sp.simplify(to_sympy(tree) - expected) == 0
        t_sympy += time.perf_counter() - t
        checked += 1
        sympy_wrong += same != (want == "correct")
    scale = len(items) / len(subset)
    print(
        f"sympy simplify(a - b) == 0 on the {checked} readable answers of {len(subset)}: {t_sympy:.1f} s"
        + (f" (x{scale:.1f} for all {len(items)}: {t_sympy * scale:.1f} s)" if scale != 1 else "")
        + f"; verdicts wrong: {sympy_wrong}"
    )
    ratio = t_emsym / (t_sympy * scale)
    print(f"ratio emsym / sympy: 1/{1 / ratio:.0f}   (target <= 1/20)")

    grader = FormulaGrader(EXPECTED)
    grader.grade(EXPECTED)  # imports sympy for the confirmation once, as a running process has
    times = []
    unseen = list(dict.fromkeys(a for a, _ in items))
    for answer in unseen:  # every answer unseen: the confirmation memo is emptied before each grade
        grader._confirmed.clear()
        t = time.perf_counter()
        grader.grade(answer)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1e3
    print(
        f"single grade in a running process, {len(unseen)} distinct answers, none memoised: p50 "
        f"{np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms "
        "(target p99 <= 10 ms)"
    )
    ok = wrong == 0 and ratio <= 1 / 20 and np.percentile(ms, 99) <= 10
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
