"""Grading typed answers: equivalence by sampling, side conditions, named mistakes.

A ``FormulaGrader`` is built once per question (the expected answer is parsed and sampled
once) and then grades any number of answers cheaply.  Equivalence is numeric: both sides are
evaluated at the same random points (``grading/space.py``: each name on its domain, on several
scales; indices instantiated at several sizes in a general question) and must agree to a
relative tolerance of 1e-8 at every point, settled in high precision or at other points where
sampling could mislead (``grading/equivalence.py``).  Side conditions (``gamma_11 + gamma_21 =
1``, or ``N_k = sum_n gamma_nk`` in a general question) are honoured by sampling on them; an
answer that matches only on the side conditions is correct, and the feedback says so.

When an answer is wrong, the grader evaluates the answers mistakes produce -- the derivation
re-done with a slip at a named step (``emsym.mistakes``, given by exercise parts), then rewrites
of the expected answer (``_mistakes``) -- and names the one that matches.

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
from .equivalence import RTOL, SAMPLES, TIME_LIMIT, Equivalence, _close, _names_in, _nodes
from .parser import InvalidAnswer, Parsed, parse, to_text
from .space import (
    DEFAULT_INDICES,
    RESPONSIBILITY_BASES,
    WEIGHT_BASES,
    IndexedSpace,
    ScalarNames,
    ScalarSpace,
    SpaceError,
    base_of,
    domain_of,
    draw,
    evaluate,
    free_letters,
    index_kinds,
    nesting,
)

__all__ = ["FormulaGrader", "GraderError", "Mistake", "Verdict", "parse_tolerance"]


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
_base = base_of


def _hat_variants(name: str) -> list[str]:
    return [name[3:]] if name.startswith("hat") and len(name) > 3 else ["hat" + name]


def _hat_twin(name: str) -> str:
    return _hat_variants(name)[0]


def _index_swaps(name: str) -> list[str]:
    if "_" not in name:
        return []
    base, sub = name.split("_", 1)
    return [f"{base}_{sub[::-1]}"] if len(sub) == 2 and sub[0] != sub[1] else []


# -- tree rewrites for misconceptions ----------------------------------------------------
def _replace(tree, fn):
    """Top-down rewrite of the original nodes: fn(node) returns a replacement or None."""
    out = fn(tree)
    if out is not None:
        return out
    kind = tree[0]
    if kind in ("+", "-", "*", "/", "^", "="):
        return (kind, _replace(tree[1], fn), _replace(tree[2], fn))
    if kind == "neg":
        return (kind, _replace(tree[1], fn))
    if kind == "call":
        return (kind, tree[1], _replace(tree[2], fn))
    if kind == "big":
        return (*tree[:5], _replace(tree[5], fn))
    return tree


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
    if expected[0] == "=":
        return out
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


def _read_conditions(where: Iterable[str]) -> list[tuple[str, Parsed, Parsed]]:
    """Side conditions "LHS = RHS" parsed (an author's text: a GraderError names the bad one)."""
    out = []
    for cond in where:
        cond = cond.replace("==", "=")
        if cond.count("=") != 1:
            raise GraderError(f"side condition {cond!r} should have the form 'LHS = RHS'")
        left, right = cond.split("=")
        try:
            out.append((cond.strip(), parse(left), parse(right)))
        except InvalidAnswer as exc:
            raise GraderError(f"side condition {cond!r} cannot be read: {exc}") from None
    return out


def _general(names) -> bool:
    """An expected answer about a generic component, with sizes: N_k/N (no point written out)."""
    sizes = {"N", "K"}
    if not names & sizes:
        return False
    rest = [n for n in names if n not in sizes]
    return all("_" in n and all(c in DEFAULT_INDICES for c in n.split("_", 1)[1]) for n in rest) and bool(rest)


# -- the grader --------------------------------------------------------------------------
class _Names:
    """The names an indexed question accepts: its own, any index renaming, and the hat twins."""

    def __init__(self, space: IndexedSpace, listed: frozenset, extra: set):
        self.space, self.listed, self.extra = space, listed, extra

    def __contains__(self, name) -> bool:
        return name in self.listed or name in self.extra or self.space.knows(name)

    def __iter__(self):
        return iter(sorted(self.listed))


@dataclass(frozen=True)
class Mistake:
    """A wrong answer to recognise: its key, the feedback, and the expected text it produces.

    ``step`` and ``correct``/``wrong`` (optional) name the derivation step where the mistake
    happens and show that step done right and done wrong, in the sheet's notation.
    """

    key: str
    message: str
    answer: str
    step: str | None = None
    correct: str | None = None
    wrong: str | None = None

    def feedback(self) -> str:
        out = self.message.rstrip(".") + "."
        if self.step:
            out += f" This happens at the step '{self.step}'"
            if self.correct and self.wrong:
                out += f": the correct step is {self.correct}; your answer follows from {self.wrong}"
            out += "."
        return out


class FormulaGrader(Equivalence):
    """Grades typed answers against one expected expression or equation (see the module docstring).

    Parameters
    ----------
    expected : str
        The expected answer, in the same notation students type.  It may use sums over indices
        (``sum_n gamma_nk*x_n/N_k``): the question is then *indexed* and the indices are
        instantiated at several sizes (see ``emsym.grading.space``).  With an ``=`` it is an
        equation (``sum_n gamma_nk*(x_n - mu_k)/sigma2_k = 0``): answers must be equations, and
        any non-zero constant multiple of the expected lhs - rhs is correct.
    where : list of str
        Side conditions "LHS = RHS", e.g. "gamma_11 + gamma_21 = 1", or in an indexed question a
        definition "N_k = sum_n gamma_nk" or a normalisation "sum_k gamma_nk = 1".
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
    indices : dict, optional
        Index letter -> size name (default n, i, m over N points and k, j, l over K components);
        giving it makes the question indexed even without a sum.
    unknowns : list of str, optional
        For an equation: the names it is solved for.  A multiple of the expected condition by a
        factor that never vanishes and does not involve them is then also correct
        (``sum_n gamma_nk (x_n - mu_k) = 0`` for ``.../sigma2_k = 0``, unknown mu_k).
    mistakes : list of Mistake, or a callable returning one, optional
        Further wrong answers to name (emsym's re-derived mistakes); evaluated on first need.
    targets : list of str, optional
        The name the answer is the value of (``mu_k``): ``mu_k = ...``, ``hatmu_k = ...`` (and for
        ``sigma2_k``, ``sigma_k^2 = ...``) is then read as its right-hand side.
    """

    space: Any  # ScalarSpace or IndexedSpace: the sample points answers are compared at
    space_free: Any  # the same, without the side conditions
    parse_names: Any  # the names answers may use (a set, or _Names in an indexed question)
    space_orig: Any = None  # scalar questions: the names' first domains, when they were changed

    def __init__(
        self,
        expected: str,
        where: Iterable[str] = (),
        tolerance: str | float | None = None,
        domains: dict | None = None,
        seed: int = 0,
        symbolic: bool = True,
        indices: dict | None = None,
        unknowns: Iterable[str] = (),
        mistakes=None,
        targets: Iterable[str] = (),
    ) -> None:
        try:
            self.expected = parse(expected, equation=True)
        except InvalidAnswer as exc:
            raise GraderError(f"the expected answer {expected!r} cannot be read: {exc}") from None
        self.equation = self.expected.tree[0] == "="
        self.conditions = _read_conditions(where)
        names = set(self.expected.names)
        for _, lhs, rhs in self.conditions:
            names |= lhs.names | rhs.names
        self.names = frozenset(names)
        self.numeric = not self.expected.names and not self.equation
        self.declared_domains = dict(domains or {})
        self.unknowns = tuple(unknowns)
        self.targets = frozenset(targets)
        self.seed = seed
        self.indexed = (
            indices is not None
            or nesting(self.expected.tree) > 0
            or any(nesting(c[1].tree) or nesting(c[2].tree) for c in self.conditions)
            or _general(self.expected.names)
        )
        self.domains = {n: self.declared_domains.get(n, domain_of(n)) for n in names}
        bad = {n: d for n, d in self.declared_domains.items() if d not in ("positive", "unit", "real")}
        if bad:
            raise GraderError(f"domains should be positive, unit or real, but got {bad}")
        if self.indexed:
            self._setup_indexed(dict(indices or DEFAULT_INDICES))
        else:
            self._setup_scalar()
        if self.numeric:
            self.tolerance = parse_tolerance(tolerance if tolerance is not None else "0.1%")
            if not np.isfinite(self.value).all():
                raise GraderError(f"the expected answer {expected!r} is not a finite number")
        else:
            self.rtol = RTOL if tolerance is None else self._formula_rtol(tolerance)
            if np.isfinite(self.value).sum() < self.value.size // 2:
                raise GraderError(f"the expected answer {expected!r} is undefined at most sample points")
        self._extra_mistakes = mistakes
        self._mistakes: list[tuple[str, str, np.ndarray]] | None = None
        self.symbolic = symbolic and not self.indexed and not self.equation
        self._confirmed: dict[str, bool | None] = {}

    @staticmethod
    def _formula_rtol(tolerance) -> float:
        """For a formula a plain number (1e-6) or a percentage (0.01%) is a relative tolerance."""
        text = str(tolerance).strip().lower()
        kind, value = parse_tolerance(tolerance)
        if kind == "sig" or "nearest" in text:
            raise GraderError("for a formula the tolerance is relative, e.g. '1e-6' or '0.01%'")
        return value

    # -- sampling: scalar questions --------------------------------------------------------
    def _setup_scalar(self) -> None:
        names = set(self.names)
        self.extra = {v for n in names for v in _hat_variants(n) if v not in names}
        self.swapped = {s: n for n in names for s in _index_swaps(n) if s not in names}
        # sigma_1^2 is how sigma2_1 is written in LaTeX: sigma_1 is its square root
        self.aliases = {
            n.replace("sigma2", "sigma", 1): n
            for n in names | self.extra
            if base_of(n) == "sigma2" and n.replace("sigma2", "sigma", 1) not in names
        }
        self.parse_names = ScalarNames(self.names | self.extra | set(self.swapped) | set(self.aliases))
        self._draw_samples(self.seed)
        self.space_orig = None
        if not self.numeric and np.isfinite(self.value).mean() < 0.9:
            self.space_orig = self.space
            # log(x), sqrt(x - mu), ...: where the expected answer is undefined at many points,
            # sample the real-valued names that were not declared on positive values instead.
            self.domains = {
                n: ("positive" if d == "real" and n not in self.declared_domains else d)
                for n, d in self.domains.items()
            }
            self._draw_samples(self.seed)

    def _draw_samples(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.space_free = ScalarSpace(self._sample(rng, conditions=False), SAMPLES)
        self.space = ScalarSpace(self._sample(rng, conditions=bool(self.conditions)), SAMPLES)
        self.env = self.space.env
        self.value = self.space.values(self.expected.tree)
        self.value_free = self.space_free.values(self.expected.tree)

    def _draw(self, rng, name, size, wide=None):
        d = self.domains.get(name, self.domains.get(_hat_twin(name), domain_of(name)))
        return draw(rng, d, size, wide)

    def _sample(self, rng, conditions: bool, wide=None) -> dict:
        all_names = sorted(
            self.names
            | {v for n in self.names for v in _hat_variants(n)}
            | {s for n in self.names for s in _index_swaps(n)}
        )
        if not conditions:
            return self._with_aliases({n: self._draw(rng, n, SAMPLES, wide) for n in all_names})
        pool = SAMPLES * 8
        env = {n: self._draw(rng, n, pool, wide) for n in all_names}
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
        return self._with_aliases({n: v[idx[:SAMPLES]] for n, v in env.items()})

    def _with_aliases(self, env: dict) -> dict:
        for sd, var in getattr(self, "aliases", {}).items():
            if var in env:
                env[sd] = np.sqrt(env[var])
        return env

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

    # -- sampling: indexed questions ---------------------------------------------------------
    def _setup_indexed(self, indices: dict) -> None:
        for letter, size in indices.items():
            if not (len(letter) == 1 and letter.isalpha() and str(size).isidentifier()):
                raise GraderError(f"indices: {letter!r}: {size!r} should be one letter and a size name such as N")
        trees = [self.expected.tree] + [t for _, lhs, rhs in self.conditions for t in (lhs.tree, rhs.tree)]
        kinds, opaque = index_kinds(trees, indices)
        if kinds.get("N") == ("K",) and not any(
            b in RESPONSIBILITY_BASES and len(a) == 2 for b, a in kinds.items()
        ):  # N_k is the column sum of the responsibilities: students may write it out
            kinds["gamma"] = ("N", "K")
        if "N" not in kinds and any(b in RESPONSIBILITY_BASES and a == ("N", "K") for b, a in kinds.items()):
            kinds["N"] = ("K",)  # and may write N_k for it
        aliases = []
        for base in [b for b in kinds if base_of(b) == "sigma2" and b.replace("sigma2", "sigma", 1) not in kinds]:
            # sigma_k^2 is how sigma2_k is written in LaTeX: sigma_k is its square root
            sd = base.replace("sigma2", "sigma", 1)
            letters = [next(c for c, size in indices.items() if size == a) for a in kinds[base]]
            kinds[sd] = kinds[base]
            sub = "".join(letters)
            aliases.append((sd, letters, ("call", "sqrt", ("var", f"{base}_{sub}"))))
        for base in list(kinds):  # hat twins: hatmu_k for mu_k and back (the old and the new mean)
            twin = base[3:] if base.startswith("hat") else "hat" + base
            kinds.setdefault(twin, kinds[base])
        free = tuple(free_letters(self.expected.tree, indices))
        sizes = set(indices.values())
        hats = {v for n in opaque | (sizes & self.names) for v in _hat_variants(n)} - opaque - sizes
        opaque = opaque | hats
        domains = {b: self.declared_domains.get(b, domain_of(b)) for b in kinds}
        domains.update(
            {n: self.declared_domains.get(n, self.declared_domains.get(_hat_twin(n), domain_of(n))) for n in opaque}
        )
        for name, d in self.declared_domains.items():
            if "_" in name and name.split("_", 1)[0] in kinds:
                domains[name.split("_", 1)[0]] = d
        space = IndexedSpace(kinds, domains, indices, free, opaque=opaque)
        self.definitions, self.normalisations, self.default_conditions = self._indexed_conditions(space)
        self.definitions = aliases + self.definitions
        rng = np.random.default_rng(self.seed)
        space.configs = space.sample(rng, self.definitions, self.normalisations, conditioned=True)
        free_space = IndexedSpace(kinds, domains, indices, free, opaque=opaque)
        free_space.configs = free_space.sample(rng, aliases, [], conditioned=True)
        self.space, self.space_free = space, free_space
        self.extra = hats
        self.swapped = {}
        self.parse_names = _Names(space, self.names, hats)
        with np.errstate(all="ignore"):
            try:
                space.check(self.expected.tree)
            except SpaceError as exc:
                raise GraderError(f"the expected answer {self.expected.text!r}: {exc}") from None
            self.value = space.values(self.expected.tree)
            self.value_free = free_space.values(self.expected.tree)

    def _indexed_conditions(self, space: IndexedSpace):
        """Definitions (N_k = sum_n gamma_nk) and normalisations (sum_k gamma_nk = 1), declared or default."""
        definitions, normalisations, said = [], [], []
        for text, lhs, rhs in self.conditions:
            lt, rt = lhs.tree, rhs.tree
            ref = space.ref(lt[1]) if lt[0] == "var" else None
            if ref is not None and all(isinstance(p, str) for p in ref.positions):
                definitions.append((ref.base, list(ref.positions), rt))
                continue
            if lt[0] == "big" and lt[1] == "sum" and lt[5][0] == "var" and rt[0] == "num":
                inner = space.ref(lt[5][1])
                if inner is not None and lt[2] in inner.positions:
                    normalisations.append((inner.base, inner.positions.index(lt[2]), rt[1]))
                    continue
            raise GraderError(
                f"side condition {text!r}: in a general (indexed) question a condition is a definition "
                "(N_k = sum_n gamma_nk) or a normalisation (sum_k gamma_nk = 1)"
            )
        defined = {d[0] for d in definitions} | {n[0] for n in normalisations}
        comp = [s for s in ("K",) if s in space.indices.values()]
        points = [s for s in ("N",) if s in space.indices.values()]
        resp = None
        for base, axes in space.kinds.items():
            b = base[3:] if base.startswith("hat") else base
            if b in RESPONSIBILITY_BASES and sorted(axes) == sorted(points + comp) and len(axes) == 2:
                resp = resp or base
                if base not in defined:
                    normalisations.append((base, axes.index("K"), 1.0))
                    said.append(f"sum_k {base}_{'nk' if axes[0] == 'N' else 'kn'} = 1")
            elif b in WEIGHT_BASES and axes == ("K",) and base not in defined:
                normalisations.append((base, 0, 1.0))
                said.append(f"sum_k {base}_k = 1")
        if "N" in space.kinds and space.kinds["N"] == ("K",) and "N" not in defined and resp is not None:
            axes = space.kinds[resp]
            body = ("var", f"{resp}_{'nk' if axes[0] == 'N' else 'kn'}")
            definitions.append(("N", ["k"], ("big", "sum", "n", None, None, body)))
            said.append(f"N_k = sum_n {body[1]}")
        return definitions, normalisations, said

    # -- grading -------------------------------------------------------------------------
    def grade(self, answer: str) -> Verdict:
        """Grade one typed answer; never raises for anything a student types."""
        try:
            return self._grade(answer)
        except RecursionError:
            return Verdict("invalid", 0.0, "Could not read the answer: it is nested too deeply.")
        except (ArithmeticError, ValueError, TypeError, MemoryError, IndexError):  # a verdict, never a crash
            return Verdict("invalid", 0.0, "Could not read the answer: it cannot be evaluated.")

    def _is_target(self, lhs) -> bool:
        """Whether the left of an answer's '=' names the asked quantity (or its hat, or sigma_k^2)."""
        if lhs[0] == "var":
            return lhs[1] in self.targets or any(v in self.targets for v in _hat_variants(lhs[1]))
        if lhs[0] == "^" and lhs[1][0] == "var" and lhs[2][0] == "num" and lhs[2][1] == 2:
            name = lhs[1][1].replace("sigma", "sigma2", 1) if base_of(lhs[1][1]) == "sigma" else None
            return name is not None and (name in self.targets or any(v in self.targets for v in _hat_variants(name)))
        return False

    def read(self, answer: str) -> Parsed:
        """Parse an answer in this question's names (raises InvalidAnswer)."""
        return parse(answer if isinstance(answer, str) else str(answer), names=self.parse_names, equation=True)

    def answer_values(self, parsed: Parsed, free: bool = False) -> np.ndarray:
        """The values of a parsed answer at this grader's sample points (raises SpaceError)."""
        space = self.space_free if free else self.space
        return space.values(space.prepare(parsed.tree))

    def _grade(self, answer) -> Verdict:
        start = time.perf_counter()
        try:
            parsed = self.read(answer)
        except InvalidAnswer as exc:
            return Verdict("invalid", 0.0, f"Could not read the answer: {exc}")
        if parsed.tree[0] == "=" and not self.equation and self._is_target(parsed.tree[1]):
            rhs = parsed.tree[2]  # "mu_k = ...": the value of the asked quantity
            parsed = Parsed(rhs, to_text(rhs), frozenset(_names_in(rhs)), parsed.implicit)
        reading = f" (read as {parsed.text})" if parsed.implicit or self.indexed or "\\" in str(answer) else ""
        is_eq = parsed.tree[0] == "="
        if self.numeric and not is_eq:
            return self._grade_number(parsed, reading)
        if is_eq != self.equation:
            msg = (
                "an equation is expected here, e.g. '... = 0'"
                if self.equation
                else "type only the expression, without '=' (e.g. not 'mu_k = ...')"
            )
            return Verdict("invalid", 0.0, f"Could not read the answer: {msg}.", parsed.text)
        unknown = sorted(n for n in parsed.names if n not in self.parse_names)
        if unknown:
            return Verdict("invalid", 0.0, self._unknown_message(unknown), parsed.text)
        swapped = sorted(n for n in parsed.names if n in self.swapped)
        if swapped:
            fix = ", ".join(f"{s} -> {self.swapped[s]}" for s in swapped)
            return Verdict(
                "incorrect", 0.0, f"Incorrect: the indices are swapped ({fix}).", parsed.text, "indices-swapped"
            )
        try:
            if self.indexed:
                self.space.check(parsed.tree)
            value = self.answer_values(parsed)
        except SpaceError as exc:
            return Verdict("invalid", 0.0, f"Could not read the answer: {exc}.", parsed.text)
        with np.errstate(all="ignore"):
            same, how = self._same(parsed, value, self.value, self.expected.tree, start)
            if same:
                if self.conditions:
                    free_value = self.answer_values(parsed, free=True)
                    if not self._same(parsed, free_value, self.value_free, self.expected.tree, start, free=True)[0]:
                        conds = "; ".join(c[0] for c in self.conditions)
                        return Verdict(
                            "correct",
                            1.0,
                            f"Correct{reading}{how}, using the side condition ({conds}); "
                            "it is not equal to the expected answer without it.",
                            parsed.text,
                        )
                confirmed = self._confirm(parsed)
                return Verdict("correct", 1.0, f"Correct{reading}{how}{confirmed}.", parsed.text)
            if time.perf_counter() - start > TIME_LIMIT:
                return Verdict("incorrect", 0.0, f"Incorrect{reading}.", parsed.text)
            found = self._diagnose(value, parsed)
        if found:
            key, msg = found
            return Verdict("incorrect", 0.0, f"Incorrect{reading}: {msg}", parsed.text, key)
        what = "the expected condition" if self.equation else "the expected answer"
        return Verdict("incorrect", 0.0, f"Incorrect{reading}: not equivalent to {what}.", parsed.text)

    def _confirm(self, parsed: Parsed) -> str:
        """' (confirmed symbolically)' when sympy's cancel agrees cheaply; memoised per reading."""
        if not self.symbolic or nesting(parsed.tree):
            return ""
        if parsed.text not in self._confirmed:
            if len(self._confirmed) > 10_000:
                self._confirmed.clear()
            self._confirmed[parsed.text] = symbolically_equal(parsed.tree, self.expected.tree)
        ok = self._confirmed[parsed.text]
        return " (confirmed symbolically)" if ok else ""

    def _mistake_values(self) -> list:
        if self._mistakes is not None:
            return self._mistakes
        self._mistakes = []
        with np.errstate(all="ignore"):
            extra = self._extra_mistakes() if callable(self._extra_mistakes) else (self._extra_mistakes or [])
            for m in extra:  # re-derived mistakes first: they name the step
                try:
                    tree = parse(m.answer, equation=self.equation).tree
                    if self.indexed:
                        self.space.check(tree)
                    v = self.space.values(self.space.prepare(tree))
                except (InvalidAnswer, SpaceError, GraderError, KeyError):
                    continue  # a mistake in names this question does not sample
                if not self._matches(v, self.value) and np.isfinite(v).mean() > 0.5:
                    self._mistakes.append((m.key, m.feedback(), v))
            for key, msg, tree in _mistakes(self.expected.tree):
                try:
                    v = self.space.values(self.space.prepare(tree))
                except SpaceError:
                    continue
                if not self._matches(v, self.value):  # a rewrite that changes nothing is no mistake
                    self._mistakes.append((key, msg, v))
        return self._mistakes

    def _diagnose(self, value, parsed: Parsed):
        uses_old = any(n in self.extra for n in parsed.names)
        for key, msg, v in self._mistake_values():
            if self._matches(value, v):
                return key, msg
        if uses_old:
            old = sorted(n for n in parsed.names if n in self.extra)
            return "stale-mean", (
                f"{', '.join(old)} is not one of this question's names here; did you mean "
                f"{', '.join(_hat_variants(o)[0] for o in old)}?"
            )
        if self.equation:
            return None
        return _ratio_mistake(value, self.value)

    def _unknown_message(self, unknown) -> str:
        parts = []
        for n in unknown:
            if self.indexed and "_" in n and n.split("_", 1)[0] in self.space.kinds:
                base = n.split("_", 1)[0]
                axes = self.space.kinds[base]
                kinds = " and ".join(
                    "a point index (" + ", ".join(c for c, s in self.space.indices.items() if s == a) + ")"
                    if a == "N"
                    else "a component index (" + ", ".join(c for c, s in self.space.indices.items() if s == a) + ")"
                    if a == "K"
                    else f"an index over 1..{a}"
                    for a in axes
                )
                parts.append(f"{n}: {base} takes {kinds}")
                continue
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
        if parsed.names or nesting(parsed.tree):
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
        if nesting(parsed.tree):
            try:
                parsed = Parsed(self.space.prepare(parsed.tree), parsed.text, parsed.names, parsed.implicit)
            except SpaceError as exc:
                return Verdict("invalid", 0.0, f"Could not read the answer: {exc}.", parsed.text)
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
