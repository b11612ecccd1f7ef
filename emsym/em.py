"""The EM runner: one loop for every variant, driven by a ``CompiledModel``.

The runner owns initialisation, iteration, the tolerance and the safeguards; the variant
supplies only its compiled log densities and its derived M-step.

E-step in log space (log-sum-exp, in place in one (K, n) buffer); the log-likelihood is
recorded at the initial values and after every iteration; EM stops when the change of the
total log-likelihood is at most ``tol`` and the parameters move by at most ``param_tol``
(on the data's scale), or after ``max_iter`` iterations (a ``ConvergenceWarning``).

Safeguards (documented in the README): a variance that falls below the floor -- by
default 1e-6 times the overall variance of the data -- is set to the floor with a
``CollapseWarning``; a full covariance whose smallest eigenvalue falls below the floor gets
(floor - smallest eigenvalue) I added, so it stays positive definite (also a warning); a
parameter whose update is not finite (a component left with no points, N_k = 0) keeps its previous
value, also with a ``CollapseWarning``.

Labelled points (a ``labels`` array, 0 = unknown) keep one-hot responsibilities and add
log p(x_n, z_n) instead of log p(x_n) to the objective (semi-supervised EM).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .exceptions import CollapseWarning, ConvergenceWarning, DataError
from .options import VARIANCE_FLOOR_FACTOR
from .seeding import overall_variance

if TYPE_CHECKING:
    from .compile import CompiledModel

__all__ = ["VARIANCE_FLOOR_FACTOR", "EMResult", "default_init", "overall_variance", "run_em", "silhouette"]


@dataclass(frozen=True)
class EMResult:
    """The outcome of ``run_em``.

    Attributes
    ----------
    params : dict
        The variant's own parameters (``theta``, ``mu``, ``sigma2_1``, ...).
    components : list of dict
        Per component: ``weight`` and the family's parameters -- for a Gaussian ``mean`` (d,) and
        ``covariance`` (d, d); ``rate`` for Poisson and exponential; ``p`` (d,) for Bernoulli,
        multinomial and categorical.
    loglik : tuple of float
        At the initial values, then after each iteration (length iterations + 1).
    logpost : tuple of float or None
        MAP-EM: log-likelihood + log prior (up to a constant) at the same points -- the objective
        MAP-EM never decreases.
    iterations : int
    converged : bool
    responsibilities : ndarray of shape (n, K) or None
        At the returned parameters, when asked for.
    warnings : tuple of str
    """

    params: dict
    components: list
    loglik: tuple
    iterations: int
    converged: bool
    responsibilities: np.ndarray | None = None
    warnings: tuple = field(default=())
    n_points: int = 0
    n_params: int = 0
    silhouette: float | None = None
    logpost: tuple | None = None

    @property
    def bic(self) -> float:
        """-2 log L + p log n (lower is better)."""
        return -2 * self.loglik[-1] + self.n_params * np.log(self.n_points)

    @property
    def aic(self) -> float:
        """-2 log L + 2 p (lower is better)."""
        return -2 * self.loglik[-1] + 2 * self.n_params

    def _repr_html_(self) -> str:  # Jupyter
        from .notebook import result_html

        return result_html(self)

    def to_dict(self) -> dict:
        def num(v):
            return np.asarray(v).tolist() if np.ndim(v) else float(v)

        out = {
            "components": [{key: num(v) for key, v in c.items()} for c in self.components],
            "params": {k: num(v) for k, v in self.params.items()},
            "loglik": list(self.loglik),
            "iterations": self.iterations,
            "converged": self.converged,
            "n_params": self.n_params,
            "bic": self.bic,
            "aic": self.aic,
        }
        if self.logpost is not None:
            out["log_posterior"] = list(self.logpost)
        if self.silhouette is not None:
            out["silhouette"] = self.silhouette
        if self.responsibilities is not None:
            out["responsibilities"] = self.responsibilities.tolist()
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def default_init(model, X: np.ndarray, seed: int = 0, labels: np.ndarray | None = None) -> dict:
    """The model's default starting point (``model.default_init``): for a Gaussian, k-means++ means, the
    overall data variance and equal weights (SUTD notes, section 1.4); for another family, its own start."""
    return model.default_init(np.asarray(X, dtype=float).reshape(len(X), -1), seed, labels)


class _Runner:
    def __init__(self, model: CompiledModel, X: np.ndarray, labels, floor: float, hard: bool = False):
        self.hard = hard
        self.model = model
        self.XT = np.ascontiguousarray(X.T)  # (d, n)
        self.R = np.empty((model.K, X.shape[0]))
        self.floor = floor
        self.messages: list[str] = []
        self.labelled: tuple[np.ndarray, np.ndarray] | None = None
        if labels is not None and np.any(labels > 0):
            idx = np.flatnonzero(labels > 0)
            self.labelled = (idx, labels[idx] - 1)

    def e_step(self, params: dict) -> float:
        """Fill self.R with responsibilities; return the total log-likelihood (objective)."""
        L = self.model.log_joint(self.XT, params, out=self.R)
        known = None
        if self.labelled is not None:
            idx, comp = self.labelled
            known = L[comp, idx].copy()  # log p(x_n, z_n) of the labelled points
        if self.hard:  # classification EM: each point goes wholly to its most probable component
            best = L.argmax(axis=0)
            logp = L[best, np.arange(L.shape[1])].copy()
            L[:] = 0.0
            L[best, np.arange(L.shape[1])] = 1.0
        else:
            mx = L.max(axis=0)
            L -= mx
            np.exp(L, out=L)
            s = L.sum(axis=0)
            L /= s
            logp = np.log(s)
            logp += mx
        if known is None or self.labelled is None:
            return float(logp.sum())
        idx, comp = self.labelled
        L[:, idx] = 0.0
        L[comp, idx] = 1.0
        logp[idx] = known
        return float(logp.sum())

    def guard(self, old: dict, new: dict) -> dict:
        return self.model.guard(old, new, self.floor, self.warn)

    def warn(self, msg: str):
        if msg.split(":")[0] not in {m.split(":")[0] for m in self.messages}:
            self.messages.append(msg)
            warnings.warn(msg, CollapseWarning, stacklevel=4)


def run_em(
    model: CompiledModel,
    X: np.ndarray,
    init: dict | None = None,
    *,
    max_iter: int = 1000,
    tol: float = 1e-8,
    param_tol: float = 1e-10,
    labels: np.ndarray | None = None,
    variance_floor: float | None = None,
    responsibilities: bool = False,
    seed: int = 0,
    exact_m_step: bool = False,
    hard: bool = False,
    silhouette_points: int | None = None,
    callback: Callable[[int, float], None] | None = None,
    iterations: int | None = None,
) -> EMResult:
    """Run EM with the derived updates.

    Parameters
    ----------
    model : CompiledModel
    X : ndarray of shape (n, d)
    init : dict, optional
        Initial parameters by name (see ``CompiledModel.params_from_components``);
        default: ``default_init``.
    max_iter : int
        Iteration limit; 0 returns the initial parameters and their log-likelihood.
    tol, param_tol : float
        Converged when the total log-likelihood changes by at most ``tol`` and no parameter
        moves by more than ``param_tol`` on the data's scale (weights absolutely, means
        relative to the data's standard deviation, variances relative to its variance; see
        ``model.moved``).  The likelihood flattens near its maximum before the parameters settle:
        stopping on it alone leaves them about sqrt(tol / n) off.
    labels : ndarray of shape (n,), optional
        Component numbers 1..K for labelled points, 0 for unknown.
    exact_m_step : bool
        For an ECM derivation, cycle the conditional updates to the joint maximiser of Q
        in every iteration instead of doing one cycle (no effect on an EM derivation).
    hard : bool
        Hard (classification) EM: every point is assigned wholly to its most probable
        component, and the objective is the classification log-likelihood sum_n log w_z f_z(x_n).
        With equal weights and one shared spherical variance this is K-means.
    silhouette_points : int, optional
        Also compute the silhouette coefficient of the hard assignment, on at most this many
        points (a seeded sample: the coefficient costs O(n^2)).
    callback : callable, optional
        Called as ``callback(iteration, loglik)`` after each iteration (progress).
    iterations : int, optional
        Run exactly this many iterations: no stopping rule and no ``ConvergenceWarning``
        (overrides ``max_iter``, ``tol`` and ``param_tol``) -- for benchmarks that must compare
        equal work, and for "after N iterations" questions.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n, d = X.shape
    if d != model.d:
        raise DataError(f"data: the model is {model.d}-dimensional, but the data has {d} coordinate column(s)")
    if n < model.K:
        raise DataError(f"data: {n} point(s) for {model.K} components; EM needs at least as many points as components")
    if not np.all(np.isfinite(X)):
        raise DataError("data: contains NaN or infinite values")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (n,):
            raise DataError(f"labels: expected {n} labels (one per point), got shape {labels.shape}")
        bad = np.flatnonzero((labels < 0) | (labels > model.K))
        if bad.size:
            raise DataError(f"labels: point {bad[0] + 1} has label {labels[bad[0]]}, expected 1..{model.K} or empty")
    if iterations is not None:
        if iterations < 0:
            raise DataError(f"iterations should be >= 0, but got {iterations}")
        max_iter = iterations
    if max_iter < 0:
        raise DataError(f"max_iter should be >= 0, but got {max_iter}")
    model.check_data(X)
    spread = model.data_scale(X)
    floor = model.floor(spread, variance_floor)
    params = dict(init) if init is not None else default_init(model, X, seed, labels)
    runner = _Runner(model, X, labels, floor, hard=hard)
    trace = [_finite_loglik(runner.e_step(params), 0)]
    prior = [model.log_prior(params)]  # MAP-EM: the objective is trace + prior; all zeros otherwise
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        before = params
        new = model.m_step(runner.XT, runner.R, params, exact=exact_m_step)
        params = runner.guard(params, new)
        trace.append(_finite_loglik(runner.e_step(params), it))
        prior.append(model.log_prior(params))
        if callback is not None:
            callback(it, trace[-1])
        if (
            iterations is None
            and abs(trace[-1] + prior[-1] - trace[-2] - prior[-2]) <= tol
            and model.moved(before, params, spread) <= param_tol
        ):
            converged = True
            break
    if max_iter > 0 and not converged and iterations is None:
        warnings.warn(
            f"EM did not converge in {max_iter} iterations (last change of the log-likelihood "
            f"{trace[-1] - trace[-2]:.3g}, tol {tol:g}; largest parameter move "
            f"{model.moved(before, params, spread):.3g}, param_tol {param_tol:g}); raise --max-iter "
            f"or loosen --tol / --param-tol",
            ConvergenceWarning,
            stacklevel=2,
        )
    resp = runner.R.T.copy() if responsibilities else None
    sil = None
    if silhouette_points:
        sil = silhouette(X, runner.R.argmax(axis=0), max_points=silhouette_points, seed=seed)
    return EMResult(
        params=params,
        components=model.components(params),
        loglik=tuple(trace),
        iterations=it if max_iter > 0 else 0,
        converged=converged,
        responsibilities=resp,
        warnings=tuple(runner.messages),
        n_points=n,
        n_params=model.n_free,
        silhouette=sil,
        logpost=tuple(a + b for a, b in zip(trace, prior)) if model.spec.priors else None,
    )


def _finite_loglik(value: float, iteration: int) -> float:
    """The log-likelihood, or a DataError when it overflowed (never NaN or infinity in a result)."""
    if not np.isfinite(value):
        at = "at the initial values" if iteration == 0 else f"after iteration {iteration}"
        raise DataError(
            f"the log-likelihood {at} is {value} (the numbers overflowed or a density is zero "
            "everywhere); rescale the data or choose other initial values"
        )
    return value


def silhouette(X: np.ndarray, labels: np.ndarray, max_points: int = 5000, seed: int = 0) -> float | None:
    """Mean silhouette (b - a) / max(a, b) of a hard assignment (Georgia Tech notes).

    a: mean distance to the other points of the own cluster; b: the smallest mean distance to
    another cluster.  Computed on a seeded sample of at most ``max_points`` points (O(n^2));
    None when fewer than two clusters are used.
    """
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    labels = np.asarray(labels)
    if len(X) > max_points:
        idx = np.random.default_rng(seed).choice(len(X), size=max_points, replace=False)
        X, labels = X[idx], labels[idx]
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return None
    sq = np.sum(X * X, axis=1)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0))
    mean_to = np.stack([D[:, labels == c].sum(axis=1) for c in clusters], axis=1)
    sizes = np.array([np.sum(labels == c) for c in clusters])
    own = np.searchsorted(clusters, labels)
    own_size = sizes[own]
    a = mean_to[np.arange(len(X)), own] / np.maximum(own_size - 1, 1)
    other = mean_to / sizes
    other[np.arange(len(X)), own] = np.inf
    b = other.min(axis=1)
    s = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())
