"""Figures for worked sheets, drawn with matplotlib from the same EM run as the numbers.

Each function returns PNG bytes (or None when the exercise has nothing to draw): the data
with the component densities at the start and at convergence, the log-likelihood per
iteration, the points coloured by their responsibility, and the first EM iterations side
by side.  matplotlib is imported only when a sheet asks for figures.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # solve imports render and plots at run time
    from .solve import Solution

__all__ = ["figures"]

_DPI = 80


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)  # fixed margins: a layout engine doubles the drawing time
    _plt().close(fig)
    return buf.getvalue()


def _pdf(x, comp):
    v = comp["covariance"][0, 0]
    return comp["weight"] * np.exp(-((x - comp["mean"][0]) ** 2) / (2 * v)) / np.sqrt(2 * np.pi * v)


def _grid(X, comps_list):
    lo, hi = X.min(), X.max()
    for comps in comps_list:
        for c in comps:
            s = np.sqrt(c["covariance"][0, 0])
            lo, hi = min(lo, c["mean"][0] - 3 * s), max(hi, c["mean"][0] + 3 * s)
    pad = 0.05 * (hi - lo or 1)
    return np.linspace(lo - pad, hi + pad, 400)


def _densities(ax, X, comps, title, style="-"):
    x = _grid(X, [comps])
    total = np.zeros_like(x)
    for k, c in enumerate(comps):
        y = _pdf(x, c)
        total += y
        ax.plot(x, y, style, color=f"C{k}", label=f"component {k + 1}")
    ax.plot(x, total, style, color="black", lw=1.5, label="mixture")
    ax.plot(X, np.zeros_like(X), "|", color="black", ms=14, mew=1.5)
    ax.set_title(title)
    ax.set_xlabel("x")


def _family_grid(x: np.ndarray, discrete: bool) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    pad = 0.15 * (hi - lo or 1)
    if discrete:
        return np.arange(max(0.0, np.floor(lo - pad)), np.ceil(hi + pad) + 1)
    return np.linspace(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad, 400)


def _family_densities(ax, x, model, params, title, discrete: bool, style="-"):
    """w_k f_k on a grid from the compiled model itself (its log_joint), and their sum."""
    grid = _family_grid(x, discrete)
    with np.errstate(all="ignore"):
        y = np.exp(model.log_joint(grid[None, :], params))
    marker = "o" if discrete else None
    for k in range(y.shape[0]):
        ax.plot(grid, y[k], style, color=f"C{k}", marker=marker, ms=3, label=f"component {k + 1}")
    ax.plot(grid, y.sum(axis=0), style, color="black", lw=1.5, label="mixture")
    ax.plot(x, np.zeros_like(x), "|", color="black", ms=14, mew=1.5)
    ax.set_title(title)
    ax.set_xlabel("x")


def _family_figures(solution: Solution, model, X: np.ndarray, plt) -> dict[str, bytes]:
    run = solution.run
    assert run is not None and run.responsibilities is not None
    from .families import Family

    family = solution.exercise.model.family
    assert isinstance(family, Family)
    out = {}
    vector = [p for p in family.parameters if p.per_coordinate]
    if X.shape[1] == 1:
        x = X[:, 0]
        discrete = family.support.text.startswith(("a whole number", "0 or 1"))
        fig, ax = plt.subplots(figsize=(6, 3))
        fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.16)
        if solution.iterations:  # the mixture at the start, dashed (as the caption says)
            grid = _family_grid(x, discrete)
            with np.errstate(all="ignore"):
                start = np.exp(model.log_joint(grid[None, :], solution.iterations[0])).sum(axis=0)
            ax.plot(grid, start, "--", color="grey", label="mixture at the start")
        _family_densities(ax, x, model, run.params, "Data and the fitted components", discrete)
        ax.legend(fontsize=7)
        out["densities"] = _png(fig)
    elif vector:
        p = vector[0]
        values = np.array([c[p.name] for c in run.components])
        fig, ax = plt.subplots(figsize=(min(9, max(4.5, 1.5 + 0.5 * values.shape[1])), 1.2 + 0.45 * values.shape[0]))
        fig.subplots_adjust(left=0.14, right=0.9, top=0.8, bottom=0.22)
        im = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for (k, l), v in np.ndenumerate(values):
            ax.text(l, k, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if v < 0.6 else "black")
        ax.set_yticks(range(values.shape[0]), [f"k = {k + 1}" for k in range(values.shape[0])])
        ax.set_xticks(range(values.shape[1]), [str(l + 1) for l in range(values.shape[1])])
        ax.set_xlabel("coordinate l")
        fig.colorbar(im, ax=ax)
        ax.set_title(f"{p.name}_kl at convergence")
        out["prototypes"] = _png(fig)
    return out


def figures(solution: Solution) -> dict[str, bytes]:
    """name -> PNG bytes for the sheet of a solved exercise, from the cache when the same numbers were
    drawn before by the same code (a content hash: the data, the run, the iterations, this module)."""
    import base64
    import json

    from .cache import get_blob, put_blob

    key = _figure_key(solution)
    hit = get_blob("figures", key)
    if hit is not None:
        try:
            return {k: base64.b64decode(v) for k, v in json.loads(hit).items()}
        except ValueError:
            pass
    out = _draw_figures(solution)
    put_blob("figures", key, json.dumps({k: base64.b64encode(v).decode() for k, v in out.items()}).encode())
    return out


def _figure_key(solution: Solution) -> str:
    import hashlib

    import matplotlib

    from . import __version__

    run = solution.run
    ex = solution.exercise
    h = hashlib.sha256()
    h.update(f"{__version__}|{matplotlib.__version__}|".encode())
    h.update(Path(__file__).read_bytes())
    parts = (
        repr(ex.model),
        repr(ex.data),
        repr(ex.labels),
        repr(run.loglik if run else None),
        repr(run.components if run else None),
        repr(run.responsibilities if run else None),
        repr(solution.iterations),
    )
    with np.printoptions(threshold=sys.maxsize, precision=17):
        for p in parts:
            h.update(p.encode())
    return h.hexdigest()


def _draw_figures(solution: Solution) -> dict[str, bytes]:
    """name -> PNG bytes for the sheet of a solved exercise (empty when nothing to draw)."""
    run = solution.run
    ex = solution.exercise
    if run is None or ex.data is None:
        return {}
    from .compile import compile_derivation
    from .family_spec import FamilySpec

    plt = _plt()
    model = compile_derivation(solution.derivation)
    X = np.array(ex.data, dtype=float).reshape(len(ex.data), -1)
    out = {}
    if isinstance(ex.model, FamilySpec):
        out.update(_family_figures(solution, model, X, plt))
    elif X.shape[1] == 1:
        x = X[:, 0]
        start = model.components(solution.iterations[0]) if solution.iterations else None
        fig, ax = plt.subplots(figsize=(6, 3))
        fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.16)
        if start is not None:
            grid = _grid(x, [start, run.components])
            ax.plot(grid, sum(_pdf(grid, c) for c in start), "--", color="grey", label="mixture at the start")
        _densities(ax, x, run.components, "Data and the fitted components")
        ax.legend(fontsize=7)
        out["densities"] = _png(fig)

        fig, ax = plt.subplots(figsize=(7, 1.8))
        fig.subplots_adjust(left=0.04, right=0.98, top=0.82, bottom=0.2)
        assert run.responsibilities is not None  # runs for sheets keep them
        resp = run.responsibilities[:, 0]
        sc = ax.scatter(x, np.zeros_like(x), c=resp, cmap="coolwarm_r", vmin=0, vmax=1, s=60, edgecolors="black")
        fig.colorbar(sc, ax=ax, label="gamma_n1")
        ax.set_yticks([])
        ax.set_title("Responsibility of component 1 for each point, at convergence")
        out["responsibilities"] = _png(fig)

        if len(solution.iterations) >= 2:
            its = solution.iterations
            fig, axes = plt.subplots(1, len(its), figsize=(3 * len(its), 2.4), sharey=True)
            fig.subplots_adjust(left=0.06, right=0.99, top=0.88, bottom=0.2, wspace=0.08)
            for i, (ax, params) in enumerate(zip(np.atleast_1d(axes), its)):
                _densities(ax, x, model.components(params), f"iteration {i}")
            out["iterations"] = _png(fig)
    else:
        fig, ax = plt.subplots(figsize=(5, 4))
        fig.subplots_adjust(left=0.12, right=0.97, top=0.9, bottom=0.1)
        assert run.responsibilities is not None
        z = run.responsibilities.argmax(axis=1)
        ax.scatter(X[:, 0], X[:, 1], c=[f"C{k}" for k in z], s=18)
        for k, c in enumerate(run.components):
            s = np.sqrt(c["covariance"][0, 0])
            ax.add_patch(plt.Circle(c["mean"][:2], 2 * s, fill=False, color=f"C{k}", lw=2))
        ax.set_aspect("equal")
        ax.set_title("Points by their most responsible component; circles at 2 sigma")
        out["densities"] = _png(fig)
    fig, ax = plt.subplots(figsize=(6, 2.6))
    fig.subplots_adjust(left=0.14, right=0.97, top=0.88, bottom=0.2)
    ax.plot(range(len(run.loglik)), run.loglik, "o-", ms=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("log-likelihood")
    ax.set_title("Log-likelihood per iteration (never decreases)")
    out["loglik"] = _png(fig)
    return out


def question_figures(solution: Solution) -> dict[str, bytes]:
    """Figures that pose the question without answering it: the points and the mixture at the
    start (1-d Gaussians; the practice app shows them before any answer)."""
    ex = solution.exercise
    if ex.data is None or not solution.iterations:
        return {}
    from .compile import compile_derivation
    from .family_spec import FamilySpec

    X = np.array(ex.data, dtype=float).reshape(len(ex.data), -1)
    if isinstance(ex.model, FamilySpec) or X.shape[1] != 1:
        return {}
    plt = _plt()
    model = compile_derivation(solution.derivation)
    fig, ax = plt.subplots(figsize=(6, 2.8))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.88, bottom=0.17)
    _densities(ax, X[:, 0], model.components(solution.iterations[0]), "The data and the mixture at the start")
    ax.legend(fontsize=7)
    return {"start": _png(fig)}
