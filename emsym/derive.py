"""Derivation: from the symbolic model to M-step updates, recording every step.

For each free parameter sympy differentiates Q, emsym pulls factors that do not depend on
the summation index out of the sums (linearity of summation), collapses Kronecker deltas
(general K, d-dimensional means), sets the derivative to zero and lets sympy solve for the
parameter, treating each remaining sum over the data as an opaque statistic.  Free mixing
weights go through a Lagrangian whose multiplier is found from the constraint and the
identity sum_k gamma_nk = 1.

Then the updates are ordered.  When one update uses another free parameter whose own update
does not use it back (sigma2_k uses mu_k), the used one is computed first and the pair is
the joint maximiser.  When updates use each other (a shared mean with free variances), no
joint closed form is derived: each update maximises Q over its own parameter with the others
held at their latest values -- an ECM step, which still never decreases the likelihood.

>>> from emsym.spec import load_spec
>>> d = derive(load_spec("standard"))
>>> print(d.update("mu_1").text)
sum_{n=1}^{N} (x_n*gamma_n1)/N_1
>>> print(d.update("pi_2").text)
N_2/N
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sympy as sp

from . import mclust
from .exceptions import DerivationError
from .printing import Equation, latex, latex_rows, text
from .priors import hyper_text
from .qfunction import Atoms, MatSum, Param, SymbolicModel, split_scalar
from .roots import solve_for
from .spec import ModelSpec
from .summation import linearise

if TYPE_CHECKING:
    from .family_spec import FamilySpec

__all__ = [
    "Block",
    "Derivation",
    "Deriver",
    "NoClosedForm",
    "Step",
    "Update",
    "derive",
    "linearise",
    "step",
    "with_counts",
]


@dataclass(frozen=True)
class Step:
    """One recorded step: what was done (title, text) and the resulting expression."""

    title: str
    text: str
    expr: sp.Basic
    param: str | None = None  # the parameter this step derives, None for model-level steps

    # Printed on first use: printing a K = 50 derivation costs more than deriving it, and most
    # uses (running, grading) never print the steps.  ``emsym.cache`` prints before storing.
    @functools.cached_property
    def latex(self) -> str:
        return latex(self.expr)

    @functools.cached_property
    def plain(self) -> str:
        return text(self.expr)

    @functools.cached_property
    def rows(self) -> tuple[str, ...]:
        """The LaTeX as display rows: a long sum of terms a term per row (``printing.latex_rows``)."""
        return latex_rows(self.expr)

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "text": self.text,
            "param": self.param,
            "expression": self.plain,
            "latex": self.latex,
            "sympy": sp.srepr(self.expr),
        }


def _step(title: str, what: str, expr: sp.Basic, param: str | None = None) -> Step:
    return Step(title, what, expr, param)


@dataclass(frozen=True)
class Update:
    """The M-step update of one free parameter.

    ``expr`` is what the runner compiles (sums over the data written out); ``display``
    writes N_k for sum_n gamma_nk.  ``uses`` names the other free parameters in it; they
    are evaluated at their new values (they come earlier in ``Derivation.updates``).
    """

    param: Param
    expr: sp.Expr
    display: sp.Expr
    uses: tuple[str, ...]
    conditional: bool
    numeric: bool = False  # no closed form: expr is dQ/dparam, solved numerically by the runner
    block: str | None = None  # an mclust name: expr holds the scatter matrices W_k, see emsym.mclust

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def text(self) -> str:
        if self.block:
            how = "iterated to convergence" if self.block in mclust.NO_CLOSED_FORM else "one pass, closed form"
            return (
                f"argmax over the {self.block} covariances of -1/2 sum_k [N_k log|Sigma_k| + tr(W_k Sigma_k^-1)] "
                f"with W_k = {text(self.display)} (orientation, shape, volume blocks; {how})"
            )
        if self.numeric:
            return f"argmax Q over {self.name}: the root of {text(self.display)} = 0"
        return text(self.display)

    @property
    def latex(self) -> str:
        if self.block:
            return (
                r"\Sigma_{1..K} = \arg\max_{" + self.block + r"} -\tfrac{1}{2} \sum_k \left[N_k \log|\Sigma_k| + "
                r"\operatorname{tr}(W_k \Sigma_k^{-1})\right],\quad W_k = " + latex(self.display)
            )
        return latex(self.display)

    def to_dict(self) -> dict:
        return {
            "param": self.name,
            "kind": self.param.kind,
            "expression": self.text,
            "latex": self.latex,
            "uses": list(self.uses),
            "conditional": self.conditional,
            "numeric": self.numeric,
            "expression_sums": text(self.expr),
        }


@dataclass(frozen=True)
class Derivation:
    """The result of ``derive``: the model, every step, and the ordered updates."""

    spec: ModelSpec | FamilySpec
    model: Any  # SymbolicModel (Gaussian) or emsym.family_model.FamilyModel
    steps: tuple[Step, ...]
    updates: tuple[Update, ...]
    method: str  # "EM" (exact M-step) or "ECM" (conditional maximisation)
    notes: tuple[str, ...]

    def update(self, name: str) -> Update:
        for u in self.updates:
            if u.name == name:
                return u
        raise KeyError(f"no update for {name!r}; the free parameters are {[u.name for u in self.updates]}")

    def steps_for(self, name: str | None) -> list[Step]:
        return [s for s in self.steps if s.param == name]

    def _repr_html_(self) -> str:  # Jupyter
        from .notebook import derivation_html

        return derivation_html(self)

    def _repr_markdown_(self) -> str:
        from .notebook import derivation_markdown

        return derivation_markdown(self)

    def _repr_latex_(self) -> str:
        from .notebook import derivation_latex

        return derivation_latex(self)

    def to_dict(self) -> dict:
        return {
            "model": self.spec.to_dict(),
            "method": self.method,
            "notes": list(self.notes),
            "parameters": [u.name for u in self.updates],
            "steps": [s.to_dict() for s in self.steps],
            "updates": [u.to_dict() for u in self.updates],
        }


# -- algebra helpers ---------------------------------------------------------------------
def _count_of(e: sp.Basic, model: Any):
    """The component index c when e is sum_n gamma[n, c] over all points, else None."""
    if (
        isinstance(e, sp.Sum)
        and len(e.limits) == 1
        and e.limits[0] == (model.n, 1, model.N)
        and isinstance(e.function, sp.Indexed)
        and e.function.base == model.gamma
        and e.function.indices[0] == model.n
    ):
        return e.function.indices[1]
    return None


def _normalise(expr: sp.Expr, model: Any) -> sp.Expr:
    """Replace sum_k N_k by N, using sum_k gamma_nk = 1 for every point n."""
    if model.general:

        def is_total(e):  # sum_j sum_n gamma[n, j] (sympy flattens the nested Sum)
            if not (isinstance(e, sp.Sum) and len(e.limits) == 2):
                return False
            (v1, a1, b1), (v2, a2, b2) = e.limits
            return (
                (v1, a1, b1) == (model.n, 1, model.N)
                and a2 == 1
                and b2 == model.K
                and e.function == model.gamma[model.n, v2]
            )

        return expr.replace(is_total, lambda e: model.N)

    comps = set(model.comps)

    def fold(add: sp.Add):
        coef: dict = {}
        for t in add.args:
            for fac in sp.Mul.make_args(t):
                c = _count_of(fac, model)
                if c is not None:
                    coef.setdefault(c, []).append(t / fac)
                    break
        if set(coef) != comps or any(len(v) != 1 for v in coef.values()):
            return add
        values = {v[0] for v in coef.values()}
        if len(values) != 1:
            return add
        (a,) = values
        return add - sum(a * model.count(c) for c in comps) + a * model.N

    return expr.replace(lambda e: isinstance(e, sp.Add), fold)


def _with_counts(expr: sp.Expr, model: Any) -> sp.Expr:
    """Display form: write N_c for sum_n gamma_nc."""
    return expr.replace(lambda e: _count_of(e, model) is not None, lambda e: model.count_symbol(_count_of(e, model)))


def _hyper_list(prior) -> str:
    """A prior's hyperparameters as the step text shows them: 2, 1 -- or nu = 5, Psi = [[2, 1], [1, 3]]
    for an inverse Wishart, whose scale the equations write as the symbol Psi (or s I)."""
    if prior.kind == "inverse-wishart":
        nu, psi = prior.hyper
        scale = hyper_text(psi) if isinstance(psi, tuple) else f"{hyper_text(psi)} I"
        return f"nu = {hyper_text(nu)}, Psi = {scale}"
    return ", ".join(hyper_text(h) for h in prior.hyper)


# -- matrix calculus (full covariance) ---------------------------------------------------
def _matrix_gradient(term: sp.Expr, V: sp.MatrixSymbol) -> sp.MatrixExpr | None:
    """d term / dV for a scalar built from log-determinants and traces; None if term lacks V.

    Two rules: Jacobi's formula d log|L| / dL = L^-T, which is L^-1 for a symmetric L
    (sympy 1.14's matrix calculus returns 0 here, so emsym states the rule; tests check it
    by finite differences), and sympy's own derivative of a trace, with L^T = L afterwards.
    """
    out = []
    for t in sp.Add.make_args(term):
        factors = sp.Mul.make_args(t)
        core = [f for f in factors if f.has(V)]
        if not core:
            continue
        if len(core) != 1:
            raise DerivationError(f"{V}: cannot differentiate the product {t}")
        (core,) = core
        coeff = sp.Mul(*[f for f in factors if f is not core])
        if isinstance(core, sp.log) and isinstance(core.args[0], sp.Determinant) and core.args[0].arg == V:
            grad = sp.Inverse(V)
        elif isinstance(core, sp.Trace):
            grad = sp.diff(core, V).doit().replace(_symmetric_transpose, lambda e: e.arg).doit()
        else:
            raise DerivationError(f"{V}: no matrix-calculus rule for {core}")
        out.append(coeff * grad)
    return sp.MatAdd(*out).doit() if out else None


def _symmetric_transpose(e) -> bool:
    """L^T where L is a precision or covariance (square symbols are symmetric here): L^T = L."""
    return (
        isinstance(e, sp.Transpose)
        and isinstance(e.arg, sp.MatrixSymbol)
        and e.arg.shape[0] == e.arg.shape[1]
        and e.arg.shape[0] != 1
    )


def _linear_in(expr: sp.MatrixExpr, V: sp.MatrixSymbol):
    """Split a matrix expression into (A, B) with expr = A V + B; A is None when V is absent."""
    A, B = [], []
    for t in sp.MatAdd.make_args(sp.expand(expr)):
        if not t.has(V):
            B.append(t)
            continue
        args = list(t.args) if isinstance(t, sp.MatMul) else [t]
        if args[-1] != V or any(a.has(V) for a in args[:-1]):
            raise DerivationError(f"the stationarity condition is not linear in {V}: term {t}")
        A.append(sp.MatMul(*args[:-1]) if len(args) > 2 else args[0] if len(args) == 2 else sp.Integer(1))
    return A, B


# -- the derivation ----------------------------------------------------------------------
class _NoClosedForm:
    """Marker: the stationarity condition (derivative) that the runner solves numerically."""

    def __init__(self, derivative: sp.Expr):
        self.derivative = derivative


class _Block:
    """Marker: an mclust covariance block, maximised by emsym.mclust given the scatter matrices."""

    def __init__(self, name: str, scatter: sp.Tuple):
        self.name = name
        self.scatter = scatter


def _terms_with(expr: sp.Expr, p: Param, atoms: dict[sp.Basic, tuple[Atoms, frozenset]]) -> sp.Expr:
    """``expr`` without the terms of its sums that cannot hold ``p`` (their derivative is zero), so
    that differentiating it is cheap: for K concrete components Q sums K terms per point, and
    differentiating all of them for each of the K parameters cost K^2 (7 s of 8 at K = 50).

    A term is kept when it holds p, or any entry of p's base at a symbolic index (mu_j inside a
    sum over j may be mu_k).  The derivative is the same expression either way: sympy drops the
    zero derivatives of the other terms.  ``atoms`` caches each term's atoms across parameters.
    """
    if not isinstance(p.symbol, (sp.Symbol, sp.Indexed)):
        return expr
    if isinstance(expr, sp.Add):
        return sp.Add(*[_terms_with(a, p, atoms) for a in expr.args])
    if not (isinstance(expr, sp.Sum) and isinstance(expr.function, sp.Add)):
        return expr
    base = p.symbol.base if isinstance(p.symbol, sp.Indexed) else None

    def may_hold(term) -> bool:
        if term not in atoms:  # once per term: its atoms and the bases it holds at a symbolic index
            a = Atoms(term)
            atoms[term] = (a, frozenset(b for b, i in a.firsts if not i.is_Integer))
        a, symbolic = atoms[term]
        return p.occurs_in(a) or base in symbolic

    kept = [t for t in expr.function.args if may_hold(t)]
    if not kept or len(kept) == len(expr.function.args):
        return expr
    return sp.Sum(sp.Add(*kept), *expr.limits)


class _Deriver:
    def __init__(self, spec: ModelSpec, numeric=frozenset()):
        self.spec = spec
        self.numeric = set(numeric)
        self.m = SymbolicModel(spec)
        self.steps: list[Step] = []
        self.solutions: dict[str, sp.Expr] = {}
        self.Qsym = sp.Function("Q")(sp.Symbol("theta"), sp.Symbol("theta_old"))
        self._atoms: dict[sp.Basic, tuple[Atoms, frozenset]] = {}  # each term of Q's sums, for _terms_with

    def add(self, title, what, expr, param=None):
        self.steps.append(_step(title, what, expr, param))

    def density_note(self) -> str:
        """What a component is, after the mixture density (the family engine names its family)."""
        return ""

    def component_steps(self):
        """Steps between the mixture density and the likelihood (the family engine shows the log density)."""

    def model_steps(self):
        m = self.m
        self.add(
            "Mixture density",
            "The marginal density of one point, with the component z summed out" + self.density_note() + ".",
            m.density,
        )
        self.component_steps()
        self.add(
            "Log-likelihood",
            "The objective EM increases: the log of the mixture density, summed over the points.",
            Equation(sp.Symbol("ell"), m.loglik),
        )
        self.add(
            "Complete-data log-likelihood",
            "If z_nk = 1 told us that point n came from component k, the log-likelihood would be:",
            Equation(sp.Symbol("ell_c"), m.complete_loglik),
        )
        for c in m.comps:
            self.add(
                "E-step",
                f"Bayes' rule gives the responsibility of component {c} for point n "
                "(the posterior probability of z_n = {c} at the current parameters).".replace("{c}", str(c)),
                m.posterior(c),
            )
        self.add(
            "Q function",
            "Take the expectation of the complete-data log-likelihood under the E-step "
            "posterior: each z_nk becomes gamma_nk, computed at the old parameters and held fixed.",
            Equation(self.Qsym, m.Q_data),
        )
        self.prior_steps()
        if self.spec.labelled:
            self.labelled_steps()

    def prior_steps(self):
        """MAP-EM: the log prior and the objective the M-step maximises (nothing without priors)."""
        if not self.spec.priors:
            return
        m = self.m
        self.add(
            "Log prior (MAP-EM)",
            "MAP-EM maximises the log posterior log p(x | theta) + log p(theta); its M-step maximises "
            "Q + log p(theta). The prior, without its normalising constant ("
            + "; ".join(f"{p.target} ~ {p.kind}({_hyper_list(p)})" for p in self.spec.priors)
            + ")"
            + (
                f", on every coordinate: m_0 is the vector ({hyper_text(m.mean_prior.hyper[0])}, ..., "
                f"{hyper_text(m.mean_prior.hyper[0])}) and |mu - m_0|^2 = tr((mu - m_0)(mu - m_0)^T):"
                if getattr(m, "mean_prior", None) is not None
                else ":"
            ),
            Equation(sp.Function("log p")(sp.Symbol("theta")), m.log_prior),
        )
        self.add(
            "MAP objective",
            "From here on Q stands for Q + log p(theta), the objective of the MAP M-step.",
            Equation(sp.Symbol("Q"), m.Q),
        )

    def labelled_steps(self):
        """Semi-supervised EM (NYU Q3): points 1..M carry their component y_n, points M+1..N do not."""
        m = self.m
        M, y = sp.Symbol("M", integer=True, positive=True), sp.IndexedBase("y")
        n = m.n
        joint = lambda c, n: m.weight(c) * m.normal(c, m.point(n))  # noqa: E731
        if m.general:
            known = sp.Sum(sp.log(sp.Sum(sp.KroneckerDelta(m.j, y[n]) * joint(m.j, n), (m.j, 1, m.K))), (n, 1, M))
        else:
            known = sp.Sum(sp.log(sp.Add(*[sp.KroneckerDelta(c, y[n]) * joint(c, n) for c in m.comps])), (n, 1, M))
        unknown = sp.Sum(sp.log(m.over_components(lambda c: joint(c, n))), (n, M + 1, m.N))
        self.add(
            "Objective with labelled points",
            "Points 1..M come with their component y_n: they contribute log p(x_n, z_n = y_n), the joint; "
            "points M+1..N contribute log p(x_n), the marginal.",
            Equation(sp.Symbol("ell"), known + unknown),
        )
        self.add(
            "E-step with labelled points",
            "A labelled point's responsibilities are one-hot, gamma_nk = delta(k, y_n), at every iteration; only "
            "the unlabelled points get posterior responsibilities. Q keeps the same form, so the M-step "
            "updates below hold unchanged.",
            Equation(m.gamma[n, m.k], sp.KroneckerDelta(m.k, y[n])),
        )

    def stationary(self, p: Param, objective: sp.Expr, obj_name: str = "Q") -> sp.Expr:
        """Differentiate, set to zero and solve for p; record the steps; return the raw solution."""
        d = sp.diff(_terms_with(objective, p, self._atoms), p.symbol)
        self.add(
            f"Differentiate {obj_name} with respect to {p.name}",
            f"Only the terms of {obj_name} that contain {p.name} survive.",
            Equation(sp.Derivative(sp.Symbol(obj_name), p.symbol), d),
            p.name,
        )
        lin = linearise(d)
        cond = Equation(_with_counts(lin, self.m), 0)
        self.add(
            "Set the derivative to zero",
            "Factors that do not depend on the summation index move out of the sums "
            "(Kronecker deltas keep only the matching term); the stationarity condition is:",
            cond,
            p.name,
        )
        try:
            if p.name in self.numeric:
                raise DerivationError(f"{p.name}: a numeric M-step was asked for")
            sol = solve_for(lin, p.symbol, f"{obj_name}, parameter {p.name}")
        except DerivationError as exc:
            if p.vector or p.domain == "simplex":
                raise
            self.add(
                f"No closed form for {p.name}",
                f"{exc}. The M-step maximises {obj_name} over {p.name} numerically: it finds the root of the "
                "condition above (bracketed on the "
                f"{'log' if p.domain == 'positive' else 'logit' if p.domain == 'unit' else 'real'} "
                "scale), with the other parameters at their latest values, and keeps the old value if that "
                f"would not increase {obj_name}.",
                cond,
                p.name,
            )
            return _NoClosedForm(lin)
        self.add(
            f"Solve for {p.name}",
            "Solving the condition for the parameter gives its update.",
            Equation(p.symbol, _with_counts(sol, self.m)),
            p.name,
        )
        return sol

    def finish(self, p: Param, sol):
        if isinstance(sol, _NoClosedForm):
            self.solutions[p.name] = sol
            return
        folded = _normalise(sol, self.m)
        if folded != sol:
            sol = sp.factor_terms(folded)
            self.add(
                "Use the normalisation of the responsibilities",
                "Every point's responsibilities sum to one (sum_k gamma_nk = 1), so sum_k N_k = N.",
                Equation(p.symbol, _with_counts(sol, self.m)),
                p.name,
            )
        self.solutions[p.name] = sol

    def free_weights(self, weights: list[Param]):
        m = self.m
        lam = m.lam
        constraint = m.over_components(lambda c: m.pi_[c]) - 1
        L = sp.Symbol("Q") + lam * constraint
        self.add(
            "Lagrangian for the mixing weights",
            f"The weights must sum to one; add that constraint to Q with a Lagrange multiplier {lam}.",
            Equation(sp.Symbol("L"), L),
            weights[0].name if len(weights) == 1 else None,
        )
        objective = m.Q + lam * constraint
        by_lambda = {}
        for p in weights:
            by_lambda[p.name] = self.stationary(p, objective, "L")
        if m.general:
            sol_k = by_lambda[weights[0].name]
            total = sp.Sum(sol_k.subs(m.k, m.j), (m.j, 1, m.K))
        else:
            total = sp.Add(*by_lambda.values())
        total = linearise(total)
        self.add(
            "Impose the constraint", "Substitute the weights into sum_k pi_k = 1.", Equation(_with_counts(total, m), 1)
        )
        total = _normalise(total, m)
        self.add(
            "Use the normalisation of the responsibilities",
            "Every point's responsibilities sum to one (sum_k gamma_nk = 1), so sum_k N_k = N.",
            Equation(total, 1),
        )
        lam_value = solve_for(total - 1, lam, "Lagrange multiplier")
        why = (
            "The multiplier is minus the number of points."
            if lam_value == -m.N
            else "The constraint fixes the multiplier (the prior adds its pseudo-counts to the number of points)."
        )
        self.add("Solve for the multiplier", why, Equation(lam, lam_value))
        for p in weights:
            sol = sp.factor_terms(by_lambda[p.name].subs(lam, lam_value))
            self.add(
                f"Update of {p.name}",
                f"Put {lam} back into the stationarity condition.",
                Equation(p.symbol, _with_counts(sol, m)),
                p.name,
            )
            self.solutions[p.name] = sol

    # -- full covariance: matrix calculus ------------------------------------------------
    def precision_form(self):
        m = self.m
        self.add(
            "Precision and trace form",
            "Write Q with the precision Lambda_k = Sigma_k^-1 (Q is concave in Lambda_k, and maximising over "
            "Lambda_k is maximising over Sigma_k): log|Sigma_k| = -log|Lambda_k|, and a scalar equals its "
            "trace, tr(AB) = tr(BA), so (x_n - mu_k)^T Lambda_k (x_n - mu_k) = "
            "tr(Lambda_k (x_n - mu_k)(x_n - mu_k)^T).",
            Equation(self.Qsym, m.Q_precision),
        )

    def _involved(self, p: Param):
        """The components whose terms of Q contain p: its own, or all of them (shared, tied)."""
        m = self.m
        if p.name.endswith("_" + str(m.k)) and m.general:
            return [m.k]
        return [p.comp] if p.comp is not None else ([m.j] if m.general else m.comps)

    def _over(self, cs, f):
        """Add f(c) over the involved components (a sum over j for a general K)."""
        m = self.m
        if cs == [m.j]:
            return MatSum(f(m.j), (m.j, 1, m.K))
        return sp.MatAdd(*[f(c) for c in cs]).doit() if len(cs) > 1 else f(cs[0])

    def matrix_stationary(self, p: Param):
        """Mean vector or covariance matrix of a full-covariance model, by matrix calculus."""
        m = self.m
        n = m.n
        cs = self._involved(p)
        cov = p.matrix
        var = {c: m.precision(c) for c in cs} if cov else dict.fromkeys(cs, p.symbol)
        V = var[cs[0]]
        grads = {c: _matrix_gradient(m.logf_precision(c), var[c]) for c in cs}
        gradQ = self._over(cs, lambda c: MatSum(m.gamma[n, c] * grads[c], (n, 1, m.N)))
        prior = None
        if cov and m.wishart:
            prior = _matrix_gradient(m.wishart_term(cs[0], precision=True), V)
        elif not cov and m.mean_prior:
            prior = _matrix_gradient(m.normal_mean_term(cs[0]), V)
        if prior is not None:  # MAP-EM: the prior's gradient, once (outside the sums over the points)
            gradQ = sp.MatAdd(gradQ, prior)
        rules = (
            "Jacobi's formula d log|Lambda|/dLambda = Lambda^-1 (Lambda symmetric) and d tr(Lambda A)/dLambda = A^T"
            if cov
            else "d/dmu tr(Lambda (x - mu)(x - mu)^T) = -2 Lambda (x - mu) (Lambda symmetric)"
        )
        self.add(
            f"Differentiate Q with respect to {V}",
            f"Only the terms of Q{' and of the log prior' if prior is not None else ''} that contain {V} survive; "
            f"matrix calculus: {rules}.",
            Equation(sp.Derivative(sp.Symbol("Q"), V), gradQ),
            p.name,
        )

        def by_linearity(c):  # sum_n gamma_nc g(x_n): constants move out, terms free of x_n get N_c
            g = sp.expand(grads[c]) if not cov else grads[c]
            parts = []
            for t in sp.MatAdd.make_args(g):
                if not t.has(m.xn):
                    parts.append(m.count(c) * t)
                    continue
                coeff, mat = split_scalar(t)
                factors = list(mat.args) if isinstance(mat, sp.MatMul) else [mat]
                cut = next(i for i, f in enumerate(factors) if f.has(m.xn))
                inner = factors[cut:]
                inner = sp.MatMul(*inner) if len(inner) > 1 else inner[0]
                summed = MatSum(m.gamma[n, c] * inner, (n, 1, m.N))
                parts.append(coeff * (sp.MatMul(*factors[:cut], summed) if cut else summed))
            return sp.MatAdd(*parts).doit() if len(parts) > 1 else parts[0]

        conds = {c: by_linearity(c) for c in cs}
        cond = self._over(cs, lambda c: conds[c])
        if prior is not None:
            cond = sp.MatAdd(cond, prior).doit()
        self.add(
            "Set the derivative to zero",
            "Factors that do not depend on n move out of the sums over the points, and sum_n gamma_nk = N_k; "
            "the stationarity condition is:",
            Equation(_with_counts(cond, m), sp.ZeroMatrix(*V.shape)),
            p.name,
        )
        if cov:
            sol = self._solve_covariance(p, cs, conds, prior)
        else:
            sol = self._solve_mean(p, cs, conds, prior)
        subs = {m.precision(c): sp.Inverse(m.covariance(c)) for c in (m.comps if not m.general else [m.k, m.j])}
        sol = sol.xreplace(subs).doit() if not cov else sol
        target = m.covariance(cs[0]) if cov else p.symbol
        self.add(
            f"Solve for {target}",
            "Solving the condition gives the update" + (" (Sigma = Lambda^-1)." if cov else "."),
            Equation(target, _with_counts(sol, m)),
            p.name,
        )
        self.solutions[p.name] = sol

    def mclust_block(self, p: Param):
        """The covariances of an mclust model: Q over them, the decomposition, the block updates."""
        m = self.m
        name = self.spec.covariance
        cs = [m.k] if m.general else m.comps
        W = {c: MatSum(m.gamma[m.n, c] * m.scatter(c), (m.n, 1, m.N)) for c in cs + [m.j]}

        def term(c):
            return (
                -(
                    m.count_symbol(c) * sp.log(sp.Determinant(m.covariance(c)))
                    + sp.Trace(W[c] * sp.Inverse(m.covariance(c)))
                )
                / 2
            )

        q = sp.Sum(term(m.j), (m.j, 1, m.K)) if m.general else sp.Add(*[term(c) for c in cs])
        self.add(
            "Q as a function of the covariances",
            "With the means at their updates, the terms of Q that hold the covariances are (the gamma-weighted "
            "outer products summed over the points, by linearity, give the scatter W_k):",
            Equation(sp.Symbol("Q_Sigma"), q),
            p.name,
        )
        self.add(
            "Covariance decomposition",
            f"mclust's {name}: Sigma_k = lambda_k D_k A_k D_k^T with volume lambda_k = |Sigma_k|^(1/d), "
            f"diagonal shape A_k (|A_k| = 1) and orthogonal orientation D_k; {mclust.describe(name)}. "
            "Substituting, Q_Sigma = -1/2 sum_k [N_k d log lambda_k + tr(W_k D_k A_k^-1 D_k^T) / lambda_k].",
            Equation(
                sp.MatrixSymbol("Sigma_k", m.d, m.d),
                sp.Symbol("lambda_k", positive=True)
                * sp.MatrixSymbol("D_k", m.d, m.d)
                * sp.MatrixSymbol("A_k", m.d, m.d)
                * sp.MatrixSymbol("D_k", m.d, m.d).T,
            ),
            p.name,
        )
        for title, what, eq in mclust.derivation_steps(name, m.general):
            self.add(title, what, eq, p.name)
        self.solutions[p.name] = _Block(name, sp.Tuple(*[W[c] for c in cs]))

    def _solve_mean(self, p, cs, conds, prior=None):
        """sum_c (A_c mu + B_c) = 0; A_c = a_c M with one invertible M cancels, else mu = -(sum A)^-1 sum B.

        ``prior`` (MAP-EM) is the Normal prior's gradient, -(mu - m_0)/v0, added once: its coefficient
        of mu is a scalar, -I/v0, so no single matrix cancels and the general form is taken.
        """
        m = self.m
        V = p.symbol
        if prior is not None:
            a_p, b_p = _linear_in(prior, V)
            extra_A = sp.MatAdd(*[-a * sp.Identity(V.shape[0]) for a in a_p]).doit()
            extra_B = sp.MatAdd(*b_p).doit()
        split = {c: _linear_in(conds[c], V) for c in cs}
        A = {c: sp.MatAdd(*split[c][0]).doit() if len(split[c][0]) > 1 else split[c][0][0] for c in cs}
        B = {c: sp.MatAdd(*split[c][1]).doit() if len(split[c][1]) > 1 else split[c][1][0] for c in cs}
        coef = {c: split_scalar(A[c]) for c in cs}
        mats = {M for _, M in coef.values()}
        generic = cs == [m.j] and any(
            a.name.endswith("_j") for M in mats if M is not None for a in M.atoms(sp.MatrixSymbol)
        )
        if len(mats) == 1 and not generic and prior is None:  # one matrix, the same for every component
            (M,) = mats
            inner = {}
            for c in cs:
                s_, rest = split_scalar(B[c])
                if M is not None:
                    if not (isinstance(rest, sp.MatMul) and rest.args[0] == M):
                        break
                    rest = sp.MatMul(*rest.args[1:]) if len(rest.args) > 2 else rest.args[1]
                inner[c] = s_ * rest
            else:
                a = _normalise(linearise(self._sum_scalars(cs, lambda c: coef[c][0])), m)
                if M is not None:
                    self.add(
                        "Cancel the precision",
                        f"{M} is invertible, so it cancels from every term.",
                        Equation(
                            _with_counts(sp.MatAdd(a * V, self._over(cs, lambda c: inner[c])).doit(), m),
                            sp.ZeroMatrix(*V.shape),
                        ),
                        p.name,
                    )
                b = self._fold_points(cs, inner)
                return (-1 / a) * b
        total_A = self._over(cs, lambda c: (-A[c]).doit())
        total_B = self._over(cs, lambda c: B[c])
        if prior is not None:
            total_A, total_B = sp.MatAdd(total_A, extra_A).doit(), sp.MatAdd(total_B, extra_B).doit()
        return sp.Inverse(total_A) * total_B

    def _sum_scalars(self, cs, f):
        m = self.m
        if cs == [m.j]:
            return sp.Sum(f(m.j), (m.j, 1, m.K))
        return sp.Add(*[f(c) for c in cs])

    def _fold_points(self, cs, inner):
        """sum_c sum_n gamma_nc Y_n = sum_n Y_n when every component contributes the same Y_n."""
        m = self.m
        n = m.n
        total = self._over(cs, lambda c: inner[c])
        if len(cs) == 1 and cs != [m.j]:
            return total
        summands = set()
        for c in cs:
            t = inner[c]
            coeff, mat = split_scalar(t)
            if not (isinstance(mat, MatSum) and mat.limit == (n, 1, m.N)):
                return total
            s_, body = split_scalar(mat.function)
            if s_ != m.gamma[n, c]:
                return total
            summands.add((coeff, body))
        if len(summands) != 1:
            return total
        ((coeff, body),) = summands
        folded = coeff * MatSum(body, (n, 1, m.N))
        self.add(
            "Use the normalisation of the responsibilities",
            "Every point's responsibilities sum to one (sum_k gamma_nk = 1), so the sums over the components "
            "of the gamma-weighted sums over the points are plain sums over the points.",
            Equation(_with_counts(total, m), folded),
            None,
        )
        return folded

    def _solve_covariance(self, p, cs, conds, prior=None):
        """a Lambda^-1 + B = 0 with a scalar a: Sigma = Lambda^-1 = -B / a.

        ``prior`` (MAP-EM) is the inverse Wishart's gradient, added once: (nu + d + 1)/2 Lambda^-1 - Psi/2.
        """
        m = self.m
        inv = {sp.Inverse(m.precision(c)) for c in cs}
        if len(inv) != 1:
            raise DerivationError(f"{p.name}: cannot isolate one covariance in {conds}")
        a_terms: dict = {}
        B: dict = {}
        extra_a: list = []  # the prior's coefficients of Lambda^-1, and its other terms (coefficient, matrix)
        extra_B: list = []
        for t in sp.MatAdd.make_args(prior) if prior is not None else ():
            c_, M = split_scalar(t)
            if M in inv:
                extra_a.append(c_)
            else:
                extra_B.append((c_, M))
        for c in cs:
            for t in sp.MatAdd.make_args(conds[c]):
                c_, M = split_scalar(t)
                if M in inv:
                    a_terms.setdefault(c, []).append(c_)
                elif t.has(*[m.precision(c) for c in cs]):
                    raise DerivationError(f"{p.name}: the condition is not linear in the covariance: {t}")
                else:
                    B.setdefault(c, []).append((c_, M))
        a = _normalise(linearise(self._sum_scalars(cs, lambda c: sp.Add(*a_terms[c]))), m) + sp.Add(*extra_a)
        coeffs = {c_ for c in cs for c_, _ in B[c]}
        if len(coeffs) == 1:  # the scatter's coefficient taken out: Sigma = (W + Psi) / (N_k + nu + d + 1)
            (c0,) = coeffs
            total = self._over(cs, lambda c: sp.MatAdd(*[M for _, M in B[c]]).doit())
            return sp.cancel(-c0 / a) * sp.MatAdd(total, *[(c_ / c0) * M for c_, M in extra_B]).doit()
        total = self._over(cs, lambda c: sp.MatAdd(*[c_ * M for c_, M in B[c]]).doit())
        return (-1 / a) * sp.MatAdd(total, *[c_ * M for c_, M in extra_B]).doit()

    def run(self) -> Derivation:
        self.model_steps()
        self.parameter_steps()
        return self.result()

    def parameter_steps(self):
        m = self.m
        weights = [p for p in m.params if p.kind == "weight"]
        if weights and weights[0].domain == "simplex":
            self.free_weights(weights)
        if m.full:
            self.precision_form()
        for p in m.params:
            if p.name in self.solutions:
                continue
            if p.block:
                self.mclust_block(p)
                continue
            if m.full and p.kind in ("mean", "variance"):
                self.matrix_stationary(p)
                continue
            self.finish(p, self.stationary(p, m.Q))

    def result(self) -> Derivation:
        m = self.m
        updates, method, notes = self.order()
        for u in updates:
            if u.numeric or u.block:
                continue
            self.add(
                f"M-step update of {u.name}",
                (
                    "Maximises Q over this parameter with the others at their latest values."
                    if u.conditional
                    else "The maximiser of Q for this parameter."
                )
                + (f" Uses the new {', '.join(u.uses)}." if u.uses else ""),
                Equation(u.param.symbol, u.display),
                u.name,
            )
        return Derivation(self.spec, m, tuple(self.steps), tuple(updates), method, tuple(notes))

    def order(self):
        params = list(self.m.params)

        def body(name):
            sol = self.solutions[name]
            if isinstance(sol, _Block):
                return sol.scatter
            return sol.derivative if isinstance(sol, _NoClosedForm) else sol

        atoms = {p.name: Atoms(body(p.name)) for p in params}
        uses = {p.name: tuple(q.name for q in params if q is not p and q.occurs_in(atoms[p.name])) for p in params}
        reach = {a: set(uses[a]) for a in uses}
        changed = True
        while changed:
            changed = False
            for a in reach:
                new = set().union(*(reach[b] for b in reach[a])) - reach[a] if reach[a] else set()
                if new:
                    reach[a] |= new
                    changed = True
        cyclic = {a for a in reach if a in reach[a]}
        order: list[str] = []
        pending = [p.name for p in params]
        while pending:  # natural order, but never before what it uses (cycles excepted)
            for a in pending:
                if all(b in order or (a in cyclic and b in reach and a in reach[b]) for b in uses[a]):
                    order.append(a)
                    pending.remove(a)
                    break
        by_name = {p.name: p for p in params}
        numeric = {a for a in order if isinstance(self.solutions[a], _NoClosedForm)}
        blocks = {a: sol.name for a, sol in self.solutions.items() if isinstance(sol, _Block)}
        updates = [
            Update(
                by_name[a],
                body(a),
                _with_counts(body(a), self.m),
                uses[a],
                a in cyclic or (a in numeric and bool(uses[a])),
                a in numeric,
                blocks.get(a),
            )
            for a in order
        ]
        notes = []
        if cyclic:
            ring = [a for a in order if a in cyclic]
            notes.append(
                f"The updates of {', '.join(ring)} depend on each other, so emsym derives no joint closed "
                "form: each is the maximiser of Q over its own parameter with the others held at their "
                "latest values, in the order shown (an ECM step: the log-likelihood still never decreases)."
            )
        for a, name in blocks.items():
            notes.append(
                f"{a}: the {name} covariances ({mclust.describe(name)}) are updated by blocks -- orientation, "
                "shape, volume -- each maximising Q with the others held; "
                + (
                    "no closed form exists, so the passes repeat to convergence, from several starts (a local "
                    "maximum of Q, never lower than at the previous covariances)."
                    if name in mclust.NO_CLOSED_FORM
                    else "one pass is the closed-form joint maximiser."
                )
            )
        for a in sorted(numeric, key=order.index):
            notes.append(f"{a} has no closed-form update: the M-step maximises Q over it numerically.")
        for a in order:
            later = [b for b in uses[a] if b not in cyclic or a not in cyclic]
            if later and a not in numeric:
                notes.append(f"{a} is evaluated at the new {', '.join(later)}; together they are the joint maximiser.")
        return updates, ("ECM" if cyclic else "EM"), notes


Deriver = _Deriver  # the generic stages, reused by emsym.family_derive and emsym.instantiate
step = _step
Block, NoClosedForm = _Block, _NoClosedForm
with_counts = _with_counts


def derive(spec: ModelSpec, numeric: frozenset[str] = frozenset()) -> Derivation:
    """Derive the EM updates of a model variant (uncached; see ``emsym.cache``).

    A parameter whose stationarity condition sympy cannot solve gets a numeric M-step (the
    derivation says so).  ``numeric`` forces that path for the named parameters -- for
    teaching, and to test the numeric path against a known closed form.
    """
    return _Deriver(spec, numeric).run()
