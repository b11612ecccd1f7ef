"""Conjugate priors for MAP-EM: what each one reads from a model file and its log density.

A prior is written in the model file under ``prior:``, keyed by what it is on (``weights`` or a
family parameter) and naming its kind::

    prior:
      weights: {dirichlet: 2}        # alpha (one number: symmetric; or one per component)
      rate: {gamma: [2, 1]}          # shape a, rate b
      p: {beta: [2, 2]}              # a, b (on every p_kl)
      p: {dirichlet: 2}              # on each component's probability vector
      mean: {normal: [0, 100]}       # Gaussian: m0, v0 (on every mean coordinate; full: mu_k ~ N(m_0, v0 I))
      variance: {inverse-gamma: [2, 1]}   # Gaussian: a, b (on every variance)
      variance: {inverse-wishart: [5, 1]} # Gaussian, full covariance: nu, Psi (a number s: Psi = s I)

The log density is written without its normalising constant (it does not change the M-step or
whether the objective rises), so the reported log posterior is log-likelihood + log prior up to
a constant.  Hyperparameters are exact numbers and appear in the derived updates as numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sympy as sp

__all__ = ["KINDS", "PriorKind", "hyper_text", "log_prior", "log_prior_term", "parse_priors", "valid_hyper"]


@dataclass(frozen=True)
class PriorKind:
    name: str
    hyper: tuple[str, ...]  # names of the hyperparameters, in the order a list gives them
    domain: str  # the parameter domain it is conjugate for ("positive", "unit", "simplex")
    text: str


KINDS = {
    "gamma": PriorKind("gamma", ("a", "b"), "positive", "Gamma(a, b) with shape a > 0 and rate b > 0"),
    "beta": PriorKind("beta", ("a", "b"), "unit", "Beta(a, b) with a > 0 and b > 0"),
    "dirichlet": PriorKind("dirichlet", ("alpha",), "simplex", "Dirichlet(alpha) with every alpha > 0"),
    "normal": PriorKind("normal", ("m0", "v0"), "real", "Normal(m0, v0) with a mean m0 and a variance v0 > 0"),
    "inverse-gamma": PriorKind(
        "inverse-gamma", ("a", "b"), "variance", "InvGamma(a, b) on a variance, with shape a > 0 and scale b > 0"
    ),
    "inverse-wishart": PriorKind(
        "inverse-wishart",
        ("nu", "Psi"),
        "covariance",
        "InvWishart(nu, Psi) on a covariance matrix, with degrees of freedom nu > d - 1 and a scale Psi: "
        "a number s > 0 (Psi = s I) or a symmetric positive definite d x d matrix (a list of rows)",
    ),
}


def valid_hyper(kind: str, hyper: tuple) -> bool:
    """Whether the hyperparameters are in range (every one > 0, except a normal prior's mean; an
    inverse Wishart's matrix scale is checked against d by the spec)."""
    return all(h > 0 for h in (hyper[1:] if kind == "normal" else hyper) if not isinstance(h, tuple))


def hyper_text(h) -> str:
    """A hyperparameter as a reader writes it: 2, 1/2, or a matrix [[1, 0], [0, 1]]."""
    from .options import plain

    return str(plain(h)).replace("'", "")


def _r(v: Fraction) -> sp.Rational:
    import sympy as sp

    return sp.Rational(v.numerator, v.denominator)


def log_prior_term(kind: str, hyper: tuple, value: Callable[[sp.Expr | None], sp.Expr], coord=None) -> sp.Expr:
    """The log density (up to a constant) of one parameter value under the prior.

    ``value(coord)`` gives the parameter (its coordinate ``coord`` for a vector); for a
    Dirichlet over a probability vector, ``coord`` is the summation index and ``hyper[0]`` is
    one alpha (symmetric) -- the caller sums over the coordinates.
    """
    import sympy as sp

    if kind == "gamma":
        a, b = (_r(h) for h in hyper)
        lam = value(coord)
        return (a - 1) * sp.log(lam) - b * lam
    if kind == "beta":
        a, b = (_r(h) for h in hyper)
        p = value(coord)
        return (a - 1) * sp.log(p) + (b - 1) * sp.log(1 - p)
    if kind == "dirichlet":
        (alpha,) = hyper
        return (_r(alpha) - 1) * sp.log(value(coord))
    if kind == "normal":
        m0, v0 = _r(hyper[0]), _r(hyper[1])
        return -((value(coord) - m0) ** 2) / (2 * v0)
    if kind == "inverse-gamma":
        a, b = (_r(h) for h in hyper)
        v = value(coord)
        return -(a + 1) * sp.log(v) - b / v
    raise KeyError(kind)


def parse_priors(
    value, targets: dict[str, str], where: str, error, conjugate: dict[str, str] | None = None
) -> list[tuple[str, str, tuple]]:
    """Read a ``prior:`` mapping: target -> {kind: hyperparameters}, each kind allowed for its target's domain.

    ``targets`` maps each name a prior may be on to its domain (``simplex`` for the weights);
    ``conjugate`` names a family's conjugate prior per parameter, for the error message; returns
    (target, kind, exact hyperparameters) and raises ``error`` with one line naming the key.
    """
    from .options import number, short, suggest

    if not isinstance(value, dict):
        raise error(
            f"{where}: 'prior' should be a mapping such as {{weights: {{dirichlet: 2}}}}, but got {short(value)}"
        )
    out = []
    for target, spec in value.items():
        if target not in targets:
            raise error(
                f"{where}: 'prior' has the unknown key {target!r}{suggest(str(target), targets)} "
                f"(valid: {', '.join(targets)})"
            )
        allowed = [k for k, pk in KINDS.items() if pk.domain == targets[target]]
        if not isinstance(spec, dict) or len(spec) != 1:
            raise error(
                f"{where}: 'prior.{target}' should name one prior, e.g. {{{allowed[0]}: ...}}, but got {short(spec)}"
            )
        ((kind, raw),) = spec.items()
        if kind not in allowed:
            raise error(
                f"{where}: 'prior.{target}': {kind!r} is not a prior emsym derives for "
                f"{'the weights' if target == 'weights' else target}; expected {' or '.join(allowed)}"
                + (f" (the conjugate prior of {target})" if (conjugate or {}).get(target) in allowed else "")
                + suggest(str(kind), allowed)
            )
        pk = KINDS[kind]
        given = raw if isinstance(raw, list) else [raw]
        at = f"{where}: 'prior.{target}.{kind}'"
        if len(given) != len(pk.hyper):
            raise error(
                f"{at} should be {len(pk.hyper)} number(s) ({', '.join(pk.hyper)}; {pk.text}), but got {short(raw)}"
            )
        hyper = tuple(
            _matrix(h, at[:-1] + f"[{i}]'", error) if isinstance(h, list) and pk.hyper[i] == "Psi" else number(h, at)
            for i, h in enumerate(given)
        )
        if not valid_hyper(kind, hyper):
            raise error(f"{at} should be {pk.text}, but got {short(raw)}")
        out.append((str(target), kind, hyper))
    return out


def _matrix(raw: list, at: str, error) -> tuple:
    """A matrix hyperparameter: a list of rows of exact numbers, square (its size is checked with d)."""
    from .options import number, short

    if not raw or not all(isinstance(row, list) and len(row) == len(raw) for row in raw):
        raise error(
            f"{at} should be a square matrix written as a list of rows, e.g. [[1, 0], [0, 1]], but got {short(raw)}"
        )
    return tuple(tuple(number(v, f"{at}[{r}][{c}]") for c, v in enumerate(row)) for r, row in enumerate(raw))


def log_prior(priors, model, value, per_coordinate, shared) -> sp.Expr:
    """log p(theta) of a model up to a constant: each prior's term summed over the components (once for a
    shared parameter) and over the coordinates of a per-coordinate parameter.

    ``value(target, c, coord)`` is the parameter the prior is on (``target`` is ``weights`` or a
    parameter name); ``per_coordinate(target)`` and ``shared(target)`` say how it is laid out.
    ``model`` supplies ``over_components``, ``comps``, ``i`` and ``d``.
    """
    import sympy as sp

    total = sp.Integer(0)
    for prior in priors:
        target = prior.target

        def term(c, prior=prior, target=target) -> sp.Expr:
            if per_coordinate(target):
                one = log_prior_term(prior.kind, prior.hyper, lambda coord: value(target, c, coord), model.i)
                return sp.Sum(one, (model.i, 1, model.d))
            return log_prior_term(prior.kind, prior.hyper, lambda _: value(target, c, None))

        total += term(model.comps[0]) if shared(target) else model.over_components(term)
    return total
