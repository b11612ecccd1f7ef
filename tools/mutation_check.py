"""Targeted mutation check: does the test suite fail when the behaviour a test names breaks?

Each mutant below changes one line of emsym in a scratch copy of the repository (the checkout is
never touched), then runs the tests that promise the behaviour. A mutant is *killed* when those
tests fail. A mutant that survives is either a hole in the suite or an equivalent change (the
behaviour really is the same); the ``expect`` field says which we judged it to be, and why.

    .venv/bin/python tools/mutation_check.py            # all mutants, about two minutes
    .venv/bin/python tools/mutation_check.py cache      # the mutants whose name contains 'cache'

Exit status 1 when a mutant expected to be killed survives (or one expected to survive is killed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds: the tests named for a mutant take under 20 s unmutated


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    expect: str = "killed"  # or "survives: <why it is equivalent>"


MUTANTS = [
    Mutant(
        "cache: no key check",
        "emsym/cache.py",
        "    if not isinstance(d, Derivation) or d.spec.key() != spec.key():",
        "    if not isinstance(d, Derivation):",
        ("tests/test_cache.py",),
    ),
    Mutant(
        "cache: disk never read",
        "emsym/cache.py",
        "        d = _read(path, spec)\n",
        "        d = None\n",
        ("tests/test_cache.py",),
    ),
    Mutant(
        "cache: no HMAC check",
        "emsym/cache.py",
        "    if not hmac.compare_digest(_tag(key, payload), head):",
        "    if False:",
        ("tests/test_cache.py",),
    ),
    Mutant(
        "cache: folder ownership not checked",
        "emsym/cache.py",
        "    return mine and not info.st_mode & 0o022",
        "    return True",
        ("tests/test_cache.py",),
    ),
    Mutant(
        "spec: no limit on components",
        "emsym/spec.py",
        "    if value > LIMITS[key]:",
        "    if False:",
        ("tests/test_hostile.py",),
    ),
    Mutant(
        "spec: exact-number exponent unbounded",
        "emsym/spec.py",
        'abs(int(exponent)) > LIMITS["number_exponent"]',
        "False",
        ("tests/test_hostile.py",),
    ),
    Mutant(
        "spec: weights need not sum to 1",
        "emsym/spec.py",
        '    if key == "mixing" and sum(vals) != 1:',
        "    if False:",
        ("tests/test_spec.py",),
    ),
    Mutant(
        "derive: weights constrained to sum to 2",
        "emsym/derive.py",
        "constraint = m.over_components(lambda c: m.pi_[c]) - 1",
        "constraint = m.over_components(lambda c: m.pi_[c]) - 2",
        ("tests/test_em.py", "tests/test_derive.py"),
    ),
    Mutant(
        "derive: Lagrangian with the opposite sign",
        "emsym/derive.py",
        "        objective = m.Q + lam * constraint",
        "        objective = m.Q - lam * constraint",
        ("tests/test_em.py", "tests/test_derive.py"),
    ),
    Mutant(
        "compile: E-step weights off",
        "emsym/compile.py",
        "            out[k] += logw[k]",
        "            out[k] += 0.9 * logw[k]",
        ("tests/test_mle.py", "tests/test_em.py"),
    ),
    Mutant(
        "grader: relative tolerance 1e6 times looser",
        "emsym/grading/grader.py",
        "    return bool(np.all(np.abs(a - b) <= rtol * np.maximum",
        "    return bool(np.all(np.abs(a - b) <= 1e6 * rtol * np.maximum",
        ("tests/test_grading.py",),
    ),
    Mutant(
        "grader: side conditions ignored when sampling",
        "emsym/grading/grader.py",
        "        self.env = self._sample(rng, conditions=bool(self.conditions))",
        "        self.env = self._sample(rng, conditions=False)",
        ("tests/test_grading.py",),
    ),
    Mutant(
        "grader: no stale-mean diagnosis",
        "emsym/grading/grader.py",
        '                "stale-mean",\n                f"you used the old mean',
        '                "stale-mean-x",\n                f"you used the old mean',
        ("tests/test_grading.py", "tests/test_grading_parts.py"),
    ),
    Mutant(
        "grader: symbolic confirmation unbounded",
        "emsym/grading/grader.py",
        "    return degree <= SYMBOLIC_MAX_DEGREE and terms <= SYMBOLIC_MAX_TERMS",
        "    return True",
        ("tests/test_hostile.py::test_the_size_bound_itself_refuses_the_bomb",),
    ),
    Mutant(
        "printing: sums print without their range",
        "emsym/printing.py",
        'body = f"sum_{{{self._print(var)}={self._print(a)}}}^{{{self._print(b)}}} ({body})"',
        'body = f"sum ({body})"',
        ("tests/test_derive.py", "README.md"),
    ),
    Mutant(
        "parser: Unicode digits read as digits",
        "emsym/grading/parser.py",
        'DIGITS = frozenset("0123456789")',
        'DIGITS = frozenset("0123456789²①⁴٣")',
        ("tests/test_hostile.py",),
    ),
    Mutant(
        "parts: stale-mean identity wrong",
        "emsym/solve.py",
        'float(f(var + float(new["mean"][0] - old["mean"][0]) ** 2))',
        "float(f(var))",
        ("tests/test_grading_parts.py",),
    ),
    Mutant(
        "parts: formula injection not escaped",
        "emsym/grading/parts.py",
        """    return "'" + text if text.startswith(_FORMULA_START) else text""",
        "    return text",
        ("tests/test_hostile.py",),
    ),
    Mutant(
        "parts: journal ignores the exercise files",
        "emsym/grading/parts.py",
        "    h = hashlib.sha256(fingerprint.encode())",
        '    h = hashlib.sha256(b"")',
        ("tests/test_hostile.py",),
    ),
]


def _copy() -> Path:
    dst = Path(tempfile.mkdtemp(prefix="emsym-mutant-"))
    for name in ("emsym", "tests", "exercises", "templates", "models", "conftest.py", "pyproject.toml", "README.md"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst / name)
    return dst


def run(m: Mutant) -> tuple[str, float]:
    tree = _copy()
    try:
        target = tree / m.path
        text = target.read_text(encoding="utf-8")
        if text.count(m.old) != 1:
            return f"not applied ({text.count(m.old)} matches: the line moved)", 0.0
        target.write_text(text.replace(m.old, m.new), encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
        start = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
                cwd=tree,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:  # e.g. a limit removed: the test now hangs where it should refuse
            return "killed", time.monotonic() - start
        return ("killed" if proc.returncode != 0 else "survived"), time.monotonic() - start
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(a in m.name for a in argv)]
    wrong = 0
    for m in chosen:
        outcome, seconds = run(m)
        expected = m.expect.split(":")[0]
        ok = outcome == expected or (outcome == "survived" and expected == "survives")
        wrong += not ok
        note = "" if m.expect == "killed" else f"  ({m.expect})"
        print(f"{'ok ' if ok else 'BAD'}  {outcome:<9} {seconds:5.1f}s  {m.name}{note}", flush=True)
    print(f"{len(chosen)} mutants, {wrong} unexpected")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
