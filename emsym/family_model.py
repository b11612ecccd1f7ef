"""The symbolic model of a family mixture, for a generic component k and a general K.

``FamilyModel(spec)`` builds Q = sum_n sum_j gamma_nj (log w_j + log f(x_n | theta_j)) from the
family's declared log density (``emsym.families``), plus the log prior for MAP-EM.  Everything
is written for a generic component (indexed symbols pi_k, lambda_k, p_kl) and a general K and
d, so the derivation is done once whatever K is; the compiler instantiates it.

It offers the same names as ``emsym.qfunction.SymbolicModel`` (n, j, k, i, l, N, K, d, x,
gamma, pi_, Q, posterior, ...) so the generic stages of ``emsym.derive`` run on it unchanged.

>>> from emsym.spec import load_spec
>>> from emsym.printing import text
>>> m = FamilyModel(load_spec({"family": "poisson", "components": 3}))
>>> [p.name for p in m.params]
['pi', 'rate']
>>> text(m.logf(m.k, m.n))
'x_n*log(lambda_k) - lambda_k - log(x_n!)'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from .families import Handles
from .family_spec import FamilySpec
from .options import Fixed, Linked
from .printing import Equation
from .priors import log_prior, log_prior_term
from .qfunction import EMObjects, Param

__all__ = ["FamilyModel"]


class FamilyModel(EMObjects):
    """Everything symbolic about one family mixture (see the module docstring)."""

    full = False
    mclust = False
    diag = False

    def __init__(self, spec: FamilySpec):
        self.spec = spec
        self.family = spec.family
        pos_int = {"integer": True, "positive": True}
        self.n, self.j, self.k, self.i, self.l = sp.symbols("n j k i l", **pos_int)
        self.N = sp.Symbol("N", **pos_int)
        self.K = sp.Symbol("K", **pos_int)
        self.d = sp.Symbol("d", **pos_int)
        self.general = True  # derived for a generic component, whatever spec.components is
        self.vector = spec.vector
        self.x = sp.IndexedBase("x", real=True)
        self.gamma = sp.IndexedBase("gamma", nonnegative=True)
        self.z = sp.IndexedBase("z", nonnegative=True)
        self.pi_ = sp.IndexedBase("pi", positive=True)
        self.w_fixed = sp.IndexedBase("w", positive=True)  # fixed weights, bound numerically
        # the weights' Lagrange multiplier: lambda, unless a parameter is written lambda (a Poisson rate)
        taken = {p.sym for p in self.family.parameters}
        self.lam = sp.Symbol("eta" if "lambda" in taken else "lambda", real=True)
        self.nu = sp.IndexedBase("nu", real=True)  # Lagrange multipliers of per-component simplex parameters
        self.comps = [self.k]
        self.bases: dict[str, Any] = {}  # parameter name -> IndexedBase or Symbol
        # linked: theta_k = kappa_k a, one free symbol a and known coefficients kappa_k (bound when run)
        self.kappa: dict[str, sp.IndexedBase] = {}
        # links in groups (several names, free or fixed entries): per parameter the value a of one group,
        # the coefficients kappa_k and the group's indicator ell_k (both bound when run, group by group)
        self.groups: dict[str, tuple[sp.Symbol, sp.IndexedBase, sp.IndexedBase]] = {}
        linked = [p for p in self.family.parameters if isinstance(spec.option(p.name), Linked)]
        for number, p in enumerate(linked, 1):
            suffix = "" if len(linked) == 1 else str(number)
            kappa = sp.IndexedBase(f"kappa{suffix}", real=True)
            if spec.option(p.name).single:  # type: ignore[union-attr]
                self.kappa[p.name] = kappa
            else:
                a = sp.Symbol(f"{p.sym}_g", **({"positive": True} if p.domain == "positive" else {"real": True}))
                self.groups[p.name] = (a, kappa, sp.IndexedBase(f"ell{suffix}", nonnegative=True))
        for p in self.family.parameters:
            assumptions = {"positive": True} if p.domain in ("positive", "unit") else {"real": True}
            option = self.spec.option(p.name)
            if p.name in self.kappa:
                self.bases[p.name] = sp.Symbol(option.names[0], **assumptions)
            elif option == "shared":
                self.bases[p.name] = (
                    sp.IndexedBase(p.sym, **assumptions) if p.per_coordinate else sp.Symbol(p.sym, **assumptions)
                )
            else:
                self.bases[p.name] = sp.IndexedBase(p.sym, **assumptions)
        self.params = tuple(self._params())

    # -- parameters ------------------------------------------------------------------------
    def _params(self):
        if self.spec.mixing == "free":
            yield Param(self.pi_[self.k], "pi", "weight", "simplex", None)
        for p in self.family.parameters:
            option = self.spec.option(p.name)
            if isinstance(option, Fixed) and all(v is not None for v in option.values):
                continue  # known for every component: nothing to derive
            domain = "simplex" if p.shape == "simplex" else p.domain
            symbol = self.bases[p.name] if p.name in self.kappa else None  # linked: Q is differentiated by a
            if p.name in self.groups:
                symbol = self.groups[p.name][0]  # in groups: the terms of a group's components, by its value
            yield Param(
                symbol if symbol is not None else self.param(p.name, self.k, self.l if p.per_coordinate else None),
                p.name,
                p.name,
                domain,
                None,
                p.per_coordinate,
                self.bases[p.name] if p.name in self.groups else None,
            )

    def param(self, name: str, c, coord=None) -> sp.Expr:
        """Parameter ``name`` of component c (its coordinate ``coord`` for a per-coordinate one)."""
        base = self.bases[name]
        if name in self.kappa:
            return self.kappa[name][c] * base
        if isinstance(base, sp.Symbol):
            return base
        if self.spec.option(name) == "shared":
            return base[coord]
        return base[c, coord] if coord is not None else base[c]

    def fixed_values(self, name: str) -> Fixed | None:
        o = self.spec.option(name)
        return o if isinstance(o, Fixed) else None

    # -- one component ---------------------------------------------------------------------
    def weight(self, c) -> sp.Expr:
        if self.spec.mixing == "free":
            return self.pi_[c]
        if self.spec.mixing == "equal":
            return sp.Integer(1) / self.K
        return self.w_fixed[c]

    def handles(self, c, n) -> Handles:
        fam = self.family
        getters: dict[str, Callable] = {
            p.name: (lambda coord, name=p.name: self.param(name, c, coord)) for p in fam.parameters
        }
        if fam.univariate:
            return Handles(self.x[n], None, self.i, 1, getters)
        return Handles(sp.Symbol("x_n", real=True), self.x[n, self.i], self.i, self.d, getters)

    def logf(self, c, n) -> sp.Expr:
        """log f(x_n | theta_c): the family's log density for component c and point n."""
        return self.family.log_density(self.handles(c, n))

    def log_joint(self, c, n) -> sp.Expr:
        return sp.log(self.weight(c)) + self.logf(c, n)

    def normal(self, c, point) -> sp.Expr:
        """Display form of component c's density at a point, e.g. Poisson(x_n | lambda_k)."""
        return sp.Function(self.family.display or "f")(point, *[self._whole(p, c) for p in self.family.parameters])

    def _whole(self, p, c):
        """The parameter as one object for display: lambda_k, or the vector p_k."""
        base = self.bases[p.name]
        if p.name in self.kappa:
            return self.param(p.name, c)  # kappa_c a
        if isinstance(base, sp.Symbol):
            return base
        if self.spec.option(p.name) == "shared":
            return sp.Symbol(p.sym, real=True)
        return base[c]

    def group_objective(self, name: str) -> sp.Expr:
        """The terms of Q that hold one group's value a: its components' (ell_j = 1), theta_j = kappa_j a;
        for MAP-EM also their prior's terms, log p(kappa_j a) for each component of the group."""
        a, kappa, ell = self.groups[name]
        base = self.bases[name]
        objective = self.over_points(
            lambda n: self.over_components(
                lambda j: ell[j] * self.gamma[n, j] * self.logf(j, n).xreplace({base[j]: kappa[j] * a})
            )
        )
        prior = self.spec.prior(name)
        if prior is not None:
            objective += self.over_components(
                lambda j: ell[j] * log_prior_term(prior.kind, prior.hyper, lambda _: kappa[j] * a)
            )
        return objective

    # -- sums ------------------------------------------------------------------------------
    def over_components(self, f: Callable) -> sp.Expr:
        return sp.Sum(f(self.j), (self.j, 1, self.K))

    def point(self, n) -> sp.Expr:
        return sp.Symbol("x_" + str(n), real=True) if self.vector else self.x[n]

    # -- the objects of EM -----------------------------------------------------------------
    @property
    def log_density_step(self) -> Equation:
        return Equation(sp.log(self.normal(self.k, self.point(self.n))), self.logf(self.k, self.n))

    @property
    def log_prior(self) -> sp.Expr:
        """log p(theta) up to a constant (0 without priors)."""

        def value(target, c, coord):
            return self.pi_[c] if target == "weights" else self.param(target, c, coord)

        return log_prior(
            self.spec.priors,
            self,
            value,
            lambda t: t != "weights" and self.family.parameter(t).per_coordinate,
            lambda t: t != "weights" and self.spec.option(t) == "shared",
        )
