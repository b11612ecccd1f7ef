"""Model selection in one call, as R's ``Mclust()``: every requested covariance model and K.

``select(X, components, models)`` fits each (model, K) with the derived updates from several
starts -- a hierarchical clustering (Ward's criterion, which is mclust's ``hc`` for the EII
model), ``starts`` k-means++ seeds, and one M-step from the responsibilities of the most likely
fit so far at the same K (a fit of another model; the most flexible models are fitted first) --
runs EM from each to convergence -- plus 20 more k-means++ seeds for 10 iterations each, the most
likely of which also runs to convergence (emEM) -- keeps the most likely end, and reports the log-likelihood, the
number of free parameters, BIC and ICL, best first.

BIC and ICL follow mclust's sign convention (higher is better): BIC = 2 log L - p log n, and
ICL = BIC + 2 sum_n log gamma_{n, c(n)} with c(n) the most responsible component (the entropy
penalty of the hard classification).  (``emsym run`` reports -2 log L + p log n, lower is
better, as scikit-learn does; the two differ only in sign.)

Models: in one dimension ``E`` (one variance) and ``V`` (a variance per component); in d > 1
the 14 mclust names (``EII`` ... ``VVV``), each derived by emsym (see ``emsym.mclust``) once for a
general K and instantiated for every K (``emsym.instantiate``), so a new K costs no derivation.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = np.concatenate([rng.normal(0, 1, 150), rng.normal(6, 1, 100)])[:, None]
>>> sel = select(X, components=[1, 2, 3], models=["E", "V"])
>>> (sel.best.model, sel.best.K)
('E', 2)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from . import mclust
from .cache import get_derivation
from .compile import compile_derivation
from .em import EMResult, run_em
from .exceptions import DataError, EmsymError
from .instantiate import instantiate
from .seeding import overall_variance
from .spec import load_spec, suggest

__all__ = ["ONE_D_MODELS", "Fit", "Selection", "parse_components", "select"]

ONE_D_MODELS = ("E", "V")
MAX_K = 20
HC_SAMPLE = 400  # points the hierarchical start agglomerates (O(m^2) memory, O(m^2) per merge)
SHORT_STARTS, SHORT_RUN = 20, 10  # emEM: further seeds, a few iterations each; the most likely one continues


@dataclass(frozen=True)
class Fit:
    """The best of the starts for one (model, K); ``error`` says why none of them ran."""

    model: str
    K: int
    loglik: float
    n_params: int
    bic: float
    icl: float
    start: str
    iterations: int
    converged: bool
    error: str | None = None
    result: EMResult | None = None

    def to_dict(self) -> dict:
        out = {
            "model": self.model,
            "components": self.K,
            "loglik": self.loglik,
            "n_params": self.n_params,
            "bic": self.bic,
            "icl": self.icl,
            "start": self.start,
            "iterations": self.iterations,
            "converged": self.converged,
        }
        if self.error:
            out["error"] = self.error
        if self.result is not None:
            out["fit"] = {
                "components": [{k: np.asarray(v).tolist() for k, v in c.items()} for c in self.result.components]
            }
        return out


@dataclass(frozen=True)
class Selection:
    fits: tuple[Fit, ...]  # best BIC first; failed fits last
    n: int
    d: int

    @property
    def best(self) -> Fit:
        return self.fits[0]

    def to_dict(self) -> dict:
        return {
            "points": self.n,
            "dim": self.d,
            "criterion": "BIC = 2 log L - p log n (higher is better, as mclust)",
            "best": {"model": self.best.model, "components": self.best.K},
            "fits": [f.to_dict() for f in self.fits],
        }


def parse_components(text: str) -> list[int]:
    """'1..9', '2,3,5' or '4' -> a sorted list of whole numbers in 1..20."""
    out: set[int] = set()
    for piece in str(text).split(","):
        piece = piece.strip()
        lo, sep, hi = piece.partition("..")
        try:
            a, b = (int(lo), int(hi)) if sep else (int(piece), int(piece))
        except ValueError:
            raise EmsymError(
                f"--components should be a range such as 1..9 or a list such as 2,3,5, but got {text!r}"
            ) from None
        if not 1 <= a <= b <= MAX_K:
            raise EmsymError(f"--components should lie in 1..{MAX_K} with the smaller number first, but got {text!r}")
        out.update(range(a, b + 1))
    return sorted(out)


def _model_spec(name: str, K: int, d: int):
    if d == 1:
        return load_spec({"components": K, "variance": "tied" if name == "E" else "free", "name": f"{name}-{K}"})
    return load_spec({"components": K, "dim": d, "covariance": name, "name": f"{name}-{K}"})


def _check_models(models: Sequence[str] | None, d: int) -> list[str]:
    allowed = ONE_D_MODELS if d == 1 else mclust.NAMES
    if models is None:
        return list(allowed)
    for m in models:
        if m not in allowed:
            raise EmsymError(
                f"--models: {m!r} is not a model for {d}-dimensional data; expected some of "
                f"{', '.join(allowed)}{suggest(m, allowed)}"
            )
    return list(dict.fromkeys(models))


def _ward_labels(X: np.ndarray, ks: Iterable[int], rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Ward agglomeration of a sample of the points; every point joins the nearest sample cluster."""
    m = min(len(X), HC_SAMPLE)
    idx = np.sort(rng.choice(len(X), size=m, replace=False)) if m < len(X) else np.arange(len(X))
    S = X[idx]
    D = np.sum((S[:, None, :] - S[None, :, :]) ** 2, axis=-1)  # squared distances (Lance-Williams for Ward)
    np.fill_diagonal(D, np.inf)
    size = np.ones(m)
    members = [[i] for i in range(m)]
    alive = np.ones(m, dtype=bool)
    want = {k for k in ks if k <= m}
    cuts: dict[int, list[list[int]]] = {}
    if m in want:
        cuts[m] = [list(c) for c in members]
    for count in range(m, 1, -1):
        i, j = divmod(int(np.argmin(D)), m)
        if i > j:
            i, j = j, i
        ni, nj = size[i], size[j]
        new = ((ni + size) * D[i] + (nj + size) * D[j] - size * D[i, j]) / (ni + nj + size)
        D[i], D[:, i] = new, new
        D[i, i] = np.inf
        D[j, :], D[:, j] = np.inf, np.inf
        size[i] += nj
        members[i] += members[j]
        alive[j] = False
        if count - 1 in want:
            cuts[count - 1] = [members[t] for t in np.flatnonzero(alive)]
    out = {}
    for k, clusters in cuts.items():
        centres = np.array([S[c].mean(axis=0) for c in clusters])
        d2 = np.sum((X[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
        out[k] = d2.argmin(axis=1)
    return out


def _hc_start(model, X: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """One M-step from the hierarchical classification (mclust's start), kept positive definite."""
    R = np.zeros((model.K, len(X)))
    R[labels, np.arange(len(X))] = 1.0
    base = model.default_init(X, seed)
    with np.errstate(all="ignore"):
        params = model.m_step(np.ascontiguousarray(X.T), R, base, exact=True)
    floor = 1e-2 * overall_variance(X)  # a singleton cluster has no spread: start it at a modest one
    return model.guard(base, params, floor, lambda msg: None)


def _kmeanspp_start(model, X: np.ndarray, seed: int) -> Callable[[], dict]:
    return lambda: model.default_init(X, seed)


def _from_responsibilities(model, X: np.ndarray, R: np.ndarray, seed: int) -> Callable[[], dict]:
    """A start from another model's fit at the same K: one M-step of this model from its responsibilities."""

    def make() -> dict:
        base = model.default_init(X, seed)
        with np.errstate(all="ignore"):
            params = model.m_step(np.ascontiguousarray(X.T), np.ascontiguousarray(R.T), base, exact=True)
        return model.guard(base, params, 1e-2 * overall_variance(X), lambda msg: None)

    return make


def _fit(
    name: str,
    K: int,
    X: np.ndarray,
    starts: int,
    seed: int,
    hc: dict,
    max_iter: int,
    tol: float,
    previous: EMResult | None = None,
) -> Fit:
    n, d = X.shape
    try:
        spec = _model_spec(name, K, d)
        general = spec.general() if K > 1 else None  # K = 1 has equal weights: its own (cheap) derivation
        derivation = get_derivation(spec) if general is None else instantiate(get_derivation(general), spec)
        model = compile_derivation(derivation)
    except EmsymError as exc:
        return Fit(name, K, -math.inf, 0, -math.inf, -math.inf, "", 0, False, str(exc))
    candidates: list[tuple[str, Callable[[], dict]]] = []
    if K in hc:
        candidates.append(("hierarchical", lambda: _hc_start(model, X, hc[K], seed)))
    for s in range(starts):
        candidates.append((f"k-means++ (seed {seed + s})", _kmeanspp_start(model, X, seed + s)))
    if previous is not None and previous.responsibilities is not None and K > 1:
        candidates.append(("another model's fit", _from_responsibilities(model, X, previous.responsibilities, seed)))
    best: tuple[EMResult, str] | None = None
    errors = []
    for label, make in candidates:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = run_em(model, X, make(), max_iter=max_iter, tol=tol, responsibilities=True)
        except (EmsymError, np.linalg.LinAlgError, FloatingPointError) as exc:
            errors.append(f"{label}: {exc}")
            continue
        if best is None or res.loglik[-1] > best[0].loglik[-1]:
            best = (res, label)
    # and emEM: many more k-means++ seeds for a few iterations each; the most likely of them continues
    short: tuple[EMResult, str] | None = None
    for s in range(starts, starts + SHORT_STARTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = run_em(model, X, model.default_init(X, seed + s), max_iter=SHORT_RUN, tol=tol)
        except (EmsymError, np.linalg.LinAlgError, FloatingPointError):
            continue
        if short is None or res.loglik[-1] > short[0].loglik[-1]:
            short = (res, f"k-means++ (seed {seed + s}, best of {SHORT_STARTS} short runs)")
    if short is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = run_em(model, X, short[0].params, max_iter=max_iter, tol=tol, responsibilities=True)
            if best is None or res.loglik[-1] > best[0].loglik[-1]:
                best = (res, short[1])
        except (EmsymError, np.linalg.LinAlgError, FloatingPointError) as exc:
            errors.append(f"{short[1]}: {exc}")
    if best is None:
        return Fit(name, K, -math.inf, model.n_free, -math.inf, -math.inf, "", 0, False, "; ".join(errors))
    res, label = best
    ll, p = res.loglik[-1], res.n_params
    bic = 2 * ll - p * math.log(n)
    assert res.responsibilities is not None
    with np.errstate(divide="ignore"):
        hard = np.log(res.responsibilities.max(axis=1))
    icl = bic + 2 * float(np.sum(hard[np.isfinite(hard)]))
    return Fit(name, K, ll, p, bic, icl, label, res.iterations, res.converged, None, res)


def select(
    X: np.ndarray,
    components: Iterable[int] = range(1, 10),
    models: Sequence[str] | None = None,
    *,
    starts: int = 5,
    seed: int = 0,
    max_iter: int = 1000,
    tol: float = 1e-8,
    progress: Callable[[int, int, str], None] | None = None,
) -> Selection:
    """Fit every (model, K) from ``starts`` starts (the hierarchical one first) and rank them by BIC."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n, d = X.shape
    if starts < 1:
        raise EmsymError(f"--starts should be at least 1, but got {starts}")
    ks = sorted(set(components))
    names = _check_models(models, d)
    if not np.all(np.isfinite(X)):
        raise DataError("data: contains NaN or infinite values")
    if n <= max(ks):
        raise DataError(f"data: {n} points for up to {max(ks)} components; select needs more points than components")
    hc = _ward_labels(X, [k for k in ks if k > 1], np.random.default_rng(seed))
    fits: list[Fit] = []
    total = len(names) * len(ks)
    most_likely: dict[int, Fit] = {}  # per K, the most likely fit so far: its responsibilities start the next model
    # the most flexible models first (most covariance parameters): their partitions start the constrained ones
    for name in sorted(names, key=lambda m: -mclust.n_covariance_params(m, 2, 4) if d > 1 else m == "E"):
        for K in ks:
            if progress is not None:
                progress(len(fits) + 1, total, f"{name} K={K}")
            prev = most_likely.get(K)
            fit = _fit(name, K, X, starts, seed, hc, max_iter, tol, prev.result if prev is not None else None)
            fits.append(fit)
            if fit.error is None and (prev is None or fit.loglik > prev.loglik):
                most_likely[K] = fit
    fits.sort(key=lambda f: (f.error is not None, -f.bic))
    return Selection(tuple(fits), n, d)


def bic_plot(selection: Selection) -> bytes:
    """BIC against K, one line per model (as mclust's plot of an Mclust object), as PNG bytes."""
    from .plots import _plt, _png

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    fig.subplots_adjust(left=0.12, right=0.8, top=0.9, bottom=0.13)
    by_model: dict[str, list[Fit]] = {}
    for f in selection.fits:
        if f.error is None:
            by_model.setdefault(f.model, []).append(f)
    for i, (name, fits) in enumerate(sorted(by_model.items())):
        fits.sort(key=lambda f: f.K)
        ax.plot([f.K for f in fits], [f.bic for f in fits], marker="os^Dv<>ph*x+1234"[i % 16], label=name)
    b = selection.best
    ax.plot([b.K], [b.bic], "o", ms=14, mfc="none", mec="black", label=f"best: {b.model}, K = {b.K}")
    ax.set_xticks(sorted({f.K for f in selection.fits}))
    ax.set_xlabel("number of components K")
    ax.set_ylabel("BIC (higher is better)")
    ax.set_title(f"BIC of every model ({selection.n} points, d = {selection.d})")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _png(fig)
