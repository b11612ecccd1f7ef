"""Solving an exercise: every expected answer computed by emsym, with errata.

``solve(exercise)`` computes each part from the model and the data -- EM runs through the
compiled derived updates, formulas come from the derivation rendered in the names the part
declares -- and compares what the source published (``published``) with it.  A part that
disagrees becomes an erratum in ``Solution.errata``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from .cache import get_derivation
from .compile import CompiledModel, compile_derivation
from .derive import Derivation, Step
from .em import EMResult, run_em
from .exceptions import DataError, EmsymError, EmsymWarning
from .exercise import Exercise, ExerciseError, Part, fill_notation, notation_slots
from .printing import Equation, Normal, latex, text

__all__ = ["PartResult", "Solution", "solve", "validate"]


@dataclass(frozen=True)
class PartResult:
    part: Part
    answer: Any  # float, list of ints, formula text, or the correct option numbers
    shown: str  # the answer as the sheet prints it (rounded where the part rounds)
    exact: str | None = None  # more digits, or an exact value
    latex: str | None = None
    agrees: bool | None = None  # with the published answer; None when nothing was published
    erratum: str | None = None
    steps: tuple[Step, ...] = ()
    details: dict = field(default_factory=dict)
    grader: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        ans = self.answer
        if isinstance(ans, np.generic):
            ans = ans.item()
        return {
            "id": self.part.id,
            "kind": self.part.kind,
            "prompt": self.part.prompt,
            "answer": ans,
            "shown": self.shown,
            "exact": self.exact,
            "published": self.part.published,
            "agrees": self.agrees,
            "erratum": self.erratum,
        }


@dataclass(frozen=True)
class Solution:
    exercise: Exercise
    derivation: Derivation
    parts: tuple[PartResult, ...]
    tables: dict
    run: EMResult | None  # EM from the initial values to convergence (for plots)
    iterations: tuple  # parameter dicts at iterations 0, 1, 2, 3 (for "first iterations")

    @property
    def errata(self) -> list[tuple[str, str]]:
        return [(p.part.id, p.erratum) for p in self.parts if p.erratum]

    def _repr_html_(self) -> str:  # Jupyter
        from .render import sheet_fragment

        return sheet_fragment(self)

    def to_dict(self) -> dict:
        return {
            "id": self.exercise.id,
            "title": self.exercise.title,
            "source": self.exercise.source,
            "model": self.exercise.model.to_dict(),
            "parts": [p.to_dict() for p in self.parts],
            "errata": [{"part": pid, "note": note} for pid, note in self.errata],
        }


# -- the numeric context -------------------------------------------------------------------
class _Context:
    def __init__(self, ex: Exercise):
        self.ex = ex
        spec = ex.model
        self.derivation = get_derivation(spec)
        general = spec.general()
        self.general = get_derivation(general) if general is not None else self.derivation
        self.model = compile_derivation(self.derivation) if spec.concrete else None
        self.X = None
        if ex.data is not None:
            self.X = np.array(ex.data, dtype=float).reshape(len(ex.data), -1)
        self.labels = np.array(ex.labels) if ex.labels is not None else None
        self.init = None
        if ex.init is not None and self.model is not None:
            try:
                line, col = ex.marks.get(("init",), (1, 1))
                self.init = self.model.params_from_components(ex.init, where=f"{ex.path}:{line}:{col}: init")
            except DataError as exc:
                raise ExerciseError([str(exc)]) from None
        self._runs: dict = {}

    def _numeric(self) -> tuple[CompiledModel, np.ndarray]:
        """The compiled model and the data (validation guarantees both for numeric quantities)."""
        assert self.model is not None and self.X is not None
        return self.model, self.X

    def start(self) -> dict:
        if self.init is not None:
            return self.init
        if self.ex.responsibilities is not None:  # an M-step from given responsibilities needs no start
            return {}
        from .em import default_init

        return default_init(*self._numeric())

    def run(self, after) -> EMResult:
        """EM from the exercise's start: 'init' (no iteration), a number of iterations, or 'converged'."""
        key = after
        if key in self._runs:
            return self._runs[key]
        model, X = self._numeric()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmsymWarning)
            if self.ex.responsibilities is not None and after != "init":
                R = np.array(self.ex.responsibilities, dtype=float).T.copy()
                first = model.m_step(np.ascontiguousarray(X.T), R, self.start())
                rest = 10_000 if after == "converged" else after - 1
                res = run_em(
                    model,
                    X,
                    first,
                    max_iter=rest,
                    tol=1e-12 if after == "converged" else -1,
                    labels=self.labels,
                    responsibilities=True,
                )
                res = dataclasses.replace(res, iterations=res.iterations + 1)
            else:
                n = 0 if after == "init" else 10_000 if after == "converged" else after
                res = run_em(
                    model,
                    X,
                    self.start(),
                    max_iter=n,
                    tol=1e-12 if after == "converged" else -1,
                    labels=self.labels,
                    responsibilities=True,
                )
        self._runs[key] = res
        return res

    def view(self, res: EMResult, name: str) -> float:
        if name in res.params:
            v = res.params[name]
            return float(v) if np.ndim(v) == 0 else v
        head, k = name.rsplit("_", 1)
        if head.rpartition("_")[0] in res.components[0]:  # p_1_3: coordinate 3 of component 1's p
            field_, comp = head.rsplit("_", 1)
            return float(res.components[int(comp) - 1][field_][int(k) - 1])
        field_, c = head, res.components[int(k) - 1]
        if field_ in c and field_ not in ("mean", "covariance"):  # weight, and a family's own fields
            v = c[field_]
            return float(v) if np.ndim(v) == 0 else v
        return {
            "weight": c["weight"],
            "mean": float(c["mean"][0]) if len(c["mean"]) == 1 else c["mean"],
            "variance": float(c["covariance"][0, 0]),
            "sd": math.sqrt(c["covariance"][0, 0]),
        }[field_]


# -- quantities ------------------------------------------------------------------------------
def _q_loglik(ctx, q):
    return ctx.run(q["after"]).loglik[-1]


def _q_resp(ctx, q):
    return float(ctx.run(q["after"]).responsibilities[q["point"] - 1, q["component"] - 1])


def _q_param(ctx, q):
    return ctx.view(ctx.run(q["after"]), q["name"])


def _q_heavier(ctx, q):
    return [int(i) + 1 for i in ctx.run(q["after"]).responsibilities.argmax(axis=1)]


def _means(res):
    return [float(c["mean"][0]) for c in res.components]


def _q_left(ctx, q):
    before, after = _means(ctx.run("init")), _means(ctx.run(1))
    return int(np.argmin(np.subtract(after, before))) + 1


def _q_var_up(ctx, q):
    var = lambda r: [c["covariance"][0, 0] for c in r.components]  # noqa: E731
    return int(np.argmax(np.divide(var(ctx.run(1)), var(ctx.run("init"))))) + 1


def _q_larger_var(ctx, q):
    return int(np.argmax([c["covariance"][0, 0] for c in ctx.run(q["after"]).components])) + 1


def _q_kmeans(ctx, q):
    """K-means -- hard EM with equal weights and one tied variance -- and the GMM, from the same centres."""
    from .spec import spec_from_dict

    km_model = CompiledModel(
        get_derivation(
            spec_from_dict(
                {
                    "components": ctx.model.K,
                    "dim": ctx.model.d,
                    "mixing": "equal",
                    "variance": "tied",
                    **({"covariance": "spherical"} if ctx.model.d > 1 else {}),
                }
            )
        )
    )
    start = ctx.run("init").components
    init = km_model.params_from_components([{"mean": c["mean"], "variance": 1.0} for c in start])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmsymWarning)
        hard = run_em(km_model, ctx.X, init, max_iter=1000, tol=0, hard=True)
    centres = np.array(sorted(_means(hard)))
    gmm = np.array(sorted(_means(ctx.run("converged"))))
    same = bool(np.allclose(centres, gmm, atol=1e-3))
    return {
        "kmeans": centres.round(4).tolist(),
        "gmm": gmm.round(4).tolist(),
        "centres": "same" if same else "different",
    }


def _q_init_dep(ctx, q):
    """EM from several starts (the exercise's, then k-means++ seeds): do the estimates differ?"""
    from .em import default_init

    seed = q.get("seed", 0)
    starts = ([ctx.init] if ctx.init is not None else []) + [default_init(ctx.model, ctx.X, seed + i) for i in range(5)]
    finals = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmsymWarning)
        for start in starts:
            r = run_em(ctx.model, ctx.X, start, max_iter=5000, tol=1e-12)
            finals.append({"loglik": round(r.loglik[-1], 6), "means": sorted(round(m, 4) for m in _means(r))})
    distinct = {tuple(f["means"]) for f in finals}
    return {"runs": finals, "estimates": "differ" if len(distinct) > 1 else "agree"}


def _q_monotone(ctx, q):
    res = ctx.run(50)
    return bool(np.min(np.diff(res.loglik)) >= -1e-9 * abs(res.loglik[-1]))


def _q_mean_moves(ctx, q):
    before, after = ctx.run("init"), ctx.run(1)
    out: dict[str, Any] = {}
    for k, (b, a) in enumerate(zip(_means(before), _means(after)), start=1):
        out[f"mean_{k}"] = "left" if a < b else "right" if a > b else "stays"
    for k, (b, a) in enumerate(zip(before.components, after.components), start=1):
        out[f"weight_{k}"] = "increases" if a["weight"] > b["weight"] else "decreases"
    out["loglik"] = "increases" if after.loglik[-1] >= before.loglik[-1] else "decreases"
    return out


_NUMERIC = {"loglik": _q_loglik, "responsibility": _q_resp, "parameter": _q_param}
_CHECKS = {
    "heavier_component": _q_heavier,
    "moves_left_more": _q_left,
    "variance_increases_more": _q_var_up,
    "larger_variance": _q_larger_var,
    "kmeans_vs_gmm": _q_kmeans,
    "init_dependence": _q_init_dep,
    "likelihood_never_decreases": _q_monotone,
    "mean_moves": _q_mean_moves,
    **_NUMERIC,
}


# -- formulas in the student's notation ---------------------------------------------------------
_DEFAULT_NOTATION = {
    "gamma[n,k]": "gamma_{n}{k}",
    "x[n]": "x_{n}",
    "mu[k]": "mu_{k}",
    "sigma2[k]": "sigma2_{k}",
    "pi[k]": "pi_{k}",
    "normal[k]": "N_{k}",
}


def _formula_source(ctx: _Context, part: Part):
    """(derivation, generic) the part's formula comes from: the general derivation for component k."""
    q = part.spec["quantity"]
    generic = (q.get("component") == "k") or (q["what"] in ("update", "stationarity") and q["param"].endswith("_k"))
    return (ctx.general if generic else ctx.derivation), generic


def _instantiate(ctx: _Context, part: Part, expr, generic: bool):
    """Fix K (a concrete model asked about component k) and N (a part with written-out points)."""
    m = _formula_source(ctx, part)[0].model
    subs = {}
    if generic and ctx.ex.model.concrete:
        subs[m.K] = ctx.ex.model.components
    if part.spec.get("points"):
        subs[m.N] = part.spec["points"]
    return expr.subs(subs).doit() if subs else expr


def _formula(ctx: _Context, part: Part) -> tuple[sp.Expr, tuple[Step, ...]]:
    q = part.spec["quantity"]
    d, generic = _formula_source(ctx, part)
    m = d.model
    if q["what"] == "estep":
        comp = m.k if generic else q.get("component", 1)
        expr = m.posterior(comp).rhs
        steps = tuple(s for s in d.steps if s.title == "E-step")
    elif q["what"] == "stationarity":
        step = next(s for s in d.steps if s.param == q["param"] and s.title == "Set the derivative to zero")
        expr = step.expr.lhs
        steps = tuple(s for s in d.steps_for(q["param"]) if s.title.startswith(("Differentiate", "Set the")))
    else:
        u = d.update(q["param"])
        expr = u.expr
        steps = tuple(d.steps_for(q["param"]))
    return _instantiate(ctx, part, expr, generic), steps


_REDERIVED: dict = {}  # (model, part) -> Mistakes: they depend on the derivation and notation, not the numbers


def _rederived(ctx: _Context, part: Part):
    """The part's re-derived mistakes (emsym.mistakes) as grader Mistakes, in the part's notation.

    Computed once per model and part (re-deriving takes sympy a tenth of a second or more) and
    shared by every variant of the exercise, whose formula parts do not depend on its numbers.
    """
    key = (repr(ctx.ex.model), repr(part))
    if key not in _REDERIVED:
        if len(_REDERIVED) > 512:
            _REDERIVED.clear()
        _REDERIVED[key] = _rederive_part(ctx, part)
    return _REDERIVED[key]


def _rederive_part(ctx: _Context, part: Part):
    from .grading import Mistake
    from .mistakes import estep_mistakes, rederive

    q = part.spec["quantity"]
    d, generic = _formula_source(ctx, part)
    if q["what"] == "estep":
        found = estep_mistakes(d.model.posterior(d.model.k if generic else q.get("component", 1)))
    else:
        found = rederive(d, q["param"], equation=q["what"] == "stationarity")
    notation = part.spec.get("notation", {})
    m = d.model
    counts = {}
    if part.spec.get("points"):  # the points are written out: so is N_k = sum_n gamma_nk
        comps = [m.k] if generic else list(getattr(m, "comps", []))
        counts = {m.count_symbol(c): sp.Sum(m.gamma[m.n, c], (m.n, 1, m.N)) for c in comps}
    out = []
    for r in found:
        expr = _rename(_instantiate(ctx, part, r.expr.xreplace(counts), generic), notation, d.model)
        shown = _formula_text(expr) + (" = 0" if q["what"] == "stationarity" else "")
        out.append(
            Mistake(
                r.key,
                r.describe(lambda t: _formula_text(_rename(t, notation, d.model))),
                shown,
                step=r.step,
                correct=_equation_text(r.correct, notation, d.model),
                wrong=_equation_text(r.wrong, notation, d.model),
            )
        )
    return out


def _equation_text(eq, notation: dict, model) -> str:
    return f"{_formula_text(_rename(eq.lhs, notation, model))} = {_formula_text(_rename(eq.rhs, notation, model))}"


def _rename(expr: sp.Expr, notation: dict, model) -> sp.Expr:
    table = dict(_DEFAULT_NOTATION)
    table.update(notation)
    patterns = {}
    for key, template in table.items():
        read = notation_slots(key)
        assert read is not None  # validated when the exercise was loaded
        base, slots = read
        patterns[base] = (slots, template)

    def name_for(base: str, indices) -> sp.Symbol | None:
        if base not in patterns:
            return None
        slots, template = patterns[base]
        values = {s: text(i) for s, i in zip(slots, indices)}
        return sp.Symbol(fill_notation(template, values))

    def fix_normal(e):  # first, while the mean still carries its component index
        # the component index sits on the mean, or on the variance when the mean is shared
        idx = [a.indices[0] for a in e.args[1:3] if isinstance(a, sp.Indexed)]
        comp = idx[0] if idx else sp.Symbol("k")
        s = name_for("normal", [comp])
        return s if s is not None else e

    def fix_indexed(e):
        s = name_for(str(e.base.label), e.indices)
        return s if s is not None else e

    expr = expr.replace(lambda e: isinstance(e, Normal), fix_normal)
    return expr.replace(lambda e: isinstance(e, sp.Indexed), fix_indexed)


def _formula_text(expr: sp.Expr) -> str:
    return text(expr).replace("**", "^")


# -- solving the parts -------------------------------------------------------------------------
def _fmt(v: float, tol) -> str:
    from .grading import parse_tolerance

    kind, t = parse_tolerance(tol) if tol is not None else ("rel", 1e-4)
    if kind == "abs" and t > 0:
        digits = max(0, -math.floor(math.log10(2 * t) + 1e-9))
        return f"{v:.{digits}f}"
    if kind == "sig":
        return f"{v:.{int(t)}g}"
    return f"{v:.6g}"


def _published_note(part: Part, default: str) -> str:
    return part.published_note or default


def _numeric_mistakes(ctx, q) -> tuple[list, list]:
    """(mistakes, other labels) for a numeric part: values typical EM mistakes give, computed from
    the same E-step, and the same quantity for the other components (a label swap)."""
    mistakes: list = []
    others: list = []
    if ctx.model is None or ctx.X is None or ctx.X.shape[1] != 1:
        return mistakes, others
    if q["what"] == "responsibility" and q["after"] == "init" and ctx.init is not None:
        joint = np.exp(ctx.model.log_joint(np.ascontiguousarray(ctx.X.T), ctx.init))
        mistakes.append(
            (
                "not-normalised",
                "that is pi_k N(x | mu_k, sigma_k^2) before dividing by the sum over "
                "the components: normalise the responsibilities.",
                float(joint[q["component"] - 1, q["point"] - 1]),
            )
        )
        others = [
            float(ctx.run("init").responsibilities[q["point"] - 1, k])
            for k in range(ctx.model.K)
            if k != q["component"] - 1
        ]
        return mistakes, others
    if q["what"] != "parameter":
        return mistakes, others
    name = q["name"]
    field_, _, comp = name.rpartition("_")
    if not (comp.isascii() and comp.isdigit() and len(comp) < 4):
        return mistakes, others
    k = int(comp) - 1
    kind = {
        "mu": "mean",
        "mean": "mean",
        "sigma2": "variance",
        "variance": "variance",
        "sd": "sd",
        "pi": "weight",
        "weight": "weight",
    }.get(field_)
    if kind is None:
        return mistakes, others
    res = ctx.run(q["after"])
    others = [ctx.view(res, f"{field_}_{j + 1}") for j in range(ctx.model.K) if j != k]
    if q["after"] != 1 or ctx.ex.responsibilities is not None:
        return mistakes, others
    # Every mistaken value comes from the compiled model's own M-step, not from a second copy of it:
    # the unweighted update is the M-step with responsibility 1 for every point; dividing by n
    # scales the right answer by N_k / n; the old mean adds (new mean - old mean)^2 to the weighted
    # variance (sum_n g_n (x_n - m)^2 / N_k = var + (mean - m)^2); the count is the weight times n.
    model, X = ctx._numeric()
    start, one = ctx.run("init"), ctx.run(1)
    Nk, n = float(start.responsibilities[:, k].sum()), X.shape[0]
    ones = np.zeros((model.K, n))
    ones[k] = 1.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", EmsymWarning)
        plain = model.components(model.m_step(np.ascontiguousarray(X.T), ones, ctx.start()))[k]
    new, old = one.components[k], start.components[k]
    by_n = "you divided by the number of points n; divide by N_k, the sum of the responsibilities."
    if kind == "mean":
        mistakes += [
            (
                "unweighted",
                "that is the plain average of the data: weight each point by its responsibility gamma_nk.",
                float(plain["mean"][0]),
            ),
            ("n-for-Nk", by_n, float(new["mean"][0] * Nk / n)),
        ]
    if kind in ("variance", "sd"):
        f = np.sqrt if kind == "sd" else float
        var = float(new["covariance"][0, 0])
        mistakes += [
            (
                "stale-mean",
                "you used the old mean; the variance update uses the new mean from the same M-step.",
                float(f(var + float(new["mean"][0] - old["mean"][0]) ** 2)),
            ),
            ("n-for-Nk", by_n, float(f(var * Nk / n))),
            (
                "unweighted",
                "that is the plain variance of the data: weight each point by its responsibility gamma_nk.",
                float(f(plain["covariance"][0, 0])),
            ),
        ]
    if kind == "weight":
        mistakes.append(
            (
                "not-divided",
                "that is the effective count N_k; the weight is N_k divided by the number of points.",
                float(new["weight"] * n),
            )
        )
    return mistakes, others


def _solve_numeric(ctx, part: Part) -> PartResult:
    from .grading import FormulaGrader

    q = part.spec["quantity"]
    value = _NUMERIC[q["what"]](ctx, q)
    if np.ndim(value):
        shown = "[" + ", ".join(f"{float(v):.6g}" for v in value) + "]"
        return PartResult(part, [float(v) for v in value], shown, exact=shown)
    tol = part.spec.get("tolerance")
    grader = FormulaGrader(repr(float(value)), tolerance=tol if tol is not None else "0.1%")
    mistakes, others = _numeric_mistakes(ctx, q)
    res = PartResult(
        part,
        float(value),
        _fmt(value, tol),
        exact=repr(float(value)),
        grader=grader,
        details={"mistakes": mistakes, "other_labels": others},
    )
    if part.published is None:
        return res
    verdict = grader.grade(str(part.published))
    agrees = verdict.verdict == "correct"
    note = None if agrees else _published_note(part, f"the source gives {part.published}; emsym computes {value:.6g}")
    if not agrees and part.published_note:
        note = f"the source gives {part.published}; emsym computes {value:.6g}. {part.published_note}"
    return dataclasses.replace(res, agrees=agrees, erratum=note)


def _solve_formula(ctx, part: Part) -> PartResult:
    from .grading import FormulaGrader, GraderError

    expr, steps = _formula(ctx, part)
    expr = _rename(expr, part.spec.get("notation", {}), ctx.general.model)
    q = part.spec["quantity"]
    equation = q["what"] == "stationarity"
    shown = _formula_text(expr) + (" = 0" if equation else "")
    allowed = set(part.spec["names"])
    where = part.spec.get("where", [])
    unknowns = []
    if equation:
        param = _rename(
            _formula_source(ctx, part)[0].update(q["param"]).param.symbol,
            part.spec.get("notation", {}),
            ctx.general.model,
        )
        unknowns = [_formula_text(param)]
    try:
        grader = FormulaGrader(
            shown,
            where=where,
            tolerance=part.spec.get("tolerance"),
            indices=part.spec.get("indices"),
            unknowns=unknowns,
            mistakes=lambda: _rederived(ctx, part),
            targets=_targets(ctx, part),
        )
    except GraderError as exc:
        raise ExerciseError(
            [f"{part.where}: parts.{part.id}: the computed answer {shown!r} cannot be graded: {exc}"]
        ) from None
    extra = set(grader.expected.names) - allowed
    if extra:
        raise ExerciseError(
            [
                f"{part.where}: parts.{part.id}: names: the expected answer {shown} uses "
                f"{', '.join(sorted(extra))}, which 'names' does not list ({', '.join(sorted(allowed))}); "
                "add them or change 'notation'"
            ]
        )
    shown_latex = latex(Equation(expr, 0)) if equation else latex(expr)
    res = PartResult(part, shown, shown, exact=shown, latex=shown_latex, steps=steps, grader=grader)
    if part.published is None:
        return res
    verdict = grader.grade(str(part.published))
    agrees = verdict.verdict == "correct"
    note = None if agrees else f"the source's answer {part.published} is not equivalent to {shown} ({verdict.feedback})"
    if not agrees:
        _suggest_where(ctx, part, shown, where)
    return dataclasses.replace(res, agrees=agrees, erratum=note, details={"published_feedback": verdict.feedback})


def _targets(ctx: _Context, part: Part) -> list[str]:
    """The name an update part's answer is the value of, in the part's notation (mu_k = ... is read)."""
    q = part.spec["quantity"]
    if q["what"] != "update":
        return []
    d = _formula_source(ctx, part)[0]
    symbol = _rename(d.update(q["param"]).param.symbol, part.spec.get("notation", {}), ctx.general.model)
    return [_formula_text(symbol)]


def _suggest_where(ctx: _Context, part: Part, shown: str, where: list[str]) -> None:
    """Warn the author when the source's (textbook) answer matches only because each point's
    responsibilities sum to 1 -- a fact emsym's derivation used to simplify -- and suggest the `where:`."""
    from .grading import FormulaGrader, GraderError

    points = part.spec.get("points")
    if ctx.model is None or not points:
        return
    table = dict(_DEFAULT_NOTATION) | part.spec.get("notation", {})
    template = next((t for key, t in table.items() if key.replace(" ", "").startswith("gamma[")), None)
    if template is None:
        return
    conditions = [
        " + ".join(fill_notation(template, {"n": str(n), "k": str(k)}) for k in range(1, ctx.model.K + 1)) + " = 1"
        for n in range(1, points + 1)
    ]
    missing = [c for c in conditions if c not in where]
    if not missing:
        return
    try:
        ok = FormulaGrader(shown, where=[*where, *missing]).grade(str(part.published)).verdict == "correct"
    except GraderError:
        return
    if ok:
        import json

        warnings.warn(
            f"{part.where}: parts.{part.id}: the source's answer {part.published} equals the computed answer "
            f"{shown} only when each point's responsibilities sum to 1; add where: {json.dumps([*where, *missing])} "
            "so that students who write it that way are marked correct",
            EmsymWarning,
            stacklevel=2,
        )


def _solve_derivation(ctx, part: Part) -> PartResult:
    name = part.spec["param"]
    d = ctx.general if name.endswith("_k") and name not in {u.name for u in ctx.derivation.updates} else ctx.derivation
    u = d.update(name)
    return PartResult(
        part,
        u.text,
        u.text,
        exact=u.text,
        latex=latex(sp.Eq(u.param.symbol, u.display)),
        steps=tuple(d.steps_for(name)),
        details={"uses": u.uses, "conditional": u.conditional, "notes": d.notes},
    )


def _solve_assignment(ctx, part: Part) -> PartResult:
    value = _CHECKS[part.spec["quantity"]["what"]](ctx, part.spec["quantity"])
    res = PartResult(part, value, ", ".join(map(str, value)), exact=str(value))
    if part.published is None:
        return res
    agrees = list(part.published) == list(value)
    return dataclasses.replace(
        res,
        agrees=agrees,
        erratum=None if agrees else _published_note(part, f"the source gives {part.published}; emsym computes {value}"),
    )


def _solve_choice(ctx, part: Part) -> PartResult:
    opts = part.spec["options"]
    correct = [i + 1 for i, o in enumerate(opts) if o.get("correct")]
    details, erratum = {}, None
    check = part.spec.get("check")
    if check is not None:
        value = _CHECKS[check["what"]](ctx, check)
        details["computed"] = value
        if isinstance(value, dict) and "field" in check:
            value = value[check["field"]]
        tagged = [i + 1 for i, o in enumerate(opts) if "computed" in o]
        if tagged:
            computed_correct = [i + 1 for i, o in enumerate(opts) if "computed" in o and o["computed"] == value]
            if computed_correct != [c for c in correct if c in tagged]:
                erratum = (
                    f"the computation ({check['what']} = {value}) supports option(s) {computed_correct}, "
                    f"but the exercise marks {correct} correct"
                )
    agrees = None
    if part.published is not None:
        pub = part.published if isinstance(part.published, list) else [part.published]
        agrees = sorted(pub) == correct
        if not agrees:
            erratum = _published_note(part, f"the source marks {pub}; the correct option(s): {correct}")
    shown = ", ".join(f"({chr(96 + c)}) {opts[c - 1]['text']}" for c in correct)
    return PartResult(part, correct, shown, agrees=agrees, erratum=erratum, details=details)


def _solve_explain(ctx, part: Part) -> PartResult:
    details = {}
    if part.spec.get("check") is not None:
        details["computed"] = _CHECKS[part.spec["check"]["what"]](ctx, part.spec["check"])
    return PartResult(part, part.spec["model_answer"], part.spec["model_answer"], details=details)


_SOLVERS = {
    "numeric": _solve_numeric,
    "formula": _solve_formula,
    "derivation": _solve_derivation,
    "assignment": _solve_assignment,
    "choice": _solve_choice,
    "explain": _solve_explain,
}


def _short_value(v) -> str:
    """6 significant digits; a vector in brackets, a matrix (a Bernoulli p, one row per component) as rows."""
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    if a.ndim == 1:
        return "[" + ", ".join(f"{x:.6g}" for x in a) + "]"
    return "[" + "; ".join(_short_value(row)[1:-1] for row in a) + "]"


def _tables(ctx) -> dict:
    """Intermediate numbers for the sheet: responsibilities per point, N_k, the first update."""
    if ctx.model is None or ctx.X is None or (ctx.init is None and ctx.ex.responsibilities is None):
        return {}
    out: dict[str, Any] = {}
    if ctx.ex.responsibilities is not None:
        R = np.array(ctx.ex.responsibilities)
        out["responsibilities_given"] = True
    else:
        R = ctx.run("init").responsibilities
        out["loglik_init"] = ctx.run("init").loglik[0]
    out["points"] = [list(map(float, row)) for row in ctx.X]
    out["responsibilities"] = R.tolist()
    out["counts"] = R.sum(axis=0).tolist()
    one = ctx.run(1)
    out["after_one"] = {k: _short_value(v) for k, v in one.params.items()}
    out["loglik_after_one"] = one.loglik[-1]
    return out


def solve(ex: Exercise) -> Solution:
    """Compute every part of an exercise (see the module docstring).

    An exercise with ``randomise:`` is solved as written, after checking that its randomisation
    gives a well-posed variant (seed 0); ``emsym.variants.variant`` gives a student's variant.
    """
    if ex.randomise is not None and ex.seed is None:
        from .variants import VariantError, variant

        try:
            variant(ex, 0)
        except VariantError as exc:
            line, col = ex.marks.get(("randomise",), (1, 1))
            raise ExerciseError([f"{ex.path}:{line}:{col}: {str(exc).split(': ', 1)[1]}"]) from None
    try:
        ctx = _Context(ex)
        parts = tuple(_SOLVERS[p.kind](ctx, p) for p in ex.parts)
        parts = _with_follow_through(ctx, parts)
        tables = _tables(ctx)
        run = iters = None
        if ctx.model is not None and ctx.X is not None and (ctx.init is not None or ex.responsibilities is not None):
            run = ctx.run("converged")
            iters = tuple(ctx.run(i).params for i in range(4)) if ex.responsibilities is None else ()
    except EmsymError as exc:
        if isinstance(exc, ExerciseError):
            raise
        line, col = ex.marks.get(("model",), (1, 1))
        raise ExerciseError([f"{ex.path}:{line}:{col}: {exc}"]) from None
    return Solution(ex, ctx.derivation, parts, tables, run, iters or ())


# -- follow-through (error carried forward) -----------------------------------------------------
def _with_follow_through(ctx: _Context, parts: tuple) -> tuple:
    """Attach to each part with ``uses:`` a check of whether an answer follows from the student's
    own earlier answers: ``details['follow'](earlier: {part id: answer}, answer) -> bool | None``."""
    by_id = {r.part.id: r for r in parts}
    out = []
    for r in parts:
        uses = r.part.spec.get("uses")
        if uses and r.grader is not None:
            follow = _follow_formula(r, by_id) if r.part.kind == "formula" else _follow_numeric(ctx, r, by_id)
            if follow is not None:
                r = dataclasses.replace(r, details={**r.details, "follow": follow})
        out.append(r)
    return tuple(out)


def _follow_formula(r: PartResult, by_id: dict):
    """An update part after the stationarity part of the same parameter: the student's update must
    solve the student's own condition (solved numerically at the sample points)."""
    q = r.part.spec["quantity"]
    sources = [
        by_id[u]
        for u in r.part.spec["uses"]
        if by_id[u].part.kind == "formula"
        and by_id[u].part.spec["quantity"]["what"] == "stationarity"
        and by_id[u].part.spec["quantity"]["param"] == q.get("param")
    ]
    if q["what"] != "update" or not sources:
        return None
    cond = sources[0]

    def follow(earlier: dict, answer: str) -> bool | None:
        if cond.part.id not in earlier:
            return None
        return cond.grader.solves(earlier[cond.part.id], answer)

    return follow


def _follow_numeric(ctx: _Context, r: PartResult, by_id: dict):
    """A number computed one EM step after earlier numbers: recompute it from the student's values.

    Earlier responsibilities (after t iterations) feed the M-step that gives parameters after t + 1;
    an earlier parameter (after t) feeds the E-step at t (responsibilities, log-likelihood) and
    the next iteration (parameters after t + 1).
    """
    q = r.part.spec["quantity"]
    if ctx.model is None or ctx.X is None or q["what"] not in ("parameter", "responsibility", "loglik"):
        return None
    used = [by_id[u] for u in r.part.spec["uses"] if by_id[u].part.kind == "numeric"]
    if not used:
        return None
    step = lambda a: 0 if a == "init" else a  # noqa: E731

    def follow(earlier: dict, answer: str) -> bool | None:
        from .em import run_em

        model, X = ctx._numeric()
        got = r.grader.number(answer)
        if got is None:
            return None
        values = {}
        for u in used:
            v = u.grader.number(earlier.get(u.part.id, "")) if u.part.id in earlier else None
            if v is None:
                return None
            values[u.part.id] = v
        after = q["after"]
        if after == "converged":
            return None
        first = used[0].part.spec["quantity"]
        base = first["after"]
        if base == "converged":
            return None
        res = ctx.run(base)
        params = dict(res.params)
        R = np.array(res.responsibilities, dtype=float)
        resp_changed = False
        for u in used:
            uq = u.part.spec["quantity"]
            if uq.get("after") != base:
                return None
            v = values[u.part.id]
            if uq["what"] == "responsibility":
                p_, c_ = uq["point"] - 1, uq["component"] - 1
                others = [j for j in range(R.shape[1]) if j != c_]
                rest = R[p_, others].sum()
                R[p_, c_] = v
                if rest > 0:
                    R[p_, others] *= (1 - v) / rest
                resp_changed = True
            elif uq["what"] == "parameter" and uq["name"] in params:
                params[uq["name"]] = v
            else:
                return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmsymWarning)
            try:
                if resp_changed:
                    if step(after) != step(base) + 1 or q["what"] != "parameter":
                        return None
                    new = model.m_step(np.ascontiguousarray(X.T), np.ascontiguousarray(R.T), params)
                    res2 = run_em(model, X, new, max_iter=0, tol=-1, labels=ctx.labels, responsibilities=True)
                else:
                    n = step(after) - step(base)
                    if n not in (0, 1):
                        return None
                    res2 = run_em(model, X, params, max_iter=n, tol=-1, labels=ctx.labels, responsibilities=True)
            except (EmsymError, ValueError, FloatingPointError, np.linalg.LinAlgError):
                return None
        if q["what"] == "parameter":
            want = ctx.view(res2, q["name"])
        elif q["what"] == "responsibility" and res2.responsibilities is not None:
            want = float(res2.responsibilities[q["point"] - 1, q["component"] - 1])
        else:
            want = float(res2.loglik[-1])
        return bool(np.ndim(want) == 0 and r.grader.within(got, float(want)))

    return follow


def validate(path: str | os.PathLike) -> tuple[list[Solution], list[str]]:
    """Every exercise under PATH checked as ``solve`` would use it: the schema, then solving it.

    ``emsym validate`` therefore refuses exactly what ``emsym solve`` refuses (a ``names`` list that
    misses a symbol of the computed answer, starting weights that do not sum to 1, ...), each
    problem as FILE:LINE:COL.
    """
    from .exercise import exercise_files, load_exercise

    good, problems = [], []
    for f in exercise_files(path):
        try:
            good.append(solve(load_exercise(f)))
        except ExerciseError as exc:
            problems.extend(exc.problems)
    return good, problems
