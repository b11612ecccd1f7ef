"""A family from a density the author writes in the model file.

::

    family:
      density: "x/s * exp(-x^2/(2 s))"      # the density of one point, in x and the parameters
      parameters: {s: positive}             # each: real, positive or unit (a probability)
      support: positive                     # real (default), positive, nonnegative, count, binary
      name: Rayleigh                        # optional, for the formulas

The formula is read by emsym's own whitelisted parser (``emsym.grading.parser``: numbers, the
names x and the declared parameters, + - * / ^, exp, log, sqrt, abs) -- never by sympify or
eval -- and the tree is turned into sympy node by node.  The family engine then derives it like a
shipped family: closed-form updates where sympy solves the stationarity condition, otherwise
the documented numeric M-step.

Checked when the file is read: every name is x or a declared parameter; the density is finite
and >= 0 on its support and integrates (sums, for counts) to 1 within 1e-3 at two test values
of the parameters -- a formula that is not a density is refused with the value it integrates to.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import sympy as sp

from ..exceptions import InvalidAnswer, SpecError
from ..grading.parser import CONSTANTS, parse
from ..options import short, suggest
from ..seeding import quantile_groups
from .base import DOMAINS, SUPPORTS, Family, Parameter

__all__ = ["family_from_density"]

_KEYS = ("density", "parameters", "support", "name")
_TEST_VALUES = {"positive": (0.7, 2.5), "unit": (0.3, 0.65), "real": (-0.4, 1.2)}
_NP = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}
_SP: dict[str, Callable] = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs}


def _to_sympy(tree: tuple, names: dict[str, sp.Expr]) -> sp.Expr:
    kind = tree[0]
    if kind == "num":
        return sp.Rational(tree[2]) if "e" not in tree[2].lower() else sp.Float(tree[1])
    if kind == "var":
        return names[tree[1]]
    if kind == "const":
        return sp.pi if tree[1] == "pi" else sp.E
    if kind == "neg":
        return -_to_sympy(tree[1], names)
    if kind == "call":
        return _SP[tree[1]](_to_sympy(tree[2], names))
    a, b = _to_sympy(tree[1], names), _to_sympy(tree[2], names)
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b, "^": a**b}[kind]


def _evaluate(tree: tuple, env: dict) -> np.ndarray:
    kind = tree[0]
    if kind == "num":
        return np.float64(tree[1])
    if kind == "var":
        return env[tree[1]]
    if kind == "const":
        return np.float64(CONSTANTS[tree[1]])
    if kind == "neg":
        return -_evaluate(tree[1], env)
    if kind == "call":
        return _NP[tree[1]](_evaluate(tree[2], env))
    a, b = _evaluate(tree[1], env), _evaluate(tree[2], env)
    return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}[kind](a, b)


class _Grid:
    """Points of a support and their quadrature weights (a sum for counts and 0/1)."""

    def __init__(self, support: str):
        if support in ("count", "binary"):
            self.x = np.arange(2.0) if support == "binary" else np.arange(0.0, 20001.0)
            self.w = np.ones_like(self.x)
            return
        t = (np.arange(200_000) + 0.5) / 200_000  # midpoints of (0, 1), mapped onto the support
        if support == "real":
            self.x, self.w = np.tan(np.pi * (t - 0.5)), np.pi / np.cos(np.pi * (t - 0.5)) ** 2 / t.size
        else:  # positive, nonnegative: x = t / (1 - t)
            self.x, self.w = t / (1 - t), 1 / (1 - t) ** 2 / t.size


def family_from_density(raw: dict, where: str) -> Family:
    for key in raw:
        if key not in _KEYS:
            raise SpecError(f"{where}: unknown key {key!r}{suggest(str(key), _KEYS)} (valid: {', '.join(_KEYS)})")
    text, params = raw.get("density"), raw.get("parameters")
    if not isinstance(text, str) or not text.strip():
        raise SpecError(
            f'{where}.density should be a formula in x and the parameters, e.g. "l*exp(-l*x)", but got {short(text)}'
        )
    if not isinstance(params, dict) or not params:
        raise SpecError(
            f"{where}.parameters should map each parameter name to real, positive or unit, "
            f"e.g. {{l: positive}}, but got {short(params)}"
        )
    declared: list[Parameter] = []
    for name, domain in params.items():
        if (
            not isinstance(name, str)
            or not name.isidentifier()
            or name in ("x", "pi", "e", *_NP)
            or name.startswith("_")
        ):
            raise SpecError(
                f"{where}.parameters: {short(name)} cannot be a parameter name (x, pi, e and the "
                "function names are taken)"
            )
        if domain not in DOMAINS:
            raise SpecError(
                f"{where}.parameters.{name} should be one of {', '.join(DOMAINS)}, but got "
                f"{short(domain)}{suggest(str(domain), DOMAINS)}"
            )
        declared.append(Parameter(name, "scalar", domain, name))
    support = raw.get("support", "real")
    if support not in SUPPORTS:
        raise SpecError(
            f"{where}.support should be one of {', '.join(SUPPORTS)}, but got {short(support)}"
            f"{suggest(str(support), SUPPORTS)}"
        )
    allowed = {"x", *params}
    try:
        parsed = parse(text, names=allowed)
    except InvalidAnswer as exc:
        raise SpecError(f"{where}.density: {exc}".replace("\n", " ")) from None
    unknown = sorted(parsed.names - allowed)
    if unknown:
        raise SpecError(
            f"{where}.density uses {unknown[0]!r}, which is neither x nor a declared parameter "
            f"({', '.join(sorted(params))}){suggest(unknown[0], sorted(allowed))}"
        )
    if "x" not in parsed.names:
        raise SpecError(f"{where}.density does not depend on x; it should be the density of one point x")
    _check_normalised(parsed.tree, declared, support, where)
    display = raw.get("name") or "f"
    if not isinstance(display, str) or not display.isidentifier():
        raise SpecError(f"{where}.name should be a short name such as Rayleigh, but got {short(display)}")
    model = _AuthorDensity(parsed.tree, tuple(declared), support)
    return Family(
        name="density",
        description=f"the author's density f(x) = {parsed.text}",
        parameters=tuple(declared),
        log_density=model.log_density,
        support=SUPPORTS[support],
        univariate=True,
        start=model.start,
        sample=model.sample,
        truth=model.truth,
        display=display,
    )


class _AuthorDensity:
    """The parsed formula and what the engine asks of a family (a class, so a derivation pickles)."""

    def __init__(self, tree: tuple, declared: tuple[Parameter, ...], support: str):
        self.tree, self.declared, self.support = tree, declared, support

    def log_density(self, v) -> sp.Expr:
        names = {"x": v.x, **{p.name: v[p.name] for p in self.declared}}
        return sp.expand_log(sp.log(_to_sympy(self.tree, names)), force=True)

    def pdf(self, x: np.ndarray, values: dict) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.broadcast_to(_evaluate(self.tree, {"x": x, **values}), x.shape)

    def start(self, X, K, rng):
        return _start(self.pdf, self.declared, X, K)

    def sample(self, params, z, rng):
        return _sample(self.pdf, self.support, params, z, rng)

    def truth(self, K, d, rng):
        return _truth(self.declared, K)


def _check_normalised(tree, declared, support: str, where: str) -> None:
    grid = _Grid(support)
    for trial in range(2):
        values = {p.name: np.float64(_TEST_VALUES[p.domain][trial]) for p in declared}
        with np.errstate(all="ignore"):
            f = np.broadcast_to(_evaluate(tree, {"x": grid.x, **values}), grid.x.shape)
        at = ", ".join(f"{k} = {float(v):g}" for k, v in values.items())
        bad = ~np.isfinite(f) | (f < 0)
        if np.any(bad):
            x0 = float(grid.x[np.argmax(bad)])
            raise SpecError(
                f"{where}.density is not a density on the support ({SUPPORTS[support].text}): at x = {x0:.4g} "
                f"with {at} it is {float(f[np.argmax(bad)]):.4g} (it must be finite and >= 0)"
            )
        total = float(np.sum(f * grid.w))
        if not math.isfinite(total) or abs(total - 1) > 1e-3:
            raise SpecError(
                f"{where}.density is not normalised on the support ({SUPPORTS[support].text}): it "
                f"{'sums' if support in ('count', 'binary') else 'integrates'} to {total:.6g}, not 1, with {at}"
            )


def _start(pdf, declared, X: np.ndarray, K: int) -> dict[str, np.ndarray]:
    """Each quantile group of the data fitted alone: coordinate-wise search over each parameter's scale."""
    out = {p.name: np.empty(K) for p in declared}
    for k, group in enumerate(quantile_groups(X, K)):
        values = {p.name: _TEST_VALUES[p.domain][0] for p in declared}

        def loglik(vals, g=group):
            with np.errstate(all="ignore"):
                ll = float(np.sum(np.log(pdf(g, {n: np.float64(v) for n, v in vals.items()}))))
            return ll if math.isfinite(ll) else -math.inf

        for _ in range(3):
            for p in declared:
                grid = (
                    np.geomspace(1e-4, 1e4, 161) * max(1.0, float(np.mean(np.abs(group))) if group.size else 1.0)
                    if p.domain == "positive"
                    else np.linspace(0.005, 0.995, 199)
                    if p.domain == "unit"
                    else np.linspace(float(np.min(X)), float(np.max(X)), 161)
                )
                scores = [loglik({**values, p.name: g}) for g in grid]
                values[p.name] = float(grid[int(np.argmax(scores))])
        for p in declared:
            out[p.name][k] = values[p.name]
    return out


def _truth(declared, K: int) -> dict[str, np.ndarray]:
    base = {"positive": lambda k: 0.8 * 3.0**k, "unit": lambda k: (k + 1) / (K + 1), "real": lambda k: 3.0 * k}
    return {p.name: np.array([base[p.domain](k) for k in range(K)]) for p in declared}


def _sample(pdf, support: str, params: dict, z: np.ndarray, rng) -> np.ndarray:
    """Inverse-CDF sampling on the support grid, component by component."""
    grid = _Grid(support)
    X = np.empty(z.shape[0])
    for k in np.unique(z):
        mass = pdf(grid.x, {n: np.float64(v[k]) for n, v in params.items()}) * grid.w
        cdf = np.cumsum(np.nan_to_num(mass))
        idx = z == k
        u = rng.random(int(idx.sum())) * cdf[-1]
        pos = np.minimum(np.searchsorted(cdf, u), grid.x.size - 1)
        X[idx] = grid.x[pos]
    return X[:, None]
