"""Mistakes found by re-deriving: the derivation redone with one slip injected at a named step.

A student's wrong answer is usually the right derivation with one step done wrong.  For one
parameter of any derivation emsym makes (every variant, every family), this module takes the
recorded steps -- the stationarity condition, the solve, the Lagrange multiplier, the prior --
changes one step the way students do, and solves again.  Each result is a ``Rederived``: the
step's title, what went wrong, the correct step and the wrong one (as equations in the sheet's
notation), and the answer the slip leads to.  The grader matches a student's answer against
these answers and quotes the step.  Nothing is listed per question: the slips are operations
on the derivation.

The slips (keys):

- ``sign-slip``: one term of the stationarity condition has its sign flipped;
- ``chain-rule``: one term loses or gains a factor 2 -- for a variance, the chain-rule factor
  d(sigma^2)/d(sigma) = 2 sigma of differentiating with respect to sigma instead of sigma^2;
- ``dropped-term``: one term of the derivative is dropped (a Jacobian, trace or normaliser term);
- ``no-lagrange``: the Lagrange multiplier is not found from the constraint (lambda = -1): the
  "weights" are unnormalised counts;
- ``no-prior``: MAP-EM without the log prior -- the maximum-likelihood update;
- ``not-normalised``: the E-step's responsibilities without the division by the mixture density.

>>> from emsym.spec import load_spec
>>> from emsym.derive import derive
>>> d = derive(load_spec("standard-general"))
>>> sorted({m.key for m in rederive(d, "mu_k")})
['chain-rule', 'sign-slip']
>>> [m.text for m in rederive(d, "sigma2_k")]   # a sign slip or a dropped term has no positive root here
['sum_{n=1}^{N} ((x_n - mu_k)**2*gamma_nk)/(2*N_k)', '2*sum_{n=1}^{N} ((x_n - mu_k)**2*gamma_nk)/N_k']
>>> [m.text for m in rederive(d, "pi_k") if m.key == "no-lagrange"]
['N_k']
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .derive import Derivation, with_counts
from .exceptions import DerivationError
from .printing import Equation, text
from .roots import solve_for
from .summation import linearise

__all__ = ["Rederived", "estep_mistakes", "rederive"]

MAX_TERMS = 6  # terms of a condition that are varied one at a time


@dataclass(frozen=True)
class Rederived:
    """One slip: where (step), what (message), the correct and the wrong step, and its result."""

    key: str
    step: str
    message: str
    correct: sp.Basic  # the step done right (an Equation)
    wrong: sp.Basic  # the step done wrong (an Equation)
    expr: sp.Expr  # the answer the slip leads to (an update, or a condition's lhs for equation parts)
    term: sp.Expr | None = None  # the term the message names as {term}, in the sheet's notation when shown

    @property
    def text(self) -> str:
        return text(self.expr)

    def describe(self, show=text) -> str:
        """The message with its term written by ``show`` (the sheet's notation)."""
        return self.message.replace("{term}", show(self.term)) if self.term is not None else self.message


def _param(d: Derivation, name: str):
    for p in d.model.params:
        if p.name == name:
            return p
    raise KeyError(name)


def _step(d: Derivation, name: str, title: str):
    return next((s for s in d.steps if s.param == name and s.title.startswith(title)), None)


def _solve(expr, target):
    try:
        sol = solve_for(expr, target, "re-derivation")
    except (DerivationError, NotImplementedError, ValueError, TypeError, ZeroDivisionError):
        return None
    if sol is None or sol.has(sp.zoo, sp.nan, sp.oo) or sol == 0:
        return None
    return sol


def _multipliers(d: Derivation) -> set:
    step = next((s for s in d.steps if s.title == "Solve for the multiplier"), None)
    return {step.expr.lhs} if step is not None else set()


def rederive(d: Derivation, name: str, equation: bool = False) -> list[Rederived]:
    """The slips of the derivation of parameter ``name`` (see the module docstring).

    With ``equation`` the results are stationarity conditions (their lhs, = 0) rather than
    updates, for parts that ask for the condition.
    """
    try:
        p = _param(d, name)
    except KeyError:
        return []
    if p.matrix or p.block or isinstance(p.symbol, sp.MatrixSymbol):
        return []  # matrix calculus: the slips below are for scalar conditions
    cond = _step(d, name, "Set the derivative to zero")
    if cond is None:
        return []
    r = _Rederiver(d, p, cond, equation)
    r.term_slips()
    r.lagrange_slip()
    r.prior_slip()
    return _distinct(r.out)


class _Rederiver:
    """One parameter's stationarity condition, and the slips made on it."""

    def __init__(self, d: Derivation, p, cond, equation: bool):
        self.d, self.p, self.cond, self.equation = d, p, cond, equation
        self.lhs = cond.expr.lhs
        self.lams = _multipliers(d) & self.lhs.free_symbols
        self.out: list[Rederived] = []

    def add(self, key, step_title, message, wrong_lhs, term=None):
        """Record a slip: the wrong condition and what solving it gives."""
        if self.equation:
            expr = wrong_lhs
        else:
            expr = _solve(wrong_lhs, self.p.symbol)
            if expr is None or expr.has(*self.lams):
                return
            expr = _finish(self.d, expr, self.lams)
        self.out.append(Rederived(key, step_title, message, self.cond.expr, Equation(wrong_lhs, 0), expr, term))

    def term_slips(self):
        """A sign, a factor 2 or a whole term lost in one term of the condition."""
        lhs, x, name = self.lhs, self.p.symbol, self.p.name
        if len(sp.Add.make_args(lhs)) < 2:
            return
        terms = [t for t in sp.Add.make_args(lhs) if t.has(x) or self.lams & t.free_symbols][:MAX_TERMS]
        for t in terms:
            shown = "{term}"
            self.add(
                "sign-slip",
                self.cond.title,
                f"a sign slip when setting the derivative to zero: the term {shown} has the wrong sign",
                lhs - 2 * t,
                t,
            )
            for factor in (2, sp.Rational(1, 2)):
                if self.p.kind == "variance":
                    msg = (
                        f"differentiating with respect to sigma instead of sigma^2: the chain rule's factor 2 "
                        f"(d sigma^2/d sigma = 2 sigma) is {'lost' if factor == 2 else 'doubled'} in the term {shown}"
                    )
                else:
                    msg = f"a factor 2 is {'lost' if factor == 2 else 'added'} in differentiating the term {shown}"
                self.add("chain-rule", f"Differentiate with respect to {name}", msg, lhs - t + t / factor, t)
            if not (self.lams & t.free_symbols):
                self.add(
                    "dropped-term",
                    f"Differentiate with respect to {name}",
                    f"the term {shown} of the derivative is missing (a dropped Jacobian, trace or normaliser term)",
                    lhs - t,
                    t,
                )

    def lagrange_slip(self):
        """The multiplier never found from the constraint (lambda = -1): unnormalised counts."""
        if not self.lams or self.equation:
            return
        solved = _step(self.d, self.p.name, "Solve for")
        if solved is None:
            return
        raw = solved.expr.rhs
        unnormalised = raw.subs(dict.fromkeys(self.lams, -1))
        if unnormalised.has(*self.lams) or unnormalised == raw:
            return
        self.out.append(
            Rederived(
                "no-lagrange",
                "Lagrangian for the mixing weights",
                "the Lagrange constraint was dropped: without sum_k = 1 the multiplier is never found, and "
                "the 'weights' are unnormalised counts",
                solved.expr,
                Equation(self.p.symbol, unnormalised),
                _finish(self.d, unnormalised, set()),
            )
        )

    def prior_slip(self):
        """MAP-EM without the log prior's term: the maximum-likelihood condition."""
        m = self.d.model
        log_prior = getattr(m, "log_prior", None)
        if not getattr(self.d.spec, "priors", None) or log_prior is None or log_prior == 0:
            return
        prior_part = with_counts(linearise(sp.diff(log_prior, self.p.symbol)), m)
        if prior_part != 0:
            self.add(
                "no-prior",
                "Log prior (MAP-EM)",
                "the prior is missing: this is the maximum-likelihood update, but MAP-EM maximises Q + log p(theta)",
                self.lhs - prior_part,
            )


def _finish(d: Derivation, expr, lams) -> sp.Expr:
    """A wrong solution in the same form as the right one (N_k for sum_n gamma_nk)."""
    m = d.model
    step = next((s for s in d.steps if s.title == "Solve for the multiplier"), None)
    if step is not None and lams:
        expr = expr.subs(step.expr.lhs, step.expr.rhs)
    return with_counts(expr, m)


def _distinct(found: list[Rederived]) -> list[Rederived]:
    seen: set = set()
    out = []
    for r in found:
        key = sp.srepr(r.expr)
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


def estep_mistakes(posterior) -> list[Rederived]:
    """E-step: the responsibilities without their normalisation (the numerator alone)."""
    rhs = posterior.rhs
    num, den = sp.fraction(rhs)
    if den == 1:
        return []
    return [
        Rederived(
            "not-normalised",
            "E-step",
            "the responsibilities are not normalised: Bayes' rule divides by the mixture density, the sum over "
            "all components, so that each point's responsibilities add up to 1",
            posterior,
            Equation(posterior.lhs, num),
            num,
        )
    ]
