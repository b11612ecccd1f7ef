"""Grading typed answers: equivalence by sampling, side conditions, misconceptions.

A ``FormulaGrader`` is built once per question (the expected answer is parsed and sampled
once) and then grades any number of answers cheaply.  Equivalence is numeric: both sides
are evaluated at the same random points -- positive values for variances and counts, (0, 1)
for weights and responsibilities, reals for data and means -- and must agree to a relative
tolerance of 1e-8 at every point, which accepts rewrites and rejects near-misses.  Side
conditions (``gamma_11 + gamma_21 = 1``) are honoured by sampling on them: each is solved
numerically for a name it is linear in.  An answer that matches only on the side conditions
is correct, and the feedback says so.

When an answer is wrong, the grader evaluates the answers typical EM mistakes produce --
rewrites of the expected answer -- and names the mistake that matches (see ``_mistakes``).

>>> g = FormulaGrader("(gamma_k1*x_1 + gamma_k2*x_2)/(gamma_k1 + gamma_k2)")
>>> g.grade("(x_2 gamma_k2 + gamma_k1 x_1) / (gamma_k2 + gamma_k1)").verdict
'correct'
>>> print(g.grade("(x_1 + x_2)/2").feedback)
Incorrect: unweighted -- every point counts the same. Weight each point by its responsibility (gamma).
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import GraderError
from .parser import CONSTANTS, InvalidAnswer, Parsed, parse, to_text

__all__ = ["FormulaGrader", "GraderError", "Verdict", "parse_tolerance"]

SAMPLES = 32
RTOL = 1e-8
TIME_LIMIT = 0.5  # seconds for one grade; checked between stages


@dataclass(frozen=True)
class Verdict:
    """The result of grading one answer."""

    verdict: str  # "correct" | "incorrect" | "invalid"
    score: float
    feedback: str
    reading: str | None = None  # the answer as it was read
    mistake: str | None = None  # key of the recognised misconception

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "score": self.score, "feedback": self.feedback}


# -- names and domains ------------------------------------------------------------------
_POSITIVE = {"sigma", "sigma2", "s", "s2", "var", "v", "n", "N", "nk", "Nk", "K", "d", "tau", "lambda2", "det", "Sigma"}
_UNIT = {"pi", "theta", "gamma", "g", "r", "w", "p", "q", "alpha", "phi", "tau_", "resp", "omega"}


def _base(name: str) -> str:
    b = name.split("_", 1)[0]
    return b[3:] if b.startswith("hat") and len(b) > 3 else b


def domain_of(name: str) -> str:
    """'positive', 'unit' or 'real', guessed from the name (overridable per grader)."""
    b = _base(name)
    if b in _UNIT:
        return "unit"
    if b in _POSITIVE or b.startswith("sigma"):
        return "positive"
    return "real"


def _hat_variants(name: str) -> list[str]:
    return [name[3:]] if name.startswith("hat") and len(name) > 3 else ["hat" + name]


def _hat_twin(name: str) -> str:
    return _hat_variants(name)[0]


def _index_swaps(name: str) -> list[str]:
    if "_" not in name:
        return []
    base, sub = name.split("_", 1)
    return [f"{base}_{sub[::-1]}"] if len(sub) == 2 and sub[0] != sub[1] else []


# -- evaluation -------------------------------------------------------------------------
_FN = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}


def evaluate(tree: tuple, env: dict) -> Any:
    kind = tree[0]
    if kind == "num":
        return np.float64(tree[1])  # numpy scalars: 1/0 is inf (errors are off), not an exception
    if kind == "var":
        return env[tree[1]]
    if kind == "const":
        return np.float64(CONSTANTS[tree[1]])
    if kind == "neg":
        return -evaluate(tree[1], env)
    if kind == "call":
        return _FN[tree[1]](evaluate(tree[2], env))
    a, b = evaluate(tree[1], env), evaluate(tree[2], env)
    if kind == "+":
        return a + b
    if kind == "-":
        return a - b
    if kind == "*":
        return a * b
    if kind == "/":
        return a / b
    return np.power(a, b)


def _close(a, b, rtol=RTOL) -> bool:
    a = np.broadcast_to(np.asarray(a, dtype=float), (SAMPLES,))
    b = np.broadcast_to(np.asarray(b, dtype=float), (SAMPLES,))
    fa, fb = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(fa, fb) or fb.sum() < SAMPLES // 2:
        return False
    a, b = a[fb], b[fb]
    scale = 1e-12 * (1 + float(np.median(np.abs(b))))
    return bool(np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b)) + scale))


# -- tree rewrites for misconceptions ----------------------------------------------------
def _replace(tree, fn):
    """Top-down rewrite of the original nodes: fn(node) returns a replacement or None."""
    out = fn(tree)
    if out is not None:
        return out
    kind = tree[0]
    if kind in "+-*/^":
        return (kind, _replace(tree[1], fn), _replace(tree[2], fn))
    if kind == "neg":
        return (kind, _replace(tree[1], fn))
    if kind == "call":
        return (kind, tree[1], _replace(tree[2], fn))
    return tree


def _nodes(tree):
    yield tree
    kind = tree[0]
    if kind in "+-*/^":
        yield from _nodes(tree[1])
        yield from _nodes(tree[2])
    elif kind == "neg":
        yield from _nodes(tree[1])
    elif kind == "call":
        yield from _nodes(tree[2])


def _names_in(tree) -> set:
    return {n[1] for n in _nodes(tree) if n[0] == "var"}


def _is_resp(name):
    return _base(name) in {"gamma", "r", "resp", "w", "p"}


def _terms(tree):
    if tree[0] == "+":
        return _terms(tree[1]) + _terms(tree[2])
    return [tree]


ONE = ("num", 1.0, "1")


def _mistakes(expected):
    """(key, message, rewritten tree) for the typical mistakes, from the expected tree."""
    out = []
    names = _names_in(expected)
    sig = sorted(n for n in names if _base(n).startswith("sigma"))
    squared = {
        id(n)
        for n in _nodes(expected)
        if n[0] == "^" and n[1][0] == "var" and n[1][1] in sig and n[2][0] == "num" and n[2][1] == 2
    }
    if sig:
        if squared:
            out.append(
                (
                    "sigma-for-sigma2",
                    "you used sigma where sigma^2 (the variance) belongs.",
                    _replace(expected, lambda t: t[1] if id(t) in squared else None),
                )
            )
        out.append(
            (
                "sigma2-for-sigma",
                "you used sigma^2 where sigma belongs (or squared a variance twice).",
                _replace(expected, lambda t: ("^", t, ("num", 2.0, "2")) if t[0] == "var" and t[1] in sig else None),
            )
        )
        out.append(
            (
                "sigma-for-sigma2",
                "you used sigma where sigma^2 (the variance) belongs.",
                _replace(expected, lambda t: ("call", "sqrt", t) if t[0] == "var" and t[1] in sig else None),
            )
        )
    if expected[0] == "/":
        num, den = expected[1], expected[2]
        den_names = _names_in(den)
        if den_names and all(_is_resp(n) for n in den_names):
            out.append(
                (
                    "n-for-Nk",
                    f"you divided by the number of points ({len(_terms(den))}); divide by "
                    f"N_k = {to_text(den)}, the sum of the responsibilities.",
                    ("/", num, ("num", float(len(_terms(den))), str(len(_terms(den))))),
                )
            )
        if not den_names or all(_is_resp(n) for n in den_names):
            msg = (
                "counts instead of fractions: that is the effective count N_k; divide it by the number of "
                "points to get a weight."
                if not any(_base(n) in {"x", "y"} for n in _names_in(num))
                else "the division by N_k (the sum of the responsibilities) is missing."
            )
            out.append(("not-divided", msg, num))
        elif len(_terms(den)) == 1:  # one factor such as N: a missing division, not a normalisation
            what = " (the number of points)" if to_text(den) in ("N", "n") else ""
            out.append(("not-divided", f"the division by {to_text(den)}{what} is missing.", num))
        else:
            out.append(
                (
                    "not-normalised",
                    "the responsibilities are not normalised: divide by the sum over all "
                    "components so that they add up to 1.",
                    num,
                )
            )
    resp = [n for n in names if _is_resp(n)]
    if resp:
        out.append(
            (
                "unweighted",
                "unweighted -- every point counts the same. Weight each point by its responsibility (gamma).",
                _replace(expected, lambda t: ONE if t[0] == "var" and t[1] in resp else None),
            )
        )
    hats = [n for n in names if n.startswith("hat")]
    if hats:
        out.append(
            (
                "stale-mean",
                f"you used the old mean ({', '.join(h[3:] for h in hats)}); this update uses the new "
                f"mean ({', '.join(hats)}) from the same M-step.",
                _replace(expected, lambda t: ("var", t[1][3:]) if t[0] == "var" and t[1] in hats else None),
            )
        )
    by_base: dict = {}
    for n in sorted(names):
        if "_" in n:
            by_base.setdefault(n.split("_", 1)[0], []).append(n)
    for group in by_base.values():
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                a, b = group[i], group[j]
                swap = {a: b, b: a}
                out.append(
                    (
                        "indices-swapped",
                        f"the indices are mixed up: {a} and {b} are exchanged.",
                        _replace(expected, lambda t, s=swap: ("var", s[t[1]]) if t[0] == "var" and t[1] in s else None),
                    )
                )
    subs = [n for n in _nodes(expected) if n[0] in "+-"]
    for target in subs[:12]:
        flipped = {"+": "-", "-": "+"}[target[0]]
        out.append(
            (
                "sign",
                f"a sign error: '{to_text(target)}' should not have its sign flipped.",
                _replace(expected, lambda t, tg=target, f=flipped: (f, t[1], t[2]) if t is tg else None),
            )
        )
    return out


_FACTORS = [
    (-1.0, "sign", "a sign error: your answer is the expected one with the opposite sign."),
    (2.0, "factor-half", "a factor of 2 is off (a missing 1/2?)."),
    (0.5, "factor-half", "a factor of 2 is off (a missing 1/2?)."),
    (math.sqrt(2 * math.pi), "two-pi", "a factor sqrt(2 pi) is off (the normal density's 1/sqrt(2 pi sigma^2)?)."),
    (1 / math.sqrt(2 * math.pi), "two-pi", "a factor sqrt(2 pi) is off (the normal density's 1/sqrt(2 pi sigma^2)?)."),
    (2 * math.pi, "two-pi", "a factor 2 pi is off."),
    (1 / (2 * math.pi), "two-pi", "a factor 2 pi is off."),
]


_SHIFTS = [
    (s * c, "two-pi", "the constant log(2 pi) of the normal density is off (a missing 2 pi?).")
    for c in (0.5 * math.log(2 * math.pi), math.log(2 * math.pi))
    for s in (1, -1)
]


def _ratio_mistake(a, b):
    with np.errstate(all="ignore"):
        for factor, key, msg in _FACTORS:
            if _close(a, factor * np.asarray(b)):
                return key, msg
        for shift, key, msg in _SHIFTS:
            if _close(np.asarray(a) - shift, b):
                return key, msg
        if _close(a, np.sqrt(np.abs(b))) and np.all(np.asarray(b) >= 0):
            return "sigma-for-sigma2", "you gave the square root of the answer (sigma instead of sigma^2?)."
        if _close(a, np.square(b)):
            return "sigma2-for-sigma", "you gave the square of the answer (sigma^2 instead of sigma?)."
    return None


# -- symbolic confirmation (cheap cases only) ----------------------------------------------
SYMBOLIC_MAX_NODES = 40
SYMBOLIC_MAX_DEGREE = 12
SYMBOLIC_MAX_TERMS = 400


def _expanded_size(tree) -> tuple[int, int]:
    """Upper bounds on (total degree, number of terms) of the tree multiplied out over a common
    denominator -- the work sympy's cancel does.  Nested powers multiply: ((a+b)^4)^4 has degree 16
    and up to 2^16 terms, however short its text.  Capped, so the bound itself stays cheap."""
    cap = 1 << 30
    kind = tree[0]
    if kind in ("num", "const"):
        return 0, 1
    if kind == "var":
        return 1, 1
    if kind == "neg":
        return _expanded_size(tree[1])
    (d1, t1), (d2, t2) = _expanded_size(tree[1]), _expanded_size(tree[2])
    if kind in "+-":
        return max(d1, d2), min(t1 + t2, cap)
    if kind in "*/":  # a/b over a common denominator costs like a*b
        return min(d1 + d2, cap), min(t1 * t2, cap)
    e = int(abs(tree[2][1])) if tree[2][0] == "num" else 1
    return min(d1 * e, cap), min(t1 ** min(e, 30), cap)


def _symbolic_ok(tree) -> bool:
    """Small, function-free, whole-number powers, and small once multiplied out: cancel is quick."""
    nodes = list(_nodes(tree))
    if len(nodes) > SYMBOLIC_MAX_NODES:
        return False
    for n in nodes:
        if n[0] == "call":
            return False
        if n[0] == "^" and not (n[2][0] == "num" and float(n[2][1]).is_integer() and abs(n[2][1]) <= 4):
            return False
    degree, terms = _expanded_size(tree)
    return degree <= SYMBOLIC_MAX_DEGREE and terms <= SYMBOLIC_MAX_TERMS


def _to_sympy(tree, symbols: dict):
    """A sympy expression built node by node from emsym's own tree (no text is parsed)."""
    from fractions import Fraction

    import sympy as sp

    kind = tree[0]
    if kind == "num":
        f = Fraction(tree[2])
        return sp.Rational(f.numerator, f.denominator)
    if kind == "var":
        return symbols.setdefault(tree[1], sp.Symbol(tree[1]))
    if kind == "const":
        return sp.pi if tree[1] == "pi" else sp.E
    if kind == "neg":
        return -_to_sympy(tree[1], symbols)
    a, b = _to_sympy(tree[1], symbols), _to_sympy(tree[2], symbols)
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b, "^": a**b}[kind]


def symbolically_equal(a, b) -> bool | None:
    """True/False when sympy's cancel decides a - b == 0 cheaply; None when it is not tried."""
    if not (_symbolic_ok(a) and _symbolic_ok(b) and _symbolic_ok(("-", a, b))):
        return None
    import sympy as sp

    symbols: dict = {}
    try:
        return sp.cancel(_to_sympy(a, symbols) - _to_sympy(b, symbols)) == 0
    except (ZeroDivisionError, ValueError, TypeError):  # pragma: no cover - e.g. 1/0 inside
        return None


# -- tolerances --------------------------------------------------------------------------
_WORDS = {
    "unit": 1,
    "units": 1,
    "integer": 1,
    "tenth": 0.1,
    "tenths": 0.1,
    "hundredth": 0.01,
    "hundredths": 0.01,
    "thousandth": 0.001,
    "thousandths": 0.001,
}


def _amount(text: str, spec) -> float:
    """A finite number >= 0 from tolerance text; a GraderError naming the tolerance otherwise."""
    try:
        value = float(text) if re.fullmatch(r"[0-9.eE+-]+", text, re.ASCII) else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise GraderError(
            f"tolerance should be a finite number >= 0 (e.g. 0.05, '1%', 'nearest tenth' or "
            f"'3 significant figures'), but got {spec!r}"
        )
    return value


def parse_tolerance(spec: str | float) -> tuple[str, float]:
    """('abs', a), ('rel', r) or ('sig', n) from 0.05, '1%', '1e-6', 'nearest tenth', '3 significant figures'.

    n significant figures allow half a unit in the n-th significant place of the expected value.
    Every amount must be finite and >= 0: '1e999', 'inf', 'nan', '-5%' and 'nearest -1' are refused.
    """
    if isinstance(spec, bool) or not isinstance(spec, (int, float, str)):
        raise GraderError(f"tolerance should be a number or text such as '1%', but got {spec!r}")
    if isinstance(spec, (int, float)):
        return ("abs", _amount(repr(float(spec)) if abs(spec) < 1e300 else "inf", spec))
    text = spec.strip().lower()
    if len(text) > 60:
        raise GraderError(f"tolerance should be short text such as '1%', but got {spec[:60]!r}...")
    m = re.fullmatch(r"(.*?)\s*%", text)
    if m:
        return ("rel", _amount(m.group(1), spec) / 100)
    m = re.fullmatch(r"(?:to the )?nearest\s+(\S+)", text)
    if m:
        unit = _WORDS.get(m.group(1))
        if unit is None:
            if not re.fullmatch(r"[0-9.eE+-]+", m.group(1), re.ASCII):
                raise GraderError(f"tolerance {spec!r}: nearest what? e.g. 'nearest tenth' or 'nearest 0.01'")
            unit = _amount(m.group(1), spec)
        return ("abs", unit / 2 + 1e-12)
    m = re.fullmatch(r"([0-9]+)\s*(?:sig(?:nificant)?\.?\s*(?:figs?|figures|digits)?|s\.?f\.?)", text, re.ASCII)
    if m:
        if not 1 <= int(m.group(1)) <= 17:
            raise GraderError(f"tolerance {spec!r}: significant figures should be 1 to 17")
        return ("sig", float(m.group(1)))
    return ("abs", _amount(text, spec))


# -- the grader --------------------------------------------------------------------------
class FormulaGrader:
    """Grades typed answers against one expected expression (see the module docstring).

    Parameters
    ----------
    expected : str
        The expected answer, in the same notation students type.
    where : list of str
        Side conditions "LHS = RHS", e.g. "gamma_11 + gamma_21 = 1".
    tolerance : str or float, optional
        For an expected number: absolute (0.05), relative ('1%'), 'nearest tenth' or
        '3 significant figures' (default 0.1% relative).  For a formula: a relative
        tolerance for the sampled comparison (default 1e-8).
    domains : dict, optional
        Override the guessed sampling domain of a name: 'positive', 'unit' or 'real'.
    seed : int
        Seed of the sample points (grading is deterministic).
    symbolic : bool
        Confirm a numerically equal answer with sympy's ``cancel`` where that is cheap
        (small, function-free expressions with small whole-number powers); the feedback then
        says "confirmed symbolically".  The verdict never depends on it.
    """

    def __init__(
        self,
        expected: str,
        where: Iterable[str] = (),
        tolerance: str | float | None = None,
        domains: dict | None = None,
        seed: int = 0,
        symbolic: bool = True,
    ) -> None:
        try:
            self.expected = parse(expected)
        except InvalidAnswer as exc:
            raise GraderError(f"the expected answer {expected!r} cannot be read: {exc}") from None
        self.conditions: list[tuple[str, Parsed, Parsed]] = []
        for cond in where:
            cond = cond.replace("==", "=")
            if cond.count("=") != 1:
                raise GraderError(f"side condition {cond!r} should have the form 'LHS = RHS'")
            left, right = cond.split("=")
            try:
                self.conditions.append((cond.strip(), parse(left), parse(right)))
            except InvalidAnswer as exc:
                raise GraderError(f"side condition {cond!r} cannot be read: {exc}") from None
        names = set(self.expected.names)
        for _, lhs, rhs in self.conditions:
            names |= lhs.names | rhs.names
        self.names = frozenset(names)
        self.numeric = not self.expected.names
        self.domains = {n: (domains or {}).get(n, domain_of(n)) for n in names}
        bad = {n: d for n, d in self.domains.items() if d not in ("positive", "unit", "real")}
        if bad:
            raise GraderError(f"domains should be positive, unit or real, but got {bad}")
        self.extra = {v for n in names for v in _hat_variants(n) if v not in names}
        self.swapped = {s: n for n in names for s in _index_swaps(n) if s not in names}
        self.parse_names = self.names | self.extra | set(self.swapped)
        self._draw_samples(seed)
        if not self.numeric and np.isfinite(self.value).mean() < 0.9:
            # log(x), sqrt(x - mu), ...: where the expected answer is undefined at many points,
            # sample the real-valued names that were not declared on positive values instead.
            declared = set(domains or {})
            self.domains = {
                n: ("positive" if d == "real" and n not in declared else d) for n, d in self.domains.items()
            }
            self._draw_samples(seed)
        if self.numeric:
            self.tolerance = parse_tolerance(tolerance if tolerance is not None else "0.1%")
            if not np.isfinite(self.value).all():
                raise GraderError(f"the expected answer {expected!r} is not a finite number")
        else:
            self.rtol = RTOL if tolerance is None else self._formula_rtol(tolerance)
            if np.isfinite(self.value).sum() < SAMPLES // 2:
                raise GraderError(f"the expected answer {expected!r} is undefined at most sample points")
        self._mistakes: list[tuple[str, str, np.ndarray]] | None = None
        self.symbolic = symbolic
        self._confirmed: dict[str, bool | None] = {}

    @staticmethod
    def _formula_rtol(tolerance) -> float:
        """For a formula a plain number (1e-6) or a percentage (0.01%) is a relative tolerance."""
        text = str(tolerance).strip().lower()
        kind, value = parse_tolerance(tolerance)
        if kind == "sig" or "nearest" in text:
            raise GraderError("for a formula the tolerance is relative, e.g. '1e-6' or '0.01%'")
        return value

    # -- sampling ------------------------------------------------------------------------
    def _draw_samples(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.env_free = self._sample(rng, conditions=False)
        self.env = self._sample(rng, conditions=bool(self.conditions))
        with np.errstate(all="ignore"):
            self.value = np.asarray(evaluate(self.expected.tree, self.env), dtype=float)
            self.value_free = np.asarray(evaluate(self.expected.tree, self.env_free), dtype=float)

    def _draw(self, rng, name, size):
        d = self.domains.get(name, self.domains.get(_hat_twin(name), domain_of(name)))
        if d == "positive":
            return rng.uniform(0.5, 3.0, size)
        if d == "unit":
            return rng.uniform(0.05, 0.95, size)
        return rng.uniform(-3.0, 3.0, size)

    def _sample(self, rng, conditions: bool) -> dict:
        all_names = sorted(
            self.names
            | {v for n in self.names for v in _hat_variants(n)}
            | {s for n in self.names for s in _index_swaps(n)}
        )
        if not conditions:
            return {n: self._draw(rng, n, SAMPLES) for n in all_names}
        pool = SAMPLES * 8
        env = {n: self._draw(rng, n, pool) for n in all_names}
        keep = np.ones(pool, dtype=bool)
        solved: set[str] = set()
        for text, lhs, rhs in self.conditions:
            f = ("-", lhs.tree, rhs.tree)
            target = self._linear_name(f, env, solved, text)
            solved.add(target)
            with np.errstate(all="ignore"):
                f0 = evaluate(f, {**env, target: 0.0})
                f1 = evaluate(f, {**env, target: 1.0})
                env[target] = np.broadcast_to(-f0 / (f1 - f0), (pool,)).astype(float)
            d = self.domains.get(target, "real")
            v = env[target]
            ok = np.isfinite(v)
            if d == "positive":
                ok &= v > 0
            elif d == "unit":
                ok &= (v > 0) & (v < 1)
            keep &= ok
        idx = np.flatnonzero(keep)
        if len(idx) < SAMPLES:
            raise GraderError("the side conditions leave too few valid sample points; check them")
        return {n: v[idx[:SAMPLES]] for n, v in env.items()}

    def _linear_name(self, f, env, solved, text) -> str:
        names = sorted(_names_in(f) - solved, reverse=True)
        with np.errstate(all="ignore"):
            for n in names:
                vals = [np.asarray(evaluate(f, {**env, n: float(t)}), dtype=float) for t in (0, 1, 2, 5)]
                slope = vals[1] - vals[0]
                if np.all(np.abs(slope) > 1e-9) and all(
                    np.allclose(vals[i], vals[0] + t * slope, rtol=1e-9, atol=1e-9) for i, t in ((2, 2), (3, 5))
                ):
                    return n
        raise GraderError(f"side condition {text!r} should be linear in one of its names (emsym samples on it)")

    # -- grading -------------------------------------------------------------------------
    def grade(self, answer: str) -> Verdict:
        """Grade one typed answer; never raises for anything a student types."""
        try:
            return self._grade(answer)
        except RecursionError:
            return Verdict("invalid", 0.0, "Could not read the answer: it is nested too deeply.")
        except (ArithmeticError, ValueError, TypeError, MemoryError):  # defensive: a verdict, never a crash
            return Verdict("invalid", 0.0, "Could not read the answer: it cannot be evaluated.")

    def _grade(self, answer) -> Verdict:
        start = time.perf_counter()
        try:
            parsed = parse(answer if isinstance(answer, str) else str(answer), names=self.parse_names)
        except InvalidAnswer as exc:
            return Verdict("invalid", 0.0, f"Could not read the answer: {exc}")
        reading = f" (read as {parsed.text})" if parsed.implicit else ""
        if self.numeric:
            return self._grade_number(parsed, reading)
        unknown = sorted(parsed.names - self.parse_names)
        if unknown:
            return Verdict("invalid", 0.0, self._unknown_message(unknown), parsed.text)
        swapped = sorted(n for n in parsed.names if n in self.swapped)
        if swapped:
            fix = ", ".join(f"{s} -> {self.swapped[s]}" for s in swapped)
            return Verdict(
                "incorrect", 0.0, f"Incorrect: the indices are swapped ({fix}).", parsed.text, "indices-swapped"
            )
        with np.errstate(all="ignore"):
            value = evaluate(parsed.tree, self.env)
            if _close(value, self.value, self.rtol):
                if self.conditions and not _close(evaluate(parsed.tree, self.env_free), self.value_free, self.rtol):
                    conds = "; ".join(c[0] for c in self.conditions)
                    return Verdict(
                        "correct",
                        1.0,
                        f"Correct{reading}, using the side condition ({conds}); "
                        "it is not equal to the expected answer without it.",
                        parsed.text,
                    )
                confirmed = self._confirm(parsed)
                return Verdict("correct", 1.0, f"Correct{reading}{confirmed}.", parsed.text)
            if time.perf_counter() - start > TIME_LIMIT:
                return Verdict("incorrect", 0.0, f"Incorrect{reading}.", parsed.text)
            found = self._diagnose(value, parsed)
        if found:
            key, msg = found
            return Verdict("incorrect", 0.0, f"Incorrect{reading}: {msg}", parsed.text, key)
        return Verdict("incorrect", 0.0, f"Incorrect{reading}: not equivalent to the expected answer.", parsed.text)

    def _confirm(self, parsed: Parsed) -> str:
        """' (confirmed symbolically)' when sympy's cancel agrees cheaply; memoised per reading."""
        if not self.symbolic:
            return ""
        if parsed.text not in self._confirmed:
            if len(self._confirmed) > 10_000:
                self._confirmed.clear()
            self._confirmed[parsed.text] = symbolically_equal(parsed.tree, self.expected.tree)
        ok = self._confirmed[parsed.text]
        return " (confirmed symbolically)" if ok else ""

    def _diagnose(self, value, parsed: Parsed):
        if self._mistakes is None:
            self._mistakes = []
            with np.errstate(all="ignore"):
                for key, msg, tree in _mistakes(self.expected.tree):
                    v = np.asarray(evaluate(tree, self.env), dtype=float)
                    if not _close(v, self.value, self.rtol):  # a rewrite that changes nothing is no mistake
                        self._mistakes.append((key, msg, v))
        uses_old = any(n in self.extra for n in parsed.names)
        for key, msg, v in self._mistakes:
            if _close(value, v, self.rtol):
                return key, msg
        if uses_old:
            old = sorted(n for n in parsed.names if n in self.extra)
            return "stale-mean", (
                f"{', '.join(old)} is not one of this question's names here; did you mean "
                f"{', '.join(_hat_variants(o)[0] for o in old)}?"
            )
        return _ratio_mistake(value, self.value)

    def _unknown_message(self, unknown) -> str:
        parts = []
        for n in unknown:
            close = difflib.get_close_matches(n, sorted(self.names), n=1, cutoff=0.5)
            parts.append(f"unknown name {n!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        allowed = ", ".join(sorted(self.names))
        return f"Could not read the answer: {'; '.join(parts)}. The names you can use are: {allowed}."

    def number(self, answer: str) -> float | None:
        """The value of a typed number (an expression without names), or None if it is not one."""
        try:
            parsed = parse(str(answer))
        except InvalidAnswer:
            return None
        if parsed.names:
            return None
        with np.errstate(all="ignore"):
            value = float(np.asarray(evaluate(parsed.tree, {})).reshape(-1)[0])
        return value if math.isfinite(value) else None

    def _allowed(self, want: float) -> float:
        """The half-width of the accepted band around ``want`` under this grader's tolerance."""
        kind, tol = self.tolerance
        if kind == "sig":
            return 0.5 * 10 ** (math.floor(math.log10(abs(want))) - int(tol) + 1) if want else 0.0
        return tol if kind == "abs" else tol * abs(want)

    def within(self, got: float, want: float) -> bool:
        """Whether got matches want under this grader's numeric tolerance."""
        return abs(got - want) <= self._allowed(want) + 1e-12 * max(1.0, abs(want))

    def _grade_number(self, parsed: Parsed, reading: str) -> Verdict:
        if parsed.names:
            return Verdict(
                "invalid",
                0.0,
                "Could not read the answer: a number is expected, but the answer has "
                f"the name(s) {', '.join(sorted(parsed.names))}.",
                parsed.text,
            )
        with np.errstate(all="ignore"):
            got = float(np.asarray(evaluate(parsed.tree, {})).reshape(-1)[0])
        want = float(self.value.reshape(-1)[0])
        if not math.isfinite(got):
            return Verdict("invalid", 0.0, "Could not read the answer: it is not a finite number.", parsed.text)
        allowed = self._allowed(want)
        if self.within(got, want):
            return Verdict("correct", 1.0, f"Correct{reading}.", parsed.text)
        for factor, key, msg in _FACTORS:
            if abs(got - factor * want) <= allowed * max(1, abs(factor)) + 1e-12:
                return Verdict("incorrect", 0.0, f"Incorrect{reading}: {msg}", parsed.text, key)
        if want > 0 and abs(got - math.sqrt(want)) <= max(allowed, 1e-9):
            return Verdict(
                "incorrect",
                0.0,
                f"Incorrect{reading}: that is the square root of the answer (sigma instead of sigma^2?).",
                parsed.text,
                "sigma-for-sigma2",
            )
        if abs(got - want * want) <= max(allowed, 1e-9) * max(1, abs(want)):
            return Verdict(
                "incorrect",
                0.0,
                f"Incorrect{reading}: that is the square of the answer (sigma^2 instead of sigma?).",
                parsed.text,
                "sigma2-for-sigma",
            )
        return Verdict("incorrect", 0.0, f"Incorrect{reading}.", parsed.text)
