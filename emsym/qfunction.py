"""The symbolic model of a variant: density, complete-data log-likelihood, E-step, Q.

``SymbolicModel(spec)`` builds, with sympy, every object the derivation needs from the
spec alone -- there is one definition of a component's weight, mean, variance and log
density, and the E-step, Q and the compiled numeric code are all made from it.

Index conventions: n runs over the N points, j over components inside a sum, k is a
generic component (general K), i runs over coordinates inside a sum and l is a generic
coordinate (d-dimensional points).  ``gamma[n, k]`` is the responsibility of component
k for point n; ``x[n]`` (or ``x[n, i]``) is the data.

>>> from emsym.spec import load_spec
>>> m = SymbolicModel(load_spec("standard"))
>>> [p.name for p in m.params]
['pi_1', 'pi_2', 'mu_1', 'mu_2', 'sigma2_1', 'sigma2_2']
>>> from emsym.printing import text
>>> text(m.logf(1, m.n))
'-log(2*pi*sigma2_1)/2 - (x_n - mu_1)**2/(2*sigma2_1)'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import sympy as sp

from . import mclust
from .options import Linked
from .printing import Equation, Normal, QuadForm
from .priors import log_prior
from .spec import Fixed, ModelSpec

Index = Union[int, sp.Symbol]  # noqa: UP007 - a runtime alias: a concrete component/point, or a symbolic index

__all__ = ["Atoms", "EMObjects", "MatSum", "Param", "SymbolicModel", "split_scalar"]


@dataclass(frozen=True)
class Param:
    """One free parameter: the symbol Q is differentiated by, and how to name it.

    ``comp`` is the component it belongs to, or None when it is shared by all
    components (a shared mean, a tied variance, Bernoulli theta) or generic (general K).
    """

    symbol: sp.Expr
    name: str
    kind: str  # "weight" | "mean" | "variance"
    domain: str  # "simplex" | "unit" | "real" | "positive" | "pd" (positive definite matrix)
    comp: int | None
    vector: bool = False  # one value per coordinate (a mean, or a diagonal variance, in d dimensions)
    # what else stands for it in other updates: a family's value linked in groups is solved as a group's
    # value a, but the other parameters' updates hold it as theta_k (its IndexedBase)
    appears_as: sp.Basic | None = None

    @property
    def matrix(self) -> bool:
        """A full covariance matrix (d x d), derived by matrix calculus."""
        return self.domain == "pd"

    @property
    def block(self) -> bool:
        """All K covariances of an mclust-constrained model, updated together (a (K, d, d) value)."""
        return self.domain == "mclust"

    def occurs_in(self, expr: sp.Basic | Atoms) -> bool:
        """Whether ``expr`` depends on this parameter (sums over components included).

        ``expr`` may be its ``Atoms`` (collected once when many parameters are asked about one expression).
        """
        a = expr if isinstance(expr, Atoms) else Atoms(expr)
        if self.appears_as is not None and self.appears_as in a.bases:
            return True
        if self.block:  # stands for every Sigma_c
            return any(m.name.startswith("Sigma_") for m in a.matrices)
        if isinstance(self.symbol, sp.MatrixSymbol):  # mu_k also stands for mu_j inside sums over j
            generic = {self.symbol.name[:-2] + "_j"} if self.symbol.name.endswith("_k") else set()
            return self.symbol in a.matrices or any(m.name in generic for m in a.matrices)
        if isinstance(self.symbol, sp.Symbol):
            return self.symbol in a.symbols
        base = self.symbol.base
        return base in a.bases if self.comp is None else (base, self.comp) in a.firsts


class Atoms:
    """The matrix symbols, indexed objects and symbols of an expression, collected once."""

    def __init__(self, expr: sp.Basic):
        self.matrices = expr.atoms(sp.MatrixSymbol)
        indexed = expr.atoms(sp.Indexed)
        self.symbols = expr.atoms(sp.Symbol)
        self.bases = {i.base for i in indexed}
        self.firsts = {(i.base, i.indices[0]) for i in indexed}  # (base, component index)


class MatSum(sp.MatrixExpr):
    """A sum of matrices, sum_{var=a}^{b} f(var), for the full-covariance derivation.

    sympy's ``Sum`` cannot hold a matrix summand inside matrix products (it is taken for a
    non-commutative scalar), so the sums over points (sum_n gamma_nk (x_n - mu_k)(x_n - mu_k)^T)
    and over components of matrix expressions are this matrix expression instead.
    """

    def __new__(cls, function, limit):
        return sp.Basic.__new__(cls, function, sp.Tuple(*limit))

    @property
    def function(self) -> sp.MatrixExpr:
        return self.args[0]

    @property
    def limit(self) -> tuple:
        return tuple(self.args[1])

    @property
    def shape(self):
        return self.args[0].shape

    def _eval_transpose(self):
        return MatSum(self.function.T, self.limit)


def split_scalar(t: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """t = c * M with c a scalar (1 when there is none) and M a matrix expression (None if t is scalar)."""
    if isinstance(t, sp.MatMul):
        scal = [a for a in t.args if not getattr(a, "is_Matrix", False)]
        mats = [a for a in t.args if getattr(a, "is_Matrix", False)]
        return sp.Mul(*scal), (sp.MatMul(*mats) if len(mats) > 1 else mats[0]) if mats else None
    if getattr(t, "is_Matrix", False):
        return sp.Integer(1), t
    return t, None


def _exact(v) -> sp.Rational:
    return sp.Rational(v.numerator, v.denominator)


class EMObjects:
    """The objects of EM written from a model's weight, component density and log joint: the mixture
    density, the likelihoods, the E-step, Q.  Shared by the Gaussian's ``SymbolicModel`` and the
    family engine's ``FamilyModel``, which supply ``weight``, ``normal``, ``point``, ``log_joint``,
    ``over_components``, ``log_prior``, the index symbols and ``general``."""

    # supplied by the model (declared here for the type checker)
    spec: Any
    general: bool
    n: Any
    j: Any
    N: Any
    K: Any
    comps: list
    gamma: Any
    z: Any
    weight: Callable[[Any], sp.Expr]
    normal: Callable[[Any, sp.Expr], sp.Expr]
    point: Callable[[Any], sp.Expr]
    log_joint: Callable[[Any, Any], sp.Expr]
    over_components: Callable[[Callable], sp.Expr]
    log_prior: Any

    def over_points(self, f: Callable[[Index], sp.Expr]) -> sp.Expr:
        return sp.Sum(f(self.n), (self.n, 1, self.N))

    # -- the objects of EM ----------------------------------------------------------------
    @property
    def density(self) -> Equation:
        x = sp.Symbol("x", real=True)
        return Equation(sp.Function("p")(x), self.over_components(lambda c: self.weight(c) * self.normal(c, x)))

    @property
    def complete_loglik(self) -> sp.Expr:
        return self.over_points(lambda n: self.over_components(lambda c: self.z[n, c] * self.log_joint(c, n)))

    @functools.cached_property
    def Q_data(self) -> sp.Expr:
        """Expected complete-data log-likelihood: z[n, c] replaced by gamma[n, c] (built once: each
        parameter's step reads it, and at K = 50 building it took 40 ms)."""
        return self.over_points(lambda n: self.over_components(lambda c: self.gamma[n, c] * self.log_joint(c, n)))

    @functools.cached_property
    def Q(self) -> sp.Expr:
        """The objective of the M-step: Q, plus log p(theta) for MAP-EM."""
        return self.Q_data + self.log_prior if self.spec.priors else self.Q_data

    @property
    def loglik(self) -> sp.Expr:
        return self.over_points(
            lambda n: sp.log(self.over_components(lambda c: self.weight(c) * self.normal(c, self.point(n))))
        )

    def posterior(self, c: Index) -> Equation:
        """E-step: gamma_{nc} = w_c N_c(x_n) / sum_j w_j N_j(x_n)."""
        n, x = self.n, self.point(self.n)

        def term(j):  # unevaluated, so 1/2 N_1 / (1/2 N_1 + 1/2 N_2) stays as written
            return sp.Mul(self.weight(j), self.normal(j, x), evaluate=False)

        den = getattr(self, "_evidence", None)  # the same for every component: built once
        if den is None:
            if self.general:
                den = sp.Sum(term(self.j), (self.j, 1, self.K))
            else:
                den = sp.Add(*[term(j) for j in self.comps], evaluate=False)
            self._evidence = den
        return Equation(self.gamma[n, c], sp.Mul(term(c), sp.Pow(den, -1, evaluate=False), evaluate=False))

    def count(self, c: Index) -> sp.Sum:
        """N_c = sum_n gamma_nc, the effective number of points of component c."""
        return sp.Sum(self.gamma[self.n, c], (self.n, 1, self.N))

    def count_symbol(self, c: Index) -> sp.Symbol:
        return sp.Symbol(f"N_{c}", positive=True)


class SymbolicModel(EMObjects):
    """Everything symbolic about one variant; built once per spec (see module docstring)."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        pos_int = {"integer": True, "positive": True}
        self.n, self.j, self.k, self.i, self.l = sp.symbols("n j k i l", **pos_int)
        self.N = sp.Symbol("N", **pos_int)
        self.general = spec.general_k
        self.K = sp.Symbol("K", **pos_int) if spec.general_k else spec.components
        self.vector = spec.vector
        self.d: Any = sp.Symbol("d", **pos_int) if spec.general_d else spec.dim
        self.x = sp.IndexedBase("x", real=True)
        self.gamma = sp.IndexedBase("gamma", nonnegative=True)
        self.z = sp.IndexedBase("z", nonnegative=True)
        self.pi_ = sp.IndexedBase("pi", positive=True)
        self.theta = sp.Symbol("theta", positive=True)
        self.mu_ = sp.IndexedBase("mu", real=True)
        self.m_fixed = sp.IndexedBase("m", real=True)  # fixed vector means, bound numerically
        self.sigma2_ = sp.IndexedBase("sigma2", positive=True)
        self.s_fixed = sp.IndexedBase("s", positive=True)  # fixed diagonal variances, bound numerically
        self.diag = self.vector and spec.covariance == "diag"
        self.mclust = spec.covariance in mclust.DECOMPOSED  # a constrained covariance block
        self.full = self.vector and (spec.covariance == "full" or self.mclust)
        self.mu_shared = sp.Symbol("mu", real=True)
        self.sigma2_tied = sp.Symbol("sigma2", positive=True)
        self.lam = sp.Symbol("lambda", real=True)
        self.comps = [self.k] if self.general else list(range(1, int(spec.components) + 1))
        self.params = tuple(self._params())

    # -- the parameters ----------------------------------------------------------------
    def _params(self):
        s = self.spec
        if s.mixing == "free":
            for c in self.comps:
                yield Param(self.pi_[c], self._name("pi", c), "weight", "simplex", self._comp(c))
        elif s.mixing == "bernoulli":
            yield Param(self.theta, "theta", "weight", "unit", None)
        v = self.vector
        if s.mean == "free":
            for c in self.comps:
                sym = self.mean(c) if self.full else self.mu_[c, self.l] if v else self.mu_[c]
                yield Param(sym, self._name("mu", c), "mean", "real", self._comp(c), v)
        elif s.mean == "shared":
            sym = self.mean(1) if self.full else self.mu_[self.l] if v else self.mu_shared
            yield Param(sym, "mu", "mean", "real", None, v)
        elif isinstance(s.mean, Linked):
            yield from self._linked_params(s.mean, "mean", "real")
        if self.mclust:
            yield Param(sp.MatrixSymbol("Sigma", self.d, self.d), "Sigma", "variance", "mclust", None)
            return
        if self.full:
            if s.variance == "free":
                for c in self.comps:
                    yield Param(self.covariance(c), self._name("Sigma", c), "variance", "pd", self._comp(c))
            elif s.variance == "tied":
                yield Param(self.covariance(1), "Sigma", "variance", "pd", None)
            return
        if isinstance(s.variance, Linked):
            yield from self._linked_params(s.variance, "variance", "positive")
            return
        if s.variance == "free":
            for c in self.comps:
                sym = self.sigma2_[c, self.l] if self.diag else self.sigma2_[c]
                yield Param(sym, self._name("sigma2", c), "variance", "positive", self._comp(c), self.diag)
        elif s.variance == "tied":
            sym = self.sigma2_[self.l] if self.diag else self.sigma2_tied
            yield Param(sym, "sigma2", "variance", "positive", None, self.diag)

    def _linked_params(self, opt: Linked, kind: str, domain: str):
        """A linked option: the components left free keep their own parameter; each name is one parameter."""
        base, own = (self.mu_, "mu") if kind == "mean" else (self.sigma2_, "sigma2")
        for c, e in zip(self.comps, opt.entries):
            if e is None:
                yield Param(base[c], self._name(own, c), kind, domain, c)
        for name in opt.names:
            yield Param(self._linked_symbol(name, domain), name, kind, domain, None)

    @staticmethod
    def _linked_symbol(name: str, domain: str) -> sp.Symbol:
        return sp.Symbol(name, positive=True) if domain == "positive" else sp.Symbol(name, real=True)

    def _linked_value(self, opt: Linked, c: Index, own, domain: str) -> sp.Expr:
        e = opt.entries[int(c) - 1]
        if e is None:
            return own
        if isinstance(e, tuple):
            return _exact(e[0]) * self._linked_symbol(e[1], domain)
        return _exact(e)

    def _comp(self, c):
        return None if self.general else c

    @staticmethod
    def _name(base: str, c) -> str:
        return f"{base}_{c}"

    # -- one component -----------------------------------------------------------------
    def weight(self, c: Index) -> sp.Expr:
        s = self.spec
        if s.mixing == "free":
            return self.pi_[c]
        if s.mixing == "equal":
            return sp.Integer(1) / self.K
        if s.mixing == "bernoulli":  # component 2 is z = 1
            return self.theta if c == 2 else 1 - self.theta
        assert isinstance(s.mixing, Fixed)
        return _exact(s.mixing.values[c - 1])

    def mean(self, c: Index, coord: Index | None = None) -> sp.Expr:
        """Component c's mean (its coordinate ``coord`` for vector data; a d x 1 matrix symbol
        for a full covariance, where the derivation works with whole vectors)."""
        s = self.spec
        if self.full:
            name = "mu" if s.mean == "shared" else f"m_{c}" if isinstance(s.mean, Fixed) else f"mu_{c}"
            return sp.MatrixSymbol(name, self.d, 1)
        if isinstance(s.mean, Linked):
            return self._linked_value(s.mean, c, self.mu_[c], "real")
        if isinstance(s.mean, Fixed):
            if self.vector:
                return self.m_fixed[c, coord]
            return _exact(s.mean.values[c - 1])
        if s.mean == "shared":
            return self.mu_[coord] if self.vector else self.mu_shared
        return self.mu_[c, coord] if self.vector else self.mu_[c]

    def variance(self, c: Index, coord: Index | None = None) -> sp.Expr:
        """Component c's variance (its coordinate ``coord`` for a diagonal covariance)."""
        s = self.spec
        if self.diag:
            if isinstance(s.variance, Fixed):
                return self.s_fixed[c, coord]
            return self.sigma2_[coord] if s.variance == "tied" else self.sigma2_[c, coord]
        if isinstance(s.variance, Linked):
            return self._linked_value(s.variance, c, self.sigma2_[c], "positive")
        if isinstance(s.variance, Fixed):
            return _exact(s.variance.values[c - 1])
        if s.variance == "tied":
            return self.sigma2_tied
        return self.sigma2_[c]

    # -- full covariance: matrix symbols ---------------------------------------------------
    def covariance(self, c: Index) -> sp.MatrixSymbol:
        """Component c's covariance matrix Sigma_c (Sigma when tied; known values when fixed)."""
        return sp.MatrixSymbol("Sigma" if self.spec.variance == "tied" else f"Sigma_{c}", self.d, self.d)

    def precision(self, c: Index) -> sp.MatrixSymbol:
        """Lambda_c = Sigma_c^-1: Q is concave in the precision, the variable the derivation uses."""
        return sp.MatrixSymbol("Lambda" if self.spec.variance == "tied" else f"Lambda_{c}", self.d, self.d)

    @property
    def xn(self) -> sp.MatrixSymbol:
        """Point x_n as a d x 1 matrix symbol (full covariance)."""
        return sp.MatrixSymbol("x_n", self.d, 1)

    def scatter(self, c: Index, n: Index | None = None) -> sp.MatrixExpr:
        """(x_n - mu_c)(x_n - mu_c)^T, the outer product whose gamma-weighted sum is the scatter."""
        u = self.xn - self.mean(c)
        return u * u.T

    def logf_precision(self, c: Index) -> sp.Expr:
        """log N(x_n | mu_c, Lambda_c^-1) with the trace trick: the form the derivation differentiates."""
        L = self.precision(c)
        return -self.d * sp.log(2 * sp.pi) / 2 + sp.log(sp.Determinant(L)) / 2 - sp.Trace(L * self.scatter(c)) / 2

    @property
    def Q_precision(self) -> sp.Expr:
        """Q with precisions and traces (full covariance), plus the log prior for MAP-EM."""
        q = self.over_points(
            lambda n: self.over_components(
                lambda c: self.gamma[n, c] * (sp.log(self.weight(c)) + self.logf_precision(c))
            )
        )
        if not self.spec.priors:
            return q
        on_weights = tuple(p for p in self.spec.priors if p.target == "weights")
        weights = log_prior(on_weights, self, lambda t, c, i: self.pi_[c], lambda t: False, lambda t: False)
        return q + weights + self.matrix_priors(precision=True)

    def logf(self, c: Index, n: Index) -> sp.Expr:
        """log N(x_n | mean_c, variance_c) (times I in d dimensions), written out."""
        if self.full:  # display form; the numbers come from a Cholesky factor (see compile.py)
            u = self.xn - self.mean(c)
            return (
                -self.d * sp.log(2 * sp.pi) / 2
                - sp.log(sp.Determinant(self.covariance(c))) / 2
                - QuadForm(u, self.covariance(c)) / 2
            )
        if self.diag:
            i = self.i
            v = self.variance(c, i)
            return (
                -sp.Sum(sp.log(2 * sp.pi * v), (i, 1, self.d)) / 2
                - sp.Sum((self.x[n, i] - self.mean(c, i)) ** 2 / v, (i, 1, self.d)) / 2
            )
        v = self.variance(c)
        if self.vector:
            i = self.i
            sq = sp.Sum((self.x[n, i] - self.mean(c, i)) ** 2, (i, 1, self.d))
            return -self.d * sp.log(2 * sp.pi * v) / 2 - sq / (2 * v)
        return -sp.log(2 * sp.pi * v) / 2 - (self.x[n] - self.mean(c)) ** 2 / (2 * v)

    def log_joint(self, c: Index, n: Index) -> sp.Expr:
        """log p(x_n, z_n = c) = log w_c + log f_c(x_n)."""
        return sp.log(self.weight(c)) + self.logf(c, n)

    def normal(self, c: Index, point: sp.Expr) -> sp.Expr:
        """Display form N(x | mean_c, variance_c)."""
        if self.full:
            return Normal(point, self.mean(c), self.covariance(c))
        if self.diag:
            s = self.spec
            var = (
                sp.Symbol("s", positive=True)
                if isinstance(s.variance, Fixed)
                else sp.Symbol("sigma2", positive=True)
                if s.variance == "tied"
                else self.sigma2_[c]
            )
            return Normal(point, self.mean_display(c), sp.Function("diag")(var))
        if self.vector:
            mean = self.mean_display(c)
            return Normal(point, mean, self.variance(c), sp.true)
        return Normal(point, self.mean(c), self.variance(c))

    def mean_display(self, c: Index) -> sp.Expr:
        s = self.spec
        if not self.vector or self.full:
            return self.mean(c)
        if isinstance(s.mean, Fixed):
            return self.m_fixed[c]
        if s.mean == "shared":
            return sp.Symbol("mu", real=True)
        return self.mu_[c]

    # -- sums over components and points --------------------------------------------------
    def over_components(self, f: Callable[[Index], sp.Expr]) -> sp.Expr:
        """sum over components of f(c): an explicit sum for a concrete K, a Sum for K."""
        if self.general:
            return sp.Sum(f(self.j), (self.j, 1, self.K))
        return sp.Add(*[f(c) for c in self.comps])

    def point(self, n: Index) -> sp.Expr:
        if self.full:
            return self.xn
        return sp.Symbol("x_" + str(n), real=True) if self.vector else self.x[n]

    @property
    def log_prior(self) -> sp.Expr:
        """log p(theta) up to a constant, for MAP-EM (0 without priors): a Dirichlet on the weights,
        a Normal on every mean coordinate, an inverse gamma on every variance, an inverse Wishart on
        every full covariance."""
        s = self.spec

        def value(target, c, coord):
            if target == "weights":
                return self.pi_[c]
            return (self.mean if target == "mean" else self.variance)(c, coord)

        return log_prior(
            tuple(p for p in s.priors if not (self.full and p.target in ("mean", "variance"))),
            self,
            value,
            lambda t: self.vector and (t == "mean" or (t == "variance" and self.diag)),
            lambda t: (t == "mean" and s.mean == "shared") or (t == "variance" and s.variance == "tied"),
        ) + self.matrix_priors(precision=False)

    def matrix_priors(self, precision: bool) -> sp.Expr:
        """A full covariance's priors in matrix form: Normal on the mean vectors, inverse Wishart on the
        covariances (in the precision for the derivation), each over the components or once when shared."""
        if not self.full:
            return sp.Integer(0)
        return self.normal_mean_prior() + self.wishart_prior(precision)

    @property
    def mean_prior(self):
        """A Normal prior on the mean vectors of a full covariance, or None."""
        return next((p for p in self.spec.priors if p.target == "mean"), None) if self.full else None

    def normal_mean_term(self, c: Index) -> sp.Expr:
        """log N(mu_c | m_0, v0 I) up to a constant, -|mu_c - m_0|^2 / (2 v0) written as a trace (the form the
        matrix rules differentiate); m_0 is the vector (m0, ..., m0), bound when run."""
        v0 = self.mean_prior.hyper[1]
        u = self.mean(c) - self.prior_mean
        return -sp.Trace(u * u.T) / (2 * _exact(v0))

    @property
    def prior_mean(self) -> sp.MatrixSymbol:
        """m_0, the Normal prior's mean vector (m0, ..., m0): a d x 1 symbol the compiler binds."""
        return sp.MatrixSymbol("m_0", self.d, 1)

    def normal_mean_prior(self) -> sp.Expr:
        if self.mean_prior is None:
            return sp.Integer(0)
        if self.spec.mean == "shared":
            return self.normal_mean_term(1)
        return self.over_components(self.normal_mean_term)

    @property
    def wishart(self):
        """The inverse Wishart prior on the covariances, or None."""
        return next((p for p in self.spec.priors if p.kind == "inverse-wishart"), None)

    def scale_matrix(self) -> sp.MatrixExpr:
        """Psi of the inverse Wishart prior: s I for a number s, else a d x d symbol bound to the file's matrix."""
        psi = self.wishart.hyper[1]
        if isinstance(psi, tuple):
            return sp.MatrixSymbol("Psi", self.d, self.d)
        return _exact(psi) * sp.Identity(self.d)

    def wishart_term(self, c: Index, precision: bool) -> sp.Expr:
        """log InvWishart(Sigma_c | nu, Psi) up to a constant: -(nu + d + 1)/2 log|Sigma_c| - tr(Psi Sigma_c^-1)/2,
        or in the precision Lambda_c = Sigma_c^-1: (nu + d + 1)/2 log|Lambda_c| - tr(Psi Lambda_c)/2."""
        nu = _exact(self.wishart.hyper[0])
        if precision:
            L = self.precision(c)
            return (nu + self.d + 1) * sp.log(sp.Determinant(L)) / 2 - sp.Trace(self.scale_matrix() * L) / 2
        S = self.covariance(c)
        return -(nu + self.d + 1) * sp.log(sp.Determinant(S)) / 2 - sp.Trace(self.scale_matrix() * sp.Inverse(S)) / 2

    def wishart_prior(self, precision: bool) -> sp.Expr:
        """The inverse Wishart's log density summed over the covariances (once when tied); 0 without one."""
        if self.wishart is None:
            return sp.Integer(0)
        if self.spec.variance == "tied":
            return self.wishart_term(1, precision)
        return self.over_components(lambda c: self.wishart_term(c, precision))
