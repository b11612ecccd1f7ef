"""Derivation for a family mixture: the generic stages of ``emsym.derive`` on a ``FamilyModel``.

Q is written for a generic component k and a general K, so one derivation serves every K
(its cost does not grow with K).  Steps: the model (density, log density, likelihoods, E-step,
Q and the log prior for MAP-EM); the weights through a Lagrangian (as for the Gaussian); each
free parameter by differentiating, setting to zero and solving; a parameter on the simplex
(the multinomial's p_k) through one Lagrange multiplier nu_k per component; then the updates are
ordered by what they use.

>>> from emsym.spec import load_spec
>>> d = derive_family(load_spec({"family": "poisson", "components": 3}))
>>> print(d.update("rate").text)
sum_{n=1}^{N} (x_n*gamma_nk)/N_k
>>> print(d.update("pi").text)
N_k/N
"""

from __future__ import annotations

import sympy as sp

from .derive import Derivation, Deriver, with_counts
from .family_model import FamilyModel
from .family_spec import FamilySpec
from .options import Linked, plain
from .printing import Equation
from .qfunction import Param
from .roots import solve_for
from .summation import linearise

__all__ = ["derive_family"]


class FamilyDeriver(Deriver):
    def __init__(self, spec: FamilySpec, numeric=frozenset()):
        self.spec: FamilySpec = spec  # type: ignore[assignment]
        self.numeric = set(numeric)
        self.m: FamilyModel = FamilyModel(spec)  # type: ignore[assignment]
        self.steps = []
        self.solutions = {}
        self.Qsym = sp.Function("Q")(sp.Symbol("theta"), sp.Symbol("theta_old"))
        self._atoms = {}

    def density_note(self) -> str:
        fam = self.m.family
        return f"; each component is {fam.display or fam.name}: {fam.description}"

    def component_steps(self):
        self.add(
            "Log density of a component",
            "The log of one component's density, written out: Q is built from it.",
            self.m.log_density_step,
        )

    def parameter_steps(self):
        m = self.m
        weights = [p for p in m.params if p.kind == "weight"]
        if weights:
            self.free_weights(weights)
        for p in m.params:
            if p.name in self.solutions:
                continue
            if p.name in m.kappa:
                self.linked(p)
            if p.name in m.groups:
                self.finish(p, self.stationary(p, self.grouped(p), f"Q_{p.symbol}"))
            elif p.domain == "simplex":
                self.simplex(p)
            else:
                self.finish(p, self.stationary(p, m.Q))

    def finish(self, p: Param, sol):
        """A shared or linked parameter's solution sums each point's responsibilities over the
        components; they sum to one, so sum_n x_n sum_j gamma_nj is sum_n x_n (a shared rate is the
        mean), and sum_j sum_n kappa_j gamma_nj is sum_j kappa_j N_j (the points summed first)."""
        if not isinstance(sol, sp.Expr):
            return super().finish(p, sol)
        m = self.m

        def point_total(e) -> bool:  # sum_j gamma_nj for one point n (the inner limit of a sum)
            if not isinstance(e, sp.Sum):
                return False
            (v, a, b), f = e.limits[0], e.function
            return a == 1 and b == m.K and isinstance(f, sp.Indexed) and f.base == m.gamma and f.indices[1] == v

        def one(e):
            return sp.Sum(1, *e.limits[1:]).doit() if len(e.limits) > 1 else sp.Integer(1)

        def points_inside(e) -> bool:  # sum_j sum_n f_j gamma_nj with f_j free of n
            if not (isinstance(e, sp.Sum) and len(e.limits) == 2 and e.limits[1][0] == m.n):
                return False
            j = e.limits[0][0]
            coeff, rest = e.function.as_independent(m.gamma[m.n, j], as_Add=False)
            return rest == m.gamma[m.n, j] and m.n not in coeff.free_symbols

        def counts(e):  # -> sum_j f_j N_j: the sum over the points taken first
            coeff = e.function / m.gamma[m.n, e.limits[0][0]]
            return sp.Sum(coeff * sp.Sum(m.gamma[m.n, e.limits[0][0]], e.limits[1]), e.limits[0])

        folded = sol.replace(point_total, one).replace(points_inside, counts)
        if folded != sol:
            sol = sp.factor_terms(folded)
            self.add(
                "Use the normalisation of the responsibilities",
                "Every point's responsibilities sum to one over the components (sum_j gamma_nj = 1); "
                "summed over the points, they are the counts N_j.",
                Equation(p.symbol, with_counts(sol, m)),
                p.name,
            )
        return super().finish(p, sol)

    def linked(self, p: Param):
        """theta_k = kappa_k a: the model file's known ratios; Q is maximised over the one value a."""
        m = self.m
        option: Linked = self.spec.option(p.name)  # type: ignore[assignment]
        kappa = ", ".join(str(plain(coef)) for coef, _ in option.entries)
        links = ", ".join(str(e) for e in option.as_list())
        self.add(
            f"Linked values of {p.name}",
            f"The model links {p.name} as [{links}]: each component's value is a known multiple kappa_k of one "
            f"unknown {p.symbol}, with kappa = ({kappa}); Q is maximised over {p.symbol}.",
            Equation(sp.IndexedBase(m.family.parameter(p.name).sym)[m.k], m.param(p.name, m.k)),
            p.name,
        )

    def grouped(self, p: Param) -> sp.Expr:
        """Links in groups: each name's components share one value a (theta_k = kappa_k a), a free
        component is a group of its own (kappa = 1), a fixed one is known.  Q splits over the groups:
        one group's value maximises the terms of its components (ell_j = 1 for them, 0 for the rest),
        derived once and solved by the runner for every group."""
        m = self.m
        a = m.groups[p.name][0]
        option: Linked = self.spec.option(p.name)  # type: ignore[assignment]
        links = ", ".join("null" if e is None else str(e) for e in option.as_list())
        objective = m.group_objective(p.name)
        self.add(
            f"Linked values of {p.name}",
            f"The model links {p.name} as [{links}]. The components linked to one name share one unknown value "
            f"{a} (each is a known multiple kappa_k of it); a free component (null) is a group of its own "
            f"(kappa = 1) and a fixed one is known. Each group's value maximises the terms of Q of its own "
            f"components: ell_j = 1 for them and 0 for the others (the weights' terms do not hold {a})"
            + (f"; with the prior, each of them adds log p(kappa_j {a})." if self.spec.prior(p.name) else "."),
            Equation(sp.Symbol(f"Q_{a}"), objective),
            p.name,
        )
        return objective

    def simplex(self, p: Param):
        """A probability vector per component: a Lagrange multiplier nu_k for sum_l p_kl = 1."""
        m = self.m
        k, i, l = m.k, m.i, m.l
        nu = m.nu[k] if self.spec.option(p.name) != "shared" else sp.Symbol("nu", real=True)
        each = m.over_components(lambda c: m.nu[c] * (sp.Sum(m.param(p.name, c, i), (i, 1, m.d)) - 1))
        if self.spec.option(p.name) == "shared":
            each = nu * (sp.Sum(m.param(p.name, k, i), (i, 1, m.d)) - 1)
        self.add(
            f"Lagrangian for {p.name}",
            f"Each probability vector {p.name} must sum to one over the d categories; add the constraints to Q "
            "with one Lagrange multiplier per component.",
            Equation(sp.Symbol("L"), sp.Symbol("Q") + each),
            p.name,
        )
        sol = self.stationary(p, m.Q + each, "L")
        total = linearise(sp.Sum(sol.subs(l, i), (i, 1, m.d)))
        self.add(
            "Impose the constraint",
            f"Substitute into sum_l {p.name}_kl = 1.",
            Equation(with_counts(total, m), 1),
            p.name,
        )
        nu_value = solve_for(total - 1, nu, f"Lagrange multiplier of {p.name}")
        self.add(
            "Solve for the multiplier",
            "The multiplier makes the probabilities sum to one.",
            Equation(nu, with_counts(nu_value, m)),
            p.name,
        )
        final = sp.factor_terms(sol.subs(nu, nu_value))
        self.add(
            f"Update of {p.name}",
            "Put the multiplier back into the stationarity condition.",
            Equation(p.symbol, with_counts(final, m)),
            p.name,
        )
        self.solutions[p.name] = final


def derive_family(spec: FamilySpec, numeric: frozenset[str] = frozenset()) -> Derivation:
    """Derive the EM (or MAP-EM) updates of a family mixture (uncached; see ``emsym.cache``)."""
    return FamilyDeriver(spec, numeric).run()
