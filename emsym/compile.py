"""Compile a ``Derivation`` into numpy functions: the E-step pieces, the M-step, Q.

The derived sympy expressions are translated node by node into numpy closures (the
role lambdify plays, extended to sums over the data and over coordinates), so the runner
executes exactly the derived updates -- there is no second, hand-written M-step.

Array layout: the data ``X`` has shape (d, n) -- one row per coordinate, points along the
last axis -- and the responsibilities ``R`` have shape (K, n).  A sum over points reduces
the last axis; a sum over coordinates reduces axis 0; a generic coordinate l is vectorised
along axis 0, so one compiled update gives a whole mean vector.

Parameter values live in a dict keyed by parameter name (``mu_1``, ``theta``, ...): a float,
or a (d,) array for a vector mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from . import mclust
from .derive import Derivation
from .exceptions import DataError, NotPositiveDefinite
from .family_plan import product, total
from .options import VARIANCE_FLOOR_FACTOR, Linked
from .qfunction import MatSum, split_scalar
from .seeding import kmeanspp, overall_variance
from .spec import Fixed, ModelSpec

__all__ = ["CompiledModel", "compile_derivation"]

Fn = Callable[[dict[str, Any]], Any]


class _Compiler:
    """Translate sympy nodes into closures over an environment dict.

    The environment holds ``X`` (d, n), ``R`` (K, n), ``params`` and ``memo``; sums over
    the data that contain no parameter are memoised for one M-step (N_k, sum_n gamma x).
    """

    def __init__(self, derivation: Derivation):
        self.m = derivation.model
        self.params = self.m.params
        self._lookup: dict = {}
        spec = self.m.spec
        self.fixed = {}  # constant IndexedBases -> one (d,) vector per component
        if isinstance(spec.mean, Fixed) and self.m.vector:
            self.fixed[self.m.m_fixed] = [np.array([float(v) for v in vec]) for vec in spec.mean.values]
        if isinstance(spec.variance, Fixed) and self.m.diag:
            self.fixed[self.m.s_fixed] = [np.array([float(v) for v in vec]) for vec in spec.variance.values]
        self.fixed_matrices = {}  # full covariance: fixed means m_c (d, 1) and covariances Sigma_c (d, d)
        if self.m.full and isinstance(spec.mean, Fixed):
            for c, vec in zip(self.m.comps, spec.mean.values):
                self.fixed_matrices[self.m.mean(c)] = np.array([[float(v)] for v in vec])
        if self.m.full and isinstance(spec.variance, Fixed):
            for c, mat in zip(self.m.comps, spec.variance.values):
                self.fixed_matrices[self.m.covariance(c)] = np.array([[float(v) for v in row] for row in mat])
        if self.m.mean_prior is not None:  # the Normal prior's mean vector m_0 = (m0, ..., m0)
            m0 = float(self.m.mean_prior.hyper[0])
            self.fixed_matrices[self.m.prior_mean] = np.full((int(self.m.d), 1), m0)
        if self.m.full and self.m.wishart is not None and isinstance(self.m.wishart.hyper[1], tuple):
            psi = self.m.wishart.hyper[1]  # the inverse Wishart's scale matrix Psi
            self.fixed_matrices[self.m.scale_matrix()] = np.array([[float(v) for v in row] for row in psi])

    def param_for(self, atom):
        """The parameter an atom (Symbol or Indexed) stands for, or None."""
        if atom not in self._lookup:
            self._lookup[atom] = next((p for p in self.params if p.occurs_in(atom)), None)
        return self._lookup[atom]

    def is_param_free(self, expr) -> bool:
        return not any(self.param_for(a) is not None for a in expr.atoms(sp.Symbol, sp.Indexed, sp.MatrixSymbol))

    def __call__(self, expr: sp.Basic) -> Fn:
        m = self.m
        if isinstance(expr, sp.MatrixExpr):  # first: MatMul and MatAdd are also Mul and Add
            return self.matrix(expr)
        if expr.is_Number or expr in (sp.pi, sp.E):
            value = float(expr)
            return lambda env: value
        if expr == m.N:
            return lambda env: env["X"].shape[1]
        if isinstance(expr, (sp.Symbol, sp.Indexed)):
            return self.leaf(expr)
        if isinstance(expr, sp.Add):
            return total([self(a) for a in expr.args])
        if isinstance(expr, sp.Mul):
            return product([self(a) for a in expr.args])
        if isinstance(expr, sp.Pow):
            base, ex = self(expr.base), expr.exp
            if ex == 2:
                return lambda env: np.square(base(env))
            if ex == -1:
                return lambda env: 1.0 / base(env)
            power = self(ex)
            return lambda env: np.power(base(env), power(env))
        if isinstance(expr, sp.log) and isinstance(expr.args[0], sp.Determinant):  # log|Sigma|, stably
            mat = self(expr.args[0].arg)
            return lambda env: np.linalg.slogdet(mat(env))[1]
        if isinstance(expr, sp.Trace):
            mat = self(expr.arg)
            return lambda env: np.trace(mat(env))
        if isinstance(expr, sp.log):
            arg = self(expr.args[0])
            return lambda env: np.log(arg(env))
        if isinstance(expr, sp.exp):
            arg = self(expr.args[0])
            return lambda env: np.exp(arg(env))
        if isinstance(expr, sp.Sum):
            return self.sum(expr)
        raise TypeError(f"emsym cannot compile {type(expr).__name__}: {expr}")  # pragma: no cover

    def leaf(self, expr) -> Fn:
        m = self.m
        p = self.param_for(expr)
        if p is not None:
            name = p.name
            if p.vector:
                return lambda env: env["params"][name][:, None]  # (d, 1) against (d, n)
            return lambda env: env["params"][name]
        if isinstance(expr, sp.Indexed):
            if expr.base == m.x:
                if len(expr.indices) == 1:
                    return lambda env: env["X"][0]
                return lambda env: env["X"]
            if expr.base == m.gamma:
                row = int(expr.indices[1]) - 1
                return lambda env: env["R"][row]
            if expr.base in self.fixed:
                vec = self.fixed[expr.base][int(expr.indices[0]) - 1][:, None]
                return lambda env: vec
        raise TypeError(f"emsym cannot compile the symbol {expr}")  # pragma: no cover

    # -- matrix expressions (full covariance) ------------------------------------------------
    def matrix(self, expr: sp.MatrixExpr) -> Fn:
        """Matrix nodes: a point x_n is the (d, n) data, a mean (d, 1), a covariance (d, d)."""
        m = self.m
        if isinstance(expr, sp.MatrixSymbol):
            if expr == m.xn:
                return lambda env: env["X"]
            if expr in self.fixed_matrices:
                const = self.fixed_matrices[expr]
                return lambda env: const
            p = self.param_for(expr)
            if p is None:
                raise TypeError(f"emsym cannot compile the matrix symbol {expr}")  # pragma: no cover
            name = p.name
            if p.block:  # Sigma_c of an mclust block: row c of the (K, d, d) value
                row = int(expr.name.rsplit("_", 1)[1]) - 1
                return lambda env: env["params"][name][row]
            if p.matrix:
                return lambda env: env["params"][name]
            return lambda env: env["params"][name][:, None]
        if isinstance(expr, sp.MatAdd):
            parts = [self(a) for a in expr.args]
            return lambda env: sum((p(env) for p in parts[1:]), parts[0](env))
        if isinstance(expr, sp.MatMul):
            scal = [self(a) for a in expr.args if not getattr(a, "is_Matrix", False)]
            mats = [self(a) for a in expr.args if getattr(a, "is_Matrix", False)]

            def matmul(env):
                out = mats[0](env)
                for f in mats[1:]:
                    out = out @ f(env)
                for f in scal:
                    out = out * f(env)
                return out

            return matmul
        if isinstance(expr, sp.Inverse):
            arg = self(expr.arg)
            return lambda env: np.linalg.inv(arg(env))
        if isinstance(expr, sp.Transpose):  # (mu_k - m_0)^T of a Normal prior on the mean
            arg = self(expr.arg)
            return lambda env: np.swapaxes(arg(env), -1, -2)
        if isinstance(expr, sp.Identity):
            eye = np.eye(int(expr.shape[0]))
            return lambda env: eye
        if isinstance(expr, MatSum):
            return self.matsum(expr)
        raise TypeError(f"emsym cannot compile {type(expr).__name__}: {expr}")  # pragma: no cover

    def matsum(self, expr: MatSum) -> Fn:
        """sum_n w_n v(x_n) as (d, n) @ w, and sum_n w_n u(x_n) v(x_n)^T as (U * w) @ V^T."""
        m = self.m
        var, _, _ = expr.limit
        if var != m.n:  # pragma: no cover - sums over components appear only for a general K
            raise TypeError(f"emsym cannot compile a matrix sum over {var}")
        coeff, body = split_scalar(expr.function)
        weight = self(coeff)
        if isinstance(body, sp.MatMul) and body.shape[1] != 1 and len(body.args) == 2 and body.args[1].shape[0] == 1:
            left, right = self(body.args[0]), self(sp.transpose(body.args[1]).doit())

            def outer(env):
                w = weight(env)
                U, V = left(env), right(env)
                return (U * w) @ V.T if np.ndim(w) else w * (U @ V.T)

            fn = outer
        elif body.shape[1] == 1:
            vec = self(body)

            def column(env):
                w, V = weight(env), vec(env)
                return (V @ w)[:, None] if np.ndim(w) else w * V.sum(axis=1, keepdims=True)

            fn = column
        else:  # pragma: no cover - the derivation produces only the two forms above
            raise TypeError(f"emsym cannot compile the matrix sum {expr}")
        return _memoised(expr, fn) if self.is_param_free(expr.function) else fn

    def sum(self, expr: sp.Sum) -> Fn:
        m = self.m
        (var, a, b), *rest = expr.limits
        if rest:
            return self(sp.Sum(sp.Sum(expr.function, (var, a, b)), *rest))
        if var == m.i:  # over coordinates
            body = self(expr.function)
            return lambda env: np.sum(body(env), axis=0)
        if var != m.n:  # pragma: no cover - general K is never compiled
            raise TypeError(f"emsym cannot compile a sum over {var}")
        f = expr.function
        factors = sp.Mul.make_args(f)
        data = [fac for fac in factors if fac.has(m.n)]
        if len(data) == 2 and len(factors) == 2 and all(isinstance(d, sp.Indexed) for d in data):
            u, v = self(data[0]), self(data[1])

            def reduce(env):  # sum_n u_n v_n as one BLAS product: (d, n) @ (n,) or (n,) @ (n,)
                a, b = u(env), v(env)
                out = np.dot(a, b) if np.ndim(a) >= np.ndim(b) else np.dot(b, a)
                return out[:, None] if np.ndim(out) == 1 else out  # keep (d, 1), like the parameters

            fn = reduce
        else:
            body = self(f)

            def fn(env):  # a (d, n) summand sums to a (d, 1) column, matching (d, 1) parameters
                val = body(env)
                return np.sum(val, axis=-1, keepdims=np.ndim(val) == 2)

        return _memoised(expr, fn) if self.is_param_free(f) else fn


def _memoised(expr, fn: Fn) -> Fn:
    """fn once per M-step: a sum over the data that holds no parameter (N_k, sum_n gamma_nk x_n).

    Keyed by the sum's text, made once here: equal sums in different updates share the value,
    and a lookup costs a string hash, not sympy's structural comparison.
    """
    key = sp.srepr(expr)

    def memo(env):
        cache = env["memo"]
        if key not in cache:
            cache[key] = fn(env)
        return cache[key]

    return memo


class CompiledModel:
    """Numeric face of a derivation: E-step pieces, ordered M-step, Q, and views."""

    def __init__(self, derivation: Derivation):
        if not derivation.spec.concrete:
            raise ValueError(
                "only a spec with a whole number of components and dimension compiles; use spec.instantiate()"
            )
        self.derivation = derivation
        self.spec: ModelSpec = derivation.spec  # type: ignore[assignment]
        m = derivation.model
        self.K: int = int(self.spec.components)
        self.d: int = int(self.spec.dim)
        self.vector = m.vector
        self.params = m.params
        self.method = derivation.method
        self.update_order = tuple(u.name for u in derivation.updates)
        comp = _Compiler(derivation)
        self._weight = [comp(m.weight(c)) for c in m.comps]
        self.full = m.full
        if m.full:  # log N(x | mu, Sigma) through a Cholesky factor (stable; see _gaussian_logf)
            self._logf = [_gaussian_logf(comp(m.mean(c)), comp(m.covariance(c)), self.d) for c in m.comps]
        else:
            self._logf = [comp(m.logf(c, m.n)) for c in m.comps]
        self._updates = [
            (
                u.name,
                _block_update(u.block, [comp(W) for W in u.expr], [comp(m.count(c)) for c in m.comps])
                if u.block
                else _numeric_update(comp(u.expr), u.param)
                if u.numeric
                else comp(u.expr),
            )
            for u in derivation.updates
        ]
        self._Q = None if m.full else comp(m.Q)
        self._log_prior = comp(m.log_prior) if self.spec.priors else None
        self._mean = [comp(m.mean(c, m.l) if m.vector else m.mean(c)) for c in m.comps]
        self._variance = [
            comp(m.covariance(c) if m.full else m.variance(c, m.l) if m.diag else m.variance(c)) for c in m.comps
        ]
        self.diag = m.diag
        self._vector = {p.name for p in m.params if p.vector}
        self._matrix = {p.name for p in m.params if p.matrix}
        self._block = {p.name for p in m.params if p.block}

    # -- E-step pieces -------------------------------------------------------------------
    def weights(self, params: dict) -> np.ndarray:
        env = {"params": params}
        return np.array([float(w(env)) for w in self._weight])

    def log_joint(self, X: np.ndarray, params: dict, out: np.ndarray | None = None) -> np.ndarray:
        """log w_k + log f_k(x_n) for every component and point, shape (K, n)."""
        if out is None:
            out = np.empty((self.K, X.shape[1]))
        env = {"X": X, "params": params}
        with np.errstate(divide="ignore"):
            logw = np.log(self.weights(params))
        for k, logf in enumerate(self._logf):
            out[k] = logf(env)
            out[k] += logw[k]
        return out

    # -- M-step --------------------------------------------------------------------------
    def m_step(self, X: np.ndarray, R: np.ndarray, params: dict, exact: bool = False) -> dict:
        """Apply the derived updates in order; later ones see earlier new values.

        For an ECM derivation one pass is one conditional-maximisation cycle; ``exact=True``
        repeats the cycle until the parameters stop moving, which reaches the joint
        maximiser of Q (an exact M-step).  For an EM derivation one pass is already exact.
        """
        new = dict(params)
        env = {"X": X, "R": R, "params": new, "memo": {}}
        cycles = 1000 if exact and self.derivation.method == "ECM" else 1
        for _ in range(cycles):
            before = dict(new)
            for name, fn in self._updates:
                value = fn(env)
                new[name] = self._shape(name, value)
            if cycles > 1 and all(np.allclose(new[k], before[k], rtol=1e-14, atol=0) for k in self.update_order):
                break
        return new

    def update_one(self, name: str, X: np.ndarray, R: np.ndarray, params: dict) -> Any:
        """The derived update of one parameter at the given values of the others."""
        env = {"X": X, "R": R, "params": params, "memo": {}}
        fn = dict(self._updates)[name]
        value = fn(env)
        return self._shape(name, value)

    def _shape(self, name: str, value):
        if name in self._block:
            blocks = np.asarray(value, dtype=float).reshape(self.K, self.d, self.d)
            return (blocks + np.swapaxes(blocks, 1, 2)) / 2
        if name in self._matrix:
            a = np.asarray(value, dtype=float).reshape(self.d, self.d)
            return (a + a.T) / 2  # symmetric by construction; this removes rounding asymmetry
        return np.asarray(value, dtype=float).reshape(self.d) if self._is_vector(name) else float(value)

    def Q(self, X: np.ndarray, R: np.ndarray, params: dict) -> float:
        """The compiled Q function: sum_n sum_k gamma_nk (log w_k + log f_k(x_n))."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self._Q is None:  # full covariance: the same sum, from the Cholesky log densities
                return float(np.sum(R * self.log_joint(X, params))) + self.log_prior(params)
            return float(np.sum(self._Q({"X": X, "R": R, "params": params, "memo": {}})))

    @property
    def n_free(self) -> int:
        """Number of free scalar parameters (for BIC/AIC): K - 1 free weights, d per vector mean."""
        count = 0
        for p in self.params:
            count += (
                mclust.n_covariance_params(self.spec.covariance, self.K, self.d)
                if p.block
                else self.d * (self.d + 1) // 2
                if p.name in self._matrix
                else self.d
                if self._is_vector(p.name)
                else 1
            )
        if any(p.domain == "simplex" for p in self.params):
            count -= 1  # the weights sum to one
        return count

    def _is_vector(self, name: str) -> bool:
        return name in self._vector

    # -- views ---------------------------------------------------------------------------
    def components(self, params: dict) -> list[dict]:
        """The per-component view: weight, mean (d,), covariance (d, d)."""
        env = {"params": params}
        w = self.weights(params)
        out = []
        for k in range(self.K):
            mean = np.asarray(self._mean[k](env), dtype=float).reshape(self.d)
            var = np.asarray(self._variance[k](env), dtype=float)
            if self.full:
                cov = var.reshape(self.d, self.d).copy()
            else:
                var = var.reshape(-1)
                cov = np.diag(np.broadcast_to(var, (self.d,))) if self.diag else float(var[0]) * np.eye(self.d)
            out.append({"weight": float(w[k]), "mean": mean, "covariance": cov})
        return out

    # -- the protocol the runner and the check use (emsym.family_compile has the same) ---------
    def default_init(self, X: np.ndarray, seed: int = 0, labels: np.ndarray | None = None) -> dict:
        """k-means++ means, the overall data variance, equal weights (SUTD notes, section 1.4).

        A shared mean starts at the data mean; with free variances and a shared mean the
        variances start spread from 1/2 to 2 times the overall variance (see the comment).
        With labelled points (``labels``, 1..K, 0 = unknown), a component that has labelled
        points starts at their mean, so the labels and the starting point agree.
        """
        rng = np.random.default_rng(seed)
        means = kmeanspp(X, self.K, rng)
        if labels is not None:
            for k in range(self.K):
                own = labels == k + 1
                if own.any():
                    means[k] = X[own].mean(axis=0)
        var = overall_variance(X)
        grand = X.mean(axis=0)
        spec = self.spec
        # With a shared mean, equal weights and equal variances make the components identical,
        # a fixed point EM never leaves; spread the free variances (x1/2 .. x2) to break the tie.
        shared_free = spec.mean == "shared" and spec.variance == "free"
        spread = np.geomspace(0.5, 2.0, self.K) if shared_free else np.ones(self.K)
        comps = []
        for k in range(self.K):
            comps.append(
                {
                    "weight": 1.0 / self.K if spec.mixing in ("free", "bernoulli") else None,
                    "mean": (grand if spec.mean == "shared" else means[k]) if isinstance(spec.mean, str) else None,
                    "variance": var * spread[k] if isinstance(spec.variance, str) else None,
                }
            )
        _apply_links(comps, spec.mean, "mean", [float(m[0]) for m in means])
        _apply_links(comps, spec.variance, "variance", [var] * self.K)
        return self.params_from_components(comps, where="default init")

    def check_data(self, X: np.ndarray, where: str = "data") -> None:
        """Any finite real data fits a Gaussian (finiteness is checked by the runner)."""

    def data_scale(self, X: np.ndarray) -> float:
        """The overall variance of the data (the scale of the stopping rule and of the variance floor)."""
        with np.errstate(over="ignore", invalid="ignore"):
            spread = overall_variance(X)
        if not np.isfinite(spread):
            raise DataError(
                f"data: the values are too large to fit (largest |x| = {float(np.max(np.abs(X))):.3g}; their "
                "squares overflow double precision); rescale the data, e.g. divide every column by its "
                "largest value"
            )
        return spread

    def floor(self, spread: float, variance_floor: float | None) -> float:
        """The variance floor: by default 1e-6 times the overall variance of the data."""
        floor = variance_floor if variance_floor is not None else VARIANCE_FLOOR_FACTOR * spread
        if floor <= 0:
            raise DataError("data: all points are identical (zero variance); a mixture cannot be fitted")
        return floor

    def log_prior(self, params: dict) -> float:
        """log p(theta) up to a constant (MAP-EM), 0 without priors."""
        if self._log_prior is None:
            return 0.0
        return float(np.sum(self._log_prior({"params": params})))  # a sum over coordinates may keep an axis

    def guard(self, old: dict, new: dict, floor: float, warn) -> dict:
        """Keep the previous value of a non-finite update; hold variances (eigenvalues) at the floor."""
        for p in self.params:
            v = new[p.name]
            if not np.all(np.isfinite(v)):
                new[p.name] = old[p.name]
                warn(
                    f"{p.name}: the update is not finite (a component with no points, N_k = 0); kept the previous value"
                )
            elif p.matrix or p.block:
                mats = v if p.block else v[None]
                lows = np.linalg.eigvalsh(mats)[:, 0]
                if np.any(lows < floor):  # lift the smallest eigenvalue to the floor: Sigma + (floor - low) I
                    lift = np.maximum(floor - lows, 0.0)
                    fixed = mats + lift[:, None, None] * np.eye(mats.shape[-1])
                    new[p.name] = fixed if p.block else fixed[0]
                    low = float(lows.min())
                    warn(
                        f"{p.name} became (nearly) singular: smallest eigenvalue {low:.3g} is below the floor "
                        f"{floor:.3g} (a component collapsing onto a point or a subspace); added "
                        f"{float(lift.max()):.3g} I so the smallest eigenvalue is the floor"
                    )
            elif p.kind == "variance" and np.any(np.asarray(v) < floor):
                low = float(np.min(v))
                new[p.name] = np.maximum(v, floor) if np.ndim(v) else floor
                warn(
                    f"{p.name} fell to {low:.3g}, below the variance floor {floor:.3g} "
                    f"(a component collapsing onto a point); set to the floor"
                )
        return new

    def moved(self, old: dict, new: dict, spread: float) -> float:
        """The largest parameter change of one iteration on the data's scale (for the stopping rule)."""
        if old is new:
            return 0.0
        a, b = self.components(old), self.components(new)
        sd = np.sqrt(spread)
        return max(
            max(
                abs(x["weight"] - y["weight"]),
                float(np.max(np.abs(x["mean"] - y["mean"]))) / sd,
                float(np.max(np.abs(x["covariance"] - y["covariance"]))) / spread,
            )
            for x, y in zip(a, b)
        )

    def random_truth(self, rng: np.random.Generator) -> dict:
        """Random true parameters that respect the model's constraints."""
        spec, K, d = self.spec, self.K, self.d
        w = rng.dirichlet(np.full(K, 4.0))
        tied_cov = self._random_covariance(d, rng, 1.0) if self.full else None
        block = mclust.random_covariances(spec.covariance, K, d, rng) if any(p.block for p in self.params) else None
        comps = []
        for k in range(K):
            comps.append(
                {
                    "weight": float(w[k])
                    if spec.mixing == "free"
                    else ((0.35 if k == 0 else 0.65) if spec.mixing == "bernoulli" else None),
                    "mean": (np.zeros(d) if spec.mean == "shared" else 4.0 * k + rng.normal(0, 0.5, d))
                    if isinstance(spec.mean, str)
                    else None,
                    "variance": (
                        block[k]
                        if block is not None
                        else self._random_covariance(d, rng, 1.0)
                        if self.full and spec.variance == "free"
                        else tied_cov
                        if self.full and spec.variance == "tied"
                        else (np.ones(d) if self.diag else 1.0)
                        if spec.variance == "tied"
                        else (rng.uniform(0.5, 2.0, d) if self.diag else float(rng.uniform(0.5, 2.0))) * (1 + k)
                    )
                    if isinstance(spec.variance, str)
                    else None,
                }
            )
        _apply_links(comps, spec.mean, "mean", [4.0 * k - 2.0 for k in range(K)])  # linked: a consistent truth
        _apply_links(comps, spec.variance, "variance", [1.0 + k for k in range(K)])
        return self.params_from_components(comps, where="check truth")

    @staticmethod
    def _random_covariance(d: int, rng, scale: float) -> np.ndarray:
        """A random symmetric positive definite matrix with eigenvalues in [0.5, 2] * scale."""
        Qm, _ = np.linalg.qr(rng.normal(size=(d, d)))
        return scale * (Qm * rng.uniform(0.5, 2.0, d)) @ Qm.T

    def sample(self, params: dict, n: int, rng) -> np.ndarray:
        comps = self.components(params)
        z = rng.choice(self.K, size=n, p=np.array([c["weight"] for c in comps]))
        X = np.empty((n, self.d))
        for k, c in enumerate(comps):
            idx = z == k
            X[idx] = c["mean"] + rng.standard_normal((idx.sum(), self.d)) @ np.linalg.cholesky(c["covariance"]).T
        return X

    def directions(self, names: list[str], params: dict):
        """Feasible unit perturbations of the named parameters: (label, {name: delta})."""
        free_w = [p.name for p in self.params if p.domain == "simplex"]
        for name in names:
            v = params[name]
            if name in free_w:
                for other in free_w:
                    if other != name:
                        yield f"{name} - {other}", {name: 1.0, other: -1.0}
            elif np.ndim(v) == 2:  # a covariance matrix: symmetric directions E_ij + E_ji
                for i in range(len(v)):
                    for j in range(i + 1):
                        e = np.zeros_like(v)
                        e[i, j] = e[j, i] = 1.0
                        yield f"{name}[{i},{j}]", {name: e}
            elif np.ndim(v):
                for i in range(len(v)):
                    e = np.zeros(len(v))
                    e[i] = 1.0
                    yield f"{name}[{i}]", {name: e}
            else:
                yield name, {name: 1.0}

    def _value(self, v, vector: bool = False):
        """A parameter value in the runner's form: float, or a (d,) array for a vector parameter."""
        a = np.asarray(v, dtype=float)
        if vector:
            return np.broadcast_to(a.reshape(-1), (self.d,)).astype(float) if a.size in (1, self.d) else a
        return float(a.reshape(-1)[0])

    def _matrix_value(self, given, where: str) -> np.ndarray:
        """A (d, d) covariance from sigma^2 (times I), a diagonal, or a full symmetric positive definite matrix."""
        a = np.asarray(given, dtype=float)
        if a.ndim == 0:
            return float(a) * np.eye(self.d)
        if a.ndim == 1 and a.size == self.d:
            return np.diag(a)
        if a.shape != (self.d, self.d):
            raise DataError(f"{where} should be a {self.d}x{self.d} matrix, but got shape {a.shape}")
        if not np.allclose(a, a.T, rtol=1e-12, atol=1e-14):
            raise DataError(f"{where} should be symmetric, but got {a.tolist()}")
        low = float(np.linalg.eigvalsh(a)[0])
        if low <= 0:
            raise DataError(
                f"{where} should be positive definite, but its smallest eigenvalue is {low:.3g} "
                f"(the matrix is singular or indefinite): {a.tolist()}"
            )
        return (a + a.T) / 2

    def _refuse_matrix(self, given, where: str):
        if given is not None and np.ndim(given) == 2:
            raise DataError(
                f"{where} has off-diagonal entries, but the model's covariance is "
                f"{self.spec.covariance}; use covariance: full in the model for a full matrix"
            )
        return given

    def params_from_components(self, comps: list[dict], where: str = "init") -> dict:
        """Map per-component initial values to the variant's parameters, checking constraints.

        ``comps[k]`` has ``weight`` (float or None), ``mean`` ((d,) array or None) and
        ``variance`` (float or None); None means "not given" and is allowed only where the
        model fixes the value.
        """
        if len(comps) != self.K:
            raise DataError(f"{where}: the model has {self.K} components, but the file gives {len(comps)}")
        params: dict = {}
        for p in self.params:
            field = {"weight": "weight", "mean": "mean", "variance": "variance"}[p.kind]
            if p.block:  # one covariance per component; the first M-step makes them satisfy the model
                params[p.name] = np.array(
                    [
                        self._matrix_value(
                            _need(c, field, f"{where}: components[{k}].covariance"),
                            f"{where}: components[{k}].covariance",
                        )
                        for k, c in enumerate(comps)
                    ]
                )
                continue
            if p.name == "theta":
                params[p.name] = _need(comps[1], field, f"{where}: components[1].weight (theta)")
                continue
            link = getattr(self.spec, field) if field in ("mean", "variance") else None
            if isinstance(link, Linked) and p.name in link.names:  # value = coefficient * name
                implied = [
                    float(np.ravel(c[field])[0]) / float(e[0])
                    for c, e in zip(comps, link.entries)
                    if isinstance(e, tuple) and e[1] == p.name and c.get(field) is not None
                ]
                if not implied:
                    raise DataError(f"{where}: give a {field} for a component linked to {p.name!r}")
                params[p.name] = implied[0]  # the others must agree: checked with the model's view below
                continue
            if p.comp is not None:
                given = _need(comps[p.comp - 1], field, f"{where}: components[{p.comp - 1}].{field}")
                if p.matrix:
                    params[p.name] = self._matrix_value(given, f"{where}: components[{p.comp - 1}].covariance")
                    continue
                self._refuse_matrix(given, f"{where}: components[{p.comp - 1}].covariance")
                if not p.vector and np.size(given) > 1 and not np.allclose(given, np.ravel(given)[0]):
                    raise DataError(
                        f"{where}: components[{p.comp - 1}].{field} has different values per coordinate, "
                        f"but the model's {field} is one number per component (covariance "
                        f"{self.spec.covariance}); use covariance: diag for one per coordinate"
                    )
                params[p.name] = self._value(given, p.vector)
                continue
            values = [
                self._matrix_value(c.get(field), f"{where}: components[{i}].covariance")
                if p.matrix
                else self._value(self._refuse_matrix(c.get(field), f"{where}: components[{i}].covariance"), p.vector)
                for i, c in enumerate(comps)
                if c.get(field) is not None
            ]
            if not values:
                raise DataError(f"{where}: give a {field} for the components (the model's {p.name})")
            first = values[0]
            if any(not np.allclose(v, first, rtol=1e-12, atol=0) for v in values[1:]):
                kind = "shared" if p.kind == "mean" else "tied"
                raise DataError(
                    f"{where}: the model's {field} is {kind}, so every component needs the same "
                    f"{field}, but got {[_show(v) for v in values]}"
                )
            params[p.name] = first
        # values the model fixes must agree where they are given
        view = self.components(params)
        for k, (given, model) in enumerate(zip(comps, view)):
            for field, value in (
                ("weight", model["weight"]),
                ("mean", model["mean"]),
                (
                    "variance",
                    model["covariance"]
                    if self.full
                    else np.diag(model["covariance"])
                    if self.diag
                    else model["covariance"][0, 0],
                ),
            ):
                g = given.get(field)
                if g is not None and field == "variance" and self.full:
                    g = self._matrix_value(g, f"{where}: components[{k}].covariance")
                elif g is not None and field == "variance":
                    self._refuse_matrix(g, f"{where}: components[{k}].covariance")
                if g is not None and not np.allclose(g, value, rtol=1e-9, atol=1e-12):
                    link = getattr(self.spec, field, None) if field in ("mean", "variance") else None
                    if isinstance(link, Linked) and (link.entries[k] is None or isinstance(link.entries[k], tuple)):
                        shown = ", ".join("null" if e is None else str(e) for e in link.as_list())
                        raise DataError(
                            f"{where}: components[{k}].{field} is {_show(np.ravel(g)[0])}, but the model links the "
                            f"{field}s as [{shown}], which with the other components' values makes it "
                            f"{_show(np.ravel(value)[0])}; give starting values that satisfy the link"
                        )
                    if isinstance(link, Linked):  # a fixed entry of a link list: one number in 1-d
                        g, value = np.ravel(g)[0], np.ravel(value)[0]
                    raise DataError(
                        f"{where}: components[{k}].{field} is {_show(g)}, but the model fixes it "
                        f"at {_show(value)}; leave it out or make it match"
                    )
        total = sum(c["weight"] for c in view)
        if any(c["weight"] < 0 for c in view) or not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-9):
            raise DataError(
                f"{where}: the weights should be >= 0 and sum to 1, but they are "
                f"{[_show(c['weight']) for c in view]} (sum {total:g})"
            )
        return params


def _apply_links(comps: list[dict], option, field: str, guesses: list[float]) -> None:
    """Starting values that satisfy linked constraints: each name by least squares from the guesses."""
    if not isinstance(option, Linked):
        return
    value = {}
    for name in option.names:
        pairs = [(float(e[0]), g) for e, g in zip(option.entries, guesses) if isinstance(e, tuple) and e[1] == name]
        value[name] = sum(c * g for c, g in pairs) / sum(c * c for c, _ in pairs)
    for comp, e, g in zip(comps, option.entries, guesses):
        comp[field] = g if e is None else float(e[0]) * value[e[1]] if isinstance(e, tuple) else None


def _block_update(name: str, scatter: list, counts: list) -> Fn:
    """The mclust M-step: the derived scatter matrices W_k and counts N_k, then the block ascent."""

    def update(env):
        W = np.array([np.asarray(f(env), dtype=float) for f in scatter])
        N = np.array([float(f(env)) for f in counts])
        S, _ = mclust.constrained_covariances(name, (W + np.swapaxes(W, 1, 2)) / 2, N, env["params"]["Sigma"])
        return S

    return update


def _gaussian_logf(mean: Fn, cov: Fn, d: int) -> Fn:
    """log N(x_n | mu, Sigma) for all points: with Sigma = L L^T, -d/2 log 2 pi - sum log L_ii - |L^-1 (x - mu)|^2 / 2.

    L^-1 (x - mu) is one matrix product with the inverse Cholesky factor (the precision form of the
    derivation, as scikit-learn's precisions_cholesky): a general solve against the triangular L
    for every point cost about 12 times more (40 ms against 3 ms per component at n = 2e5, d = 8).
    A covariance that is not positive definite raises ``NotPositiveDefinite`` (the runner
    regularises before that can happen; a user's init file is checked when read).
    """
    const = -0.5 * d * math.log(2 * math.pi)

    def logf(env):
        S = cov(env)
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite(S) from None
        Linv = np.linalg.inv(L)  # d x d: cheap next to the d x n product below
        Y = Linv @ env["X"]
        Y -= Linv @ np.reshape(mean(env), (d, 1))
        out = np.einsum("ij,ij->j", Y, Y)
        out *= -0.5
        out += const - np.sum(np.log(np.diag(L)))
        return out

    return logf


def _show(v):
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a.tolist()


def _need(comp: dict, field: str, where: str):
    value = comp.get(field)
    if value is None:
        raise DataError(f"{where} is missing; the model estimates it, so give a starting value")
    return value


def _numeric_update(derivative: Fn, param) -> Fn:
    """An update with no closed form: the root of dQ/dparam, found on the parameter's natural scale.

    Q is concave in each of these parameters, so the root of the derivative is the maximiser.
    The root is bracketed by doubling steps from the current value, then refined by the
    Illinois (regula falsi) method; the current value is kept when no sign change is found.
    """
    name, domain = param.name, param.domain
    maps: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        "positive": (np.exp, np.log),
        "unit": (lambda t: 1 / (1 + np.exp(-t)), lambda p: np.log(p / (1 - p))),
    }
    to_p, to_t = maps.get(domain, (lambda t: t, lambda p: p))

    def update(env):
        params = env["params"]
        old = float(params[name])

        def g(t):
            params[name] = float(to_p(t))
            return float(derivative(env))

        try:
            t0 = float(to_t(old)) if np.isfinite(old) else 0.0
            step = 1.0 if domain != "real" else max(1.0, abs(t0))
            a, fa = t0, g(t0)
            b, fb = a, fa
            for _ in range(60):  # bracket: walk uphill (the derivative points towards the maximum)
                b = a + (step if fa > 0 else -step)
                fb = g(b)
                if np.sign(fb) != np.sign(fa) or fb == 0:
                    break
                a, fa, step = b, fb, 2 * step
            else:
                return old
            side = 0
            for _ in range(200):
                c = (a * fb - b * fa) / (fb - fa) if fb != fa else 0.5 * (a + b)
                fc = g(c)
                if fc == 0 or abs(b - a) < 1e-13 * max(1.0, abs(c)):
                    break
                if np.sign(fc) == np.sign(fb):
                    b, fb = c, fc
                    if side == -1:
                        fa /= 2
                    side = -1
                else:
                    a, fa = c, fc
                    if side == 1:
                        fb /= 2
                    side = 1
            return float(to_p(c))
        finally:
            params[name] = old

    return update


def compile_derivation(derivation: Derivation):
    """The numeric model of a derivation: ``CompiledModel`` for a Gaussian, ``FamilyCompiledModel`` otherwise."""
    if derivation.spec.family == "gaussian":
        return CompiledModel(derivation)
    from .family_compile import FamilyCompiledModel

    return FamilyCompiledModel.from_derivation(derivation)
