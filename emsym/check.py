"""Numeric proof that a derivation is right, on data generated from the model itself.

``check(spec)`` shows, for the compiled derived updates:

(a) stationarity and maximality: replaying the M-step update by update, each new value is
    a stationary point of Q in its own parameter (central finite differences ~ 0; for free
    weights along directions that keep sum_k pi_k = 1) and no small perturbation increases
    Q; for an exact M-step (method EM) the final point is also jointly stationary and no
    random feasible perturbation of all parameters increases Q;
(b) the log-likelihood (the log posterior for MAP-EM) never decreases over EM iterations;
(c) where scikit-learn has the same model (free weights and means, free or tied variance
    in 1-d, free spherical variances in d dimensions), EM from the same initial values
    gives the same parameters as ``sklearn.mixture.GaussianMixture`` (reg_covar=0) to 1e-6.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import mclust
from .cache import get_derivation, get_model
from .compile import CompiledModel, compile_derivation
from .derive import Derivation
from .em import default_init, run_em
from .spec import ModelSpec, Spec

__all__ = ["CheckItem", "CheckReport", "check"]


@dataclass(frozen=True)
class CheckItem:
    name: str
    passed: bool | None  # None: skipped
    detail: str

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class CheckReport:
    spec: Spec
    method: str
    note: str
    items: tuple[CheckItem, ...]

    @property
    def passed(self) -> bool:
        return all(i.passed is not False for i in self.items)

    def _repr_html_(self) -> str:  # Jupyter
        from .notebook import check_html

        return check_html(self)

    def to_dict(self) -> dict:
        return {
            "model": self.spec.to_dict(),
            "method": self.method,
            "note": self.note,
            "passed": self.passed,
            "checks": [i.to_dict() for i in self.items],
        }


def _e_step(model: CompiledModel, XT: np.ndarray, params: dict) -> np.ndarray:
    L = model.log_joint(XT, params)
    L -= L.max(axis=0)
    np.exp(L, out=L)
    L /= L.sum(axis=0)
    return L


def _block_pairs(model: CompiledModel, name: str, params: dict, h: float):
    """Mirror-image feasible perturbations of an mclust covariance block: (label, plus, minus)."""
    S = params[name]
    plus = mclust.perturbations(model.spec.covariance, S, h)
    minus = mclust.perturbations(model.spec.covariance, S, -h)
    for (label, a), (_, b) in zip(plus, minus):
        yield label, dict(params, **{name: a}), dict(params, **{name: b})


def _shift(params: dict, delta: dict, h: float) -> dict:
    out = dict(params)
    for k, v in delta.items():
        out[k] = params[k] + h * v
    return out


def _scale(params: dict, delta: dict) -> float:
    """The size of the values a direction moves: finite differences step 1e-5 of it, perturbations 0.1%.

    Relative to the moved values themselves (a rate of 0.016 is stepped by 1.6e-7), not to the largest
    parameter of the model: a fixed step of 1e-5 on a rate of 0.016 left a central-difference error
    above the gradient tolerance, and a 4-component exponential model failed its own check.  Values at
    or near zero (a mean at 0) are stepped on the scale of 1.
    """
    moved = [np.abs(np.asarray(params[k], dtype=float))[np.asarray(v) != 0] for k, v in delta.items()]
    size = max((float(m.max()) for m in moved if m.size), default=0.0)
    return size if size >= 1e-3 else 1.0


def _stationary(model, XT, R, params, names, n) -> tuple[float, float]:
    """Largest |directional derivative| of Q and largest increase of Q under +-perturbation."""
    grad, rise = 0.0, -np.inf
    q0 = model.Q(XT, R, params)
    blocks = [p.name for p in model.params if p.block and p.name in names]
    for name in blocks:  # constrained covariances: perturb volume, shape, orientation
        for _, up, down in _block_pairs(model, name, params, 1e-5):
            grad = max(grad, abs(model.Q(XT, R, up) - model.Q(XT, R, down)) / (2e-5 * n))
        for _, up, down in _block_pairs(model, name, params, 1e-3):
            rise = max(rise, (model.Q(XT, R, up) - q0) / abs(q0), (model.Q(XT, R, down) - q0) / abs(q0))
    names = [k for k in names if k not in blocks]
    for _, delta in model.directions(names, params):
        scale = _scale(params, delta)
        h = 1e-5 * scale
        g = (model.Q(XT, R, _shift(params, delta, h)) - model.Q(XT, R, _shift(params, delta, -h))) / (2 * h)
        grad = max(grad, abs(g) / n)
        for step in (1e-3 * scale, -1e-3 * scale):
            rise = max(rise, (model.Q(XT, R, _shift(params, delta, step)) - q0) / abs(q0))
    return grad, rise


def _sklearn_case(spec: ModelSpec):
    if spec.mixing != "free" or spec.mean != "free" or spec.priors:  # scikit-learn fits by maximum likelihood
        return None
    if spec.dim == 1:
        return {"free": "full", "tied": "tied"}.get(spec.variance) if isinstance(spec.variance, str) else None
    if spec.covariance in mclust.DECOMPOSED:
        return None
    if spec.covariance == "full":
        return {"free": "full", "tied": "tied"}.get(spec.variance) if isinstance(spec.variance, str) else None
    return spec.covariance if spec.variance == "free" else None  # spherical or diag


def _against_sklearn(model, X, init, cov_type, iters=20) -> tuple[float, str]:
    from sklearn.mixture import GaussianMixture

    comps = model.components(init)
    K = model.K
    var = np.array([c["covariance"][0, 0] for c in comps])
    if model.full:
        covs = np.array([c["covariance"] for c in comps])
        prec = np.linalg.inv(covs) if cov_type == "full" else np.linalg.inv(covs[0])
    elif cov_type == "diag":
        prec = np.array([1 / np.diag(c["covariance"]) for c in comps])
    else:
        prec = {"full": (1 / var).reshape(K, 1, 1), "tied": np.array([[1 / var[0]]]), "spherical": 1 / var}[cov_type]
    gm = GaussianMixture(
        K,
        covariance_type=cov_type,
        reg_covar=0.0,
        max_iter=iters,
        tol=0.0,
        n_init=1,
        weights_init=np.array([c["weight"] for c in comps]),
        means_init=np.array([c["mean"] for c in comps]),
        precisions_init=prec,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
        ours = run_em(model, X, init, max_iter=iters, tol=-1.0)
    mine = ours.components
    if model.full:
        ours_var = np.array([c["covariance"] for c in mine])
        cov = gm.covariances_ if cov_type == "full" else np.array([gm.covariances_] * K)
    elif cov_type == "tied":
        cov = np.full(K, float(np.ravel(gm.covariances_)[0]))
    else:
        cov = np.ravel(gm.covariances_) if cov_type != "diag" else gm.covariances_
    if not model.full:
        ours_var = (
            np.array([np.diag(c["covariance"]) for c in mine])
            if cov_type == "diag"
            else np.array([c["covariance"][0, 0] for c in mine])
        )
    pairs = [
        (np.array([c["weight"] for c in mine]), gm.weights_),
        (np.array([c["mean"] for c in mine]), gm.means_),
        (ours_var, cov),
    ]

    def rel(a, b):  # entrywise; a covariance matrix relative to its largest entry (off-diagonals may be ~0)
        if np.ndim(b) == 3:
            return float(np.max(np.abs(a - b) / np.max(np.abs(b), axis=(1, 2), keepdims=True)))
        return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))

    err = max(rel(a, b) for a, b in pairs)
    return err, f"{iters} iterations from the same initial values, covariance_type='{cov_type}'"


_GRAD_TOL, _RISE_TOL = 1e-6, 1e-12


def _update_items(model, derivation, XT, R, current: dict, n: int) -> list[CheckItem]:
    """Replay the M-step update by update; each new value must be a stationary maximiser of Q in its own
    parameter (updates ``current`` in place)."""
    items = []
    simplex = [p.name for p in model.params if p.domain == "simplex" and p.kind == "weight"]
    for u in derivation.updates:
        current[u.name] = model.update_one(u.name, XT, R, current)
        if u.name in simplex and u.name != simplex[-1]:
            continue  # sum_k pi_k = 1 holds once every weight is updated: check them as a block
        names = simplex if u.name in simplex else [u.name]
        label = "weights " + ", ".join(simplex) if u.name in simplex else u.name
        g, rise = _stationary(model, XT, R, current, names, n)
        items.append(
            CheckItem(
                f"update of {label} maximises Q",
                g < _GRAD_TOL and rise <= _RISE_TOL,
                f"|dQ/d{label}|/n = {g:.1e} (tolerance {_GRAD_TOL:g}); largest relative rise of Q under "
                f"a +-0.1% perturbation = {max(rise, 0):.1e}"
                + (" (others at their latest values)" if u.conditional else ""),
            )
        )
    return items


def _joint_item(model, derivation, XT, R, current: dict, n: int, rng) -> CheckItem:
    """An exact M-step: jointly stationary, and no random feasible perturbation of all parameters raises Q."""
    names = [u.name for u in derivation.updates]
    blocks = {u.name for u in derivation.updates if u.block}
    g, _ = _stationary(model, XT, R, current, names, n)
    q0 = model.Q(XT, R, current)
    worst = -np.inf
    for _ in range(40):
        delta: dict[str, Any] = {}
        for _, dd in model.directions([k for k in names if k not in blocks], current):
            coef = rng.normal()  # one coefficient per feasible direction keeps sum pi = 1
            for k, v in dd.items():
                delta[k] = delta.get(k, 0) + coef * v
        trial = _shift(current, delta, 1e-3)
        for name in blocks:  # and one random feasible move of the constrained covariances
            moves = list(_block_pairs(model, name, current, 1e-3 * rng.normal()))
            trial[name] = moves[rng.integers(len(moves))][1][name]
        worst = max(worst, (model.Q(XT, R, trial) - q0) / abs(q0))
    return CheckItem(
        "M-step is the joint maximiser of Q",
        g < _GRAD_TOL and worst <= _RISE_TOL,
        f"largest |dQ/dtheta|/n over all parameters = {g:.1e}; largest relative rise of Q "
        f"over 40 random feasible perturbations = {max(worst, 0):.1e}",
    )


def _monotone_item(model, X, start: dict) -> CheckItem:
    """100 EM iterations: the log-likelihood (the log posterior for MAP-EM) never decreases."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_em(model, X, start, max_iter=100, tol=-1.0)
    objective = run.logpost if run.logpost is not None else run.loglik
    what = "log posterior (MAP-EM)" if run.logpost is not None else "log-likelihood"
    drops = np.diff(objective)
    worst_drop = float(-drops.min()) if drops.size else 0.0
    return CheckItem(
        f"{what} never decreases",
        worst_drop <= 1e-9 * (1 + abs(objective[-1])),
        f"{len(drops)} iterations, from {objective[0]:.6g} to {objective[-1]:.6g}; "
        f"largest decrease {max(worst_drop, 0):.1e}",
    )


def _sklearn_item(spec, model, X, start: dict) -> CheckItem:
    if spec.priors:
        return CheckItem("agrees with scikit-learn", None, "skipped: scikit-learn fits by maximum likelihood, not MAP")
    case = _sklearn_case(spec) if isinstance(spec, ModelSpec) else None
    if case is None:
        return CheckItem("agrees with scikit-learn", None, "skipped: scikit-learn has no such model")
    try:
        err, how = _against_sklearn(model, X, start, case)
    except ImportError:
        return CheckItem("agrees with scikit-learn", None, "skipped: scikit-learn is not installed")
    return CheckItem(
        "agrees with scikit-learn",
        err <= 1e-6,
        f"largest relative difference of weights, means, variances = {err:.1e} (tolerance 1e-6); {how}",
    )


def _engine_item(spec: ModelSpec, model, X: np.ndarray, start: dict) -> CheckItem:
    """(d) The same Gaussian derived a second, independent way: by the generic family engine from the
    declaration in ``emsym.families.gaussian``.  From the same start, both give the same log-likelihood
    and, from the same responsibilities, the same exact M-step."""
    from .families.gaussian import form, view

    name = "agrees with the family engine"
    twin = spec.family_form()
    if twin is None:
        return CheckItem(
            name, None, "skipped: a covariance matrix is derived by the matrix rules alone (no family form)"
        )
    other = get_model(twin)
    XT = np.ascontiguousarray(X.T)
    comps = model.components(start)
    theirs = other.params_from_components([view(c, twin.family) for c in comps], where="check start")
    mine_lj, their_lj = model.log_joint(XT, start), other.log_joint(XT, theirs)
    ll = [float(np.sum(np.logaddexp.reduce(lj, axis=0))) for lj in (mine_lj, their_lj)]
    R = _e_step(model, XT, start)
    new = [view(c, twin.family) for c in model.components(model.m_step(XT, R, start, exact=True))]
    their_new = other.components(other.m_step(XT, R, theirs, exact=True))
    step = max(
        float(np.max(np.abs(np.asarray(a[f]) - np.asarray(b[f])) / (1 + np.abs(np.asarray(a[f])))))
        for a, b in zip(new, their_new)
        for f in ("weight", "mean", "variance")
    )
    gap = abs(ll[0] - ll[1]) / (1 + abs(ll[0]))
    return CheckItem(
        name,
        gap <= 1e-9 and step <= 1e-9,
        f"derived again from the {form(spec.vector, spec.covariance)} declaration in emsym.families.gaussian: "
        f"log-likelihood at the start differs by {gap:.1e}, one exact M-step by {step:.1e} (relative; tolerance 1e-9)",
    )


def check(spec: Spec, *, n: int = 500, seed: int = 0, derivation: Derivation | None = None) -> CheckReport:
    """Run the numeric proof (see the module docstring) and return a ``CheckReport``.

    ``derivation`` checks given updates (e.g. a hand derivation, or a deliberately wrong
    one) instead of emsym's own; it must be for a concrete spec.
    """
    note = ""
    if not spec.concrete:
        # a family's vector (Bernoulli pixels, multinomial categories) is checked with 4 coordinates
        concrete = spec.instantiate(components=3, dim=2 if isinstance(spec, ModelSpec) else 4)
        note = (
            f"checked at K = {concrete.components}, d = {concrete.dim} "
            f"(the model is derived for general {'K' if spec.general_k else ''}"
            f"{' and ' if spec.general_k and spec.general_d else ''}{'d' if spec.general_d else ''})"
        )
        spec = concrete
    if derivation is None:
        derivation = get_derivation(spec)
    model = compile_derivation(derivation)
    rng = np.random.default_rng(seed)
    truth = model.random_truth(rng)
    X = model.sample(truth, n, rng)
    XT = np.ascontiguousarray(X.T)
    items: list[CheckItem] = []

    old = default_init(model, X, seed)
    R = _e_step(model, XT, old)
    current = dict(old)
    items.extend(_update_items(model, derivation, XT, R, current, n))
    if derivation.method == "EM":
        items.append(_joint_item(model, derivation, XT, R, current, n, rng))
    items.append(_monotone_item(model, X, old))
    items.append(_sklearn_item(spec, model, X, old))
    if isinstance(spec, ModelSpec):
        items.append(_engine_item(spec, model, X, old))
    return CheckReport(spec, derivation.method, note, tuple(items))
