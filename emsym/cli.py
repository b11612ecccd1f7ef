"""The ``emsym`` command: parse arguments, call the library, format the result.

Exit status: 0 success; 1 ``check`` found a failure; 2 a user error (bad model, data,
init or arguments), printed as one line ``emsym: error: ...`` -- never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

from . import __version__
from .exceptions import EmsymError, EmsymWarning

__all__ = ["main"]


def _model_help() -> str:
    from .spec import preset_names

    return f"a preset ({', '.join(preset_names())}) or a model YAML file"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emsym",
        description="Derive, check, run, teach and grade EM for mixture models (Gaussian, Bernoulli, "
        "multinomial, Poisson, exponential, your own density): symbolic derivations, numeric proofs, "
        "model selection, worked solution sheets, safe grading.",
    )
    p.add_argument("--version", action="version", version=f"emsym {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("derive", help="derive the EM updates of a model symbolically, step by step")
    d.add_argument("model", metavar="MODEL", help=_model_help())
    d.add_argument("--format", choices=["text", "latex", "json"], default="text")
    d.add_argument("--no-cache", action="store_true", help="derive afresh, ignoring the derivation cache")

    c = sub.add_parser("check", help="prove a model's derived updates numerically")
    c.add_argument("model", metavar="MODEL", help=_model_help())
    c.add_argument("--format", choices=["text", "json"], default="text")
    c.add_argument("--points", type=int, default=500, help="generated data points (default 500)")
    c.add_argument("--seed", type=int, default=0)

    r = sub.add_parser("run", help="run EM with the derived updates on a CSV file")
    r.add_argument("model", metavar="MODEL", help=_model_help())
    r.add_argument("--data", required=True, metavar="FILE", help="CSV with a header; optional column 'label'")
    r.add_argument("--init", metavar="FILE", help="initial values (YAML or JSON), components in order 1..K")
    r.add_argument(
        "--max-iter", type=int, default=1000, metavar="N", help="iteration limit (default 1000; 0: no iteration)"
    )
    r.add_argument(
        "--tol",
        type=float,
        default=1e-8,
        metavar="T",
        help="converged when the total log-likelihood changes by at most T (default 1e-8) ...",
    )
    r.add_argument(
        "--param-tol",
        type=float,
        default=1e-10,
        metavar="P",
        help="... and no parameter moves by more than P on the data's scale (default 1e-10)",
    )
    r.add_argument(
        "--iterations",
        type=int,
        metavar="N",
        help="run exactly N iterations: no stopping rule (overrides --max-iter, --tol and --param-tol)",
    )
    r.add_argument("--seed", type=int, default=0, help="seed of the default k-means++ initialisation")
    r.add_argument(
        "--variance-floor",
        type=float,
        metavar="F",
        help="smallest variance allowed (default 1e-6 x the overall data variance)",
    )
    r.add_argument("--responsibilities", action="store_true", help="include the n x K responsibilities")
    r.add_argument(
        "--hard",
        action="store_true",
        help="hard (classification) EM: each point wholly to its most probable component; with "
        "equal weights and a tied spherical variance this is K-means",
    )
    r.add_argument(
        "--silhouette",
        action="store_true",
        help="add the silhouette coefficient of the hard assignment (on at most 5000 sampled points)",
    )
    r.add_argument(
        "--exact-m-step",
        action="store_true",
        help="for an ECM model (shared mean, free variances) cycle the conditional updates to the "
        "joint maximiser of Q in every iteration",
    )
    r.add_argument("--format", choices=["text", "json"], default="text")

    g = sub.add_parser("grade", help="grade typed answers (an expected expression, or parts of exercises)")
    g.add_argument(
        "exercise",
        nargs="?",
        metavar="EXERCISE",
        help="an exercise file or folder (with --part or --submissions); omit with --expected",
    )
    g.add_argument("--expected", metavar="EXPR", help="the expected answer, e.g. 'N_k/N'")
    g.add_argument("--part", metavar="ID", help="the part of EXERCISE to grade --answer against")
    g.add_argument("--answer", metavar="TEXT", help="one typed answer (one starting with '-' works too: --answer -x_1)")
    g.add_argument(
        "--answers",
        metavar="FILE",
        help="with --expected: one answer per line ('-' for standard "
        "input); one verdict per line out, in the same order",
    )
    g.add_argument(
        "--submissions",
        metavar="FILE.csv",
        help="with EXERCISE: a CSV with the columns student,exercise,part,answer; one output row per input row",
    )
    g.add_argument(
        "--out",
        metavar="FILE",
        help="with --submissions: write the results here (an interrupted "
        "run resumes); for gradescope with several students, a folder; '-' or none: standard output",
    )
    g.add_argument(
        "--where",
        action="append",
        default=[],
        metavar='"LHS = RHS"',
        help="a side condition the answer may use, e.g. 'gamma_11 + gamma_21 = 1' (repeatable)",
    )
    g.add_argument(
        "--given",
        action="append",
        default=[],
        metavar="PART=ANSWER",
        help="with --part: the student's answer to an earlier part this one uses (follow-through credit; repeatable)",
    )
    g.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="with --submissions: grade in N processes (default: every core)",
    )
    g.add_argument(
        "--unknown",
        action="append",
        default=[],
        metavar="NAME",
        help="with --expected EQUATION: the name it is solved for (a multiple by a factor free of it is correct)",
    )
    g.add_argument(
        "--index",
        action="append",
        default=[],
        metavar="LETTER=SIZE",
        help="with --expected: an index and its size, e.g. d=D (default n, i, m over N and k, j, l over K)",
    )
    g.add_argument(
        "--tolerance",
        metavar="T",
        help="for a number: 0.05, '1%%', 'nearest tenth', "
        "'3 significant figures' (default 0.1%%); for a formula: a relative tolerance (default 1e-8)",
    )
    g.add_argument(
        "--format",
        choices=["text", "json", "jsonl", "csv", "gradescope"],
        default=None,
        help="text or json for one answer (default text); jsonl for --answers; csv (default), json "
        "or gradescope for --submissions",
    )

    sv = sub.add_parser("serve", help="the practice web app: exercises in a browser, graded as typed")
    sv.add_argument(
        "path", nargs="?", default=None, metavar="PATH", help="a folder of exercises (default: the bundled ones)"
    )
    sv.add_argument("--port", type=int, default=8000, help="the port on 127.0.0.1 (default 8000)")
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    sv.add_argument(
        "--db",
        default="emsym-practice.sqlite",
        metavar="FILE",
        help="the SQLite file of attempts (created on first start; default emsym-practice.sqlite here)",
    )

    xp = sub.add_parser("export", help="export exercises to PrairieLearn, Moodle or Gradescope")
    xp.add_argument("target", choices=["prairielearn", "moodle", "gradescope"])
    xp.add_argument("exercises", nargs="+", metavar="EX", help="exercise files or folders")
    xp.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="prairielearn: a folder of questions; moodle: quiz.xml; gradescope: autograder.zip",
    )
    xp.add_argument(
        "--variants", type=int, default=10, metavar="N", help="moodle: variants per randomised question (default 10)"
    )

    v = sub.add_parser("solve", help="solve exercise files and render worked solution sheets")
    v.add_argument("path", metavar="PATH", help="an exercise YAML file or a folder of them")
    v.add_argument(
        "--format",
        default="md",
        help="md, html, tex, pdf (through pdflatex) or json, or several joined by commas (e.g. md,html); default md",
    )
    v.add_argument(
        "--out",
        metavar="DIR",
        help="write one sheet per exercise into DIR (needed for several sheets); '-' or none: standard output",
    )
    v.add_argument("--no-figures", action="store_true", help="skip the matplotlib figures")
    v.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="S",
        help="solve the variant with this seed (an exercise with randomise:); the same seed gives the same numbers",
    )
    v.add_argument(
        "--questions-only",
        action="store_true",
        help="write question sheets (the problem and every prompt, no answers) to hand out before the solutions",
    )

    sel = sub.add_parser("select", help="fit every covariance model and K and rank them by BIC (as R's Mclust)")
    sel.add_argument("--data", required=True, metavar="FILE", help="CSV with a header, one point per row")
    sel.add_argument("--components", default="1..9", metavar="K", help="a range (1..9, the default) or a list (2,3,5)")
    sel.add_argument(
        "--models", metavar="NAMES", help="comma-separated: E,V in one dimension; mclust names EII..VVV (default: all)"
    )
    sel.add_argument(
        "--starts", type=int, default=10, help="k-means++ starts per fit, besides the hierarchical one (default 5)"
    )
    sel.add_argument("--seed", type=int, default=0)
    sel.add_argument("--max-iter", type=int, default=1000, metavar="N")
    sel.add_argument("--tol", type=float, default=1e-8, metavar="T")
    sel.add_argument("--plot", metavar="FILE", help="also write the BIC plot (PNG) here")
    sel.add_argument("--format", choices=["text", "json"], default="text")

    a = sub.add_parser("validate", help="check exercise files against the schema")
    a.add_argument("path", metavar="PATH", help="an exercise YAML file or a folder of them")

    s = sub.add_parser("presets", help="list the preset models")
    s.add_argument("--format", choices=["text", "json"], default="text")
    return p


def _spec_for(args):
    from .spec import load_spec

    return load_spec(args.model)


# -- commands ---------------------------------------------------------------------------
def cmd_derive(args) -> int:
    from .cache import get_derivation
    from .render import render_derivation

    d = get_derivation(_spec_for(args), use_cache=not args.no_cache)
    if args.format == "json":
        print(_json(d.to_dict(), indent=2))
    else:
        sys.stdout.write(render_derivation(d, args.format))
    return 0


def cmd_check(args) -> int:
    from .check import check

    if args.points < 10:
        raise EmsymError(f"--points should be at least 10, but got {args.points}")
    report = check(_spec_for(args), n=args.points, seed=args.seed)
    if args.format == "json":
        print(_json(report.to_dict(), indent=2))
    else:
        print(f"Model: {report.spec.label()} (method {report.method})" + (f"; {report.note}" if report.note else ""))
        for item in report.items:
            mark = {True: "PASS", False: "FAIL", None: "SKIP"}[item.passed]
            print(f"  {mark}  {item.name}: {item.detail}")
        print("all checks passed" if report.passed else "SOME CHECKS FAILED")
    return 0 if report.passed else 1


def _run_inputs(args):
    """The spec (a vector family's d from the data), the data and the compiled model, each checked."""
    from .cache import get_model
    from .data import load_data
    from .spec import for_data

    spec = _spec_for(args)
    data = None
    if spec.general_d and not spec.general_k:
        data = load_data(args.data)  # a general d is the data's number of coordinates
        spec = for_data(spec, data.X.shape[1], args.model)
    if not spec.concrete:
        raise EmsymError(
            f"model {spec.label()!r} has components {spec.components!r} and dim {spec.dim!r}; "
            "running EM needs whole numbers: write a model file with e.g. components: 3"
        )
    for flag, value in (("--tol", args.tol), ("--param-tol", args.param_tol), ("--max-iter", args.max_iter)):
        if value < 0:
            raise EmsymError(f"{flag} should be >= 0, but got {value}")
    if args.iterations is not None and args.iterations < 0:
        raise EmsymError(f"--iterations should be >= 0, but got {args.iterations}")
    data = data or load_data(args.data)
    if data.X.shape[1] != spec.dim:
        raise EmsymError(
            f"{args.data}: the model is {spec.dim}-dimensional, but the data has "
            f"{data.X.shape[1]} coordinate column(s) {list(data.columns)}"
        )
    if data.labels is not None and data.labels.max(initial=0) > spec.components:
        bad = int(np.argmax(data.labels > spec.components))
        raise EmsymError(
            f"{args.data}: line {bad + 2}, column 'label': expected 1..{spec.components} or empty, "
            f"got {int(data.labels[bad])}"
        )
    model = get_model(spec)
    model.check_data(data.X, args.data)
    return spec, data, model


def cmd_run(args) -> int:
    from .data import load_init_components
    from .em import run_em

    spec, data, model = _run_inputs(args)
    init = None
    if args.init:
        comps = load_init_components(args.init, int(spec.dim), spec.init_fields)
        init = model.params_from_components(comps, where=args.init)
    progress = _Progress() if sys.stderr.isatty() and args.format == "text" else None
    result = run_em(
        model,
        data.X,
        init,
        max_iter=args.max_iter,
        tol=args.tol,
        param_tol=args.param_tol,
        labels=data.labels,
        variance_floor=args.variance_floor,
        responsibilities=args.responsibilities,
        seed=args.seed,
        exact_m_step=args.exact_m_step,
        hard=args.hard,
        silhouette_points=5000 if args.silhouette else None,
        callback=progress,
        iterations=args.iterations,
    )
    if progress:
        progress.done()
    if args.format == "json":
        print(_json(result.to_dict()))
    else:
        _print_run(args, spec, data, model, result)
    return 0


def _print_run(args, spec, data, model, result) -> None:
    from .family_spec import FamilySpec

    n = data.X.shape[0]
    lab = "" if data.labels is None else f" ({int((data.labels > 0).sum())} labelled)"
    print(f"Model: {spec.label()} ({model.method}); data: {args.data}, {n} points{lab}")
    if result.iterations == 0:
        print(f"No iteration: log-likelihood at the initial values {result.loglik[0]:.10g}")
    else:
        state = (
            "ran (--iterations: no stopping rule)"
            if args.iterations is not None
            else "converged"
            if result.converged
            else "stopped (not converged)"
        )
        print(
            f"{state} after {result.iterations} iteration{'s' if result.iterations != 1 else ''}; "
            f"log-likelihood {result.loglik[0]:.10g} -> "
            f"{result.loglik[-1]:.10g}"
        )
    if result.logpost is not None:
        print(f"log posterior (MAP-EM, up to a constant) {result.logpost[0]:.10g} -> {result.logpost[-1]:.10g}")
    if isinstance(spec, FamilySpec):
        _family_table(result, spec)
    else:
        _gaussian_table(result, model)
    print(
        f"free parameters {result.n_params}; BIC {result.bic:.6g}; AIC {result.aic:.6g}"
        + (f"; silhouette {result.silhouette:.4f}" if result.silhouette is not None else "")
    )
    if result.responsibilities is not None:
        print("responsibilities (one row per point):")
        for row in result.responsibilities:
            print("  " + "  ".join(f"{v:.6f}" for v in row))


def _family_table(result, spec) -> None:
    names = spec.family.parameter_names
    print(f"{'component':>9}  {'weight':>12}  " + "  ".join(f"{n:>12}" for n in names))
    for k, c in enumerate(result.components, start=1):
        cells = [
            f"{c[n]:>12.8g}" if np.ndim(c[n]) == 0 else "[" + ", ".join(f"{v:.6g}" for v in c[n]) + "]" for n in names
        ]
        print(f"{k:>9}  {c['weight']:>12.8g}  " + "  ".join(cells))


def _gaussian_table(result, model) -> None:
    full = model.full
    print(f"{'component':>9}  {'weight':>12}  {'mean':>24}  {'covariance (rows)' if full else 'variance':>12}")
    for k, c in enumerate(result.components, start=1):
        mean = ", ".join(f"{v:.8g}" for v in c["mean"])
        diag = np.diag(c["covariance"])
        if full:
            var = "; ".join(", ".join(f"{v:.8g}" for v in row) for row in c["covariance"])
        else:
            var = f"{diag[0]:.8g}" if np.allclose(diag, diag[0]) else ", ".join(f"{v:.8g}" for v in diag)
        print(f"{k:>9}  {c['weight']:>12.8g}  {mean:>24}  {var:>12}")
    if not full:  # a full model's parameters are the table above
        print("parameters: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in result.params.items()))


def cmd_select(args) -> int:
    from .data import load_data
    from .select import bic_plot, parse_components, select

    ks = parse_components(args.components)
    if args.max_iter < 1:
        raise EmsymError(f"--max-iter should be >= 1, but got {args.max_iter}")
    if not args.tol >= 0:
        raise EmsymError(f"--tol should be >= 0, but got {args.tol}")
    data = load_data(args.data)
    if data.labels is not None:
        raise EmsymError(f"{args.data}: select fits unlabelled data; remove the 'label' column")
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None

    def progress(i, total, what):
        sys.stderr.write(f"\r[{i}/{total}] {what}        ")
        sys.stderr.flush()

    sel = select(
        data.X,
        ks,
        models,
        starts=args.starts,
        seed=args.seed,
        max_iter=args.max_iter,
        tol=args.tol,
        progress=progress if sys.stderr.isatty() else None,
    )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if args.plot:
        _write(args.plot, bic_plot(sel))
    if args.format == "json":
        print(_json(sel.to_dict(), indent=2))
        return 0
    print(f"{sel.n} points in {sel.d} dimension(s); BIC = 2 log L - p log n, higher is better (as mclust)")
    print(f"{'rank':>4}  {'model':<5} {'K':>2}  {'log-likelihood':>15}  {'params':>6}  {'BIC':>12}  {'ICL':>12}  start")
    for i, f in enumerate(sel.fits, start=1):
        if f.error:
            print(f"{'-':>4}  {f.model:<5} {f.K:>2}  failed: {f.error}")
            continue
        note = "" if f.converged else " (not converged)"
        print(
            f"{i:>4}  {f.model:<5} {f.K:>2}  {f.loglik:>15.6f}  {f.n_params:>6}  {f.bic:>12.4f}  {f.icl:>12.4f}  "
            f"{f.start}{note}"
        )
    print(f"best: {sel.best.model} with {sel.best.K} component(s)" + (f"; BIC plot: {args.plot}" if args.plot else ""))
    return 0


def cmd_grade(args) -> int:
    if args.expected is not None:
        if args.exercise or args.part or args.submissions:
            raise EmsymError("--expected grades against an expression: leave out EXERCISE, --part and --submissions")
        return _grade_expected(args)
    if not args.exercise:
        raise EmsymError("give --expected EXPR, or an EXERCISE with --part ID --answer TEXT or --submissions FILE.csv")
    if args.given and not args.part:
        raise EmsymError("--given goes with --part (the earlier answers of the student whose --answer is graded)")
    if args.jobs is not None and not args.submissions:
        raise EmsymError("--jobs goes with --submissions (a batch of rows)")
    if args.unknown or args.index:
        raise EmsymError("--unknown and --index go with --expected (an exercise part sets them in its file)")
    from .grading.parts import ExerciseGraders, grade_submissions, terminal_progress

    if args.submissions:
        if args.part or args.answer is not None or args.answers:
            raise EmsymError("--submissions grades a whole CSV: leave out --part, --answer and --answers")
        fmt = args.format or "csv"
        if fmt not in ("csv", "json", "gradescope"):
            raise EmsymError(f"--submissions writes csv, json or gradescope, not {fmt}")
        graders = ExerciseGraders(args.exercise)
        for line in graders.problems:
            print(f"emsym: error: {line}", file=sys.stderr)
        if args.out == "-":
            args.out = None  # '-' is standard output, as everywhere
        try:
            jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
            if jobs < 1:
                raise EmsymError(f"--jobs should be 1 or more, not {jobs}")
            done = grade_submissions(
                graders, args.submissions, out=args.out, fmt=fmt, progress=terminal_progress(), jobs=jobs
            )
        except KeyboardInterrupt:
            if args.out:
                print(
                    "emsym: interrupted; run the same command again to resume (graded rows are kept)", file=sys.stderr
                )
            raise
        if done["not_graded"]:  # the TA's to fix: not the students' answers
            rows = ", ".join(map(str, done["not_graded"][:20])) + (" ..." if len(done["not_graded"]) > 20 else "")
            print(
                f"emsym: warning: {len(done['not_graded'])} row(s) of {args.submissions} were not graded (unknown "
                f"exercise or part, or a malformed line; not scored): rows {rows}",
                file=sys.stderr,
            )
        if args.out is None:
            text = done["text"]
            sys.stdout.write(
                text if isinstance(text, str) else json.dumps({k: json.loads(v) for k, v in text.items()}, indent=1)
            )
        else:
            extra = f" ({done['resumed']} from the interrupted run)" if done["resumed"] else ""
            print(f"{done['rows']} rows graded{extra}; written to {args.out}", file=sys.stderr)
        return 2 if graders.problems else 0
    if not args.part or args.answer is None:
        raise EmsymError("grading an exercise part needs --part ID and --answer TEXT (or --submissions FILE.csv)")
    graders = ExerciseGraders(args.exercise)
    if graders.problems:
        raise EmsymError("; ".join(graders.problems))
    exercises = list(graders.exercises)
    if len(exercises) != 1:
        raise EmsymError(f"{args.exercise}: --part needs one exercise file, but it holds {len(exercises)}")
    g, err = graders.lookup(exercises[0], args.part)
    if g is None:
        raise EmsymError(err)
    earlier = {}
    for item in args.given:
        pid, sep, ans = item.partition("=")
        if not sep or not pid.strip():
            raise EmsymError(f"--given should be PART=ANSWER, e.g. --given mu-k-condition='... = 0', not {item!r}")
        if graders.lookup(exercises[0], pid.strip())[0] is None:
            raise EmsymError(f"--given: {graders.lookup(exercises[0], pid.strip())[1]}")
        earlier[pid.strip()] = ans
    return _print_verdict(graders.grade(exercises[0], args.part, args.answer, earlier or None), args.format or "text")


def _print_verdict(v, fmt: str) -> int:
    if fmt == "json":
        print(_json(v.to_dict()))
    elif fmt == "text":
        print(f"{v.verdict} (score {v.score:g})")
        print(v.feedback)
    else:
        raise EmsymError(f"one answer prints as text or json, not {fmt}")
    return 0


def _grade_expected(args) -> int:
    from .grading import FormulaGrader
    from .grading.space import DEFAULT_INDICES

    # A stream of answers is about throughput: skip the (informational) symbolic confirmation.
    indices = None
    if args.index:
        indices = dict(DEFAULT_INDICES)
        for item in args.index:
            letter, sep, size = item.partition("=")
            if not sep:
                raise EmsymError(f"--index should be LETTER=SIZE, e.g. d=D, not {item!r}")
            indices[letter.strip()] = size.strip()
    grader = FormulaGrader(
        args.expected,
        where=args.where,
        tolerance=args.tolerance,
        symbolic=args.answers is None,
        indices=indices,
        unknowns=args.unknown,
    )
    if args.answer is not None and args.answers:
        raise EmsymError("give --answer TEXT or --answers FILE, not both")
    if args.answer is not None:
        return _print_verdict(grader.grade(args.answer), args.format or "text")
    if not args.answers:
        raise EmsymError("give --answer TEXT or --answers FILE")
    fmt = args.format or "jsonl"
    if fmt != "jsonl":
        raise EmsymError(f"--answers writes one JSON object per line: use --format jsonl, not {fmt}")
    try:
        fh = sys.stdin.buffer if args.answers == "-" else open(args.answers, "rb")
    except OSError as exc:
        raise EmsymError(f"{args.answers}: cannot read the answers file: {exc.strerror}") from None
    from .grading.grader import Verdict
    from .safeio import bounded_lines

    out = sys.stdout
    too_long = Verdict(
        "invalid", 0.0, "Could not read the answer: the line is too long (the limit is 65,536 bytes)."
    ).to_dict()
    with fh:
        for raw in bounded_lines(fh):
            verdict = too_long if raw is None else grader.grade(raw.decode("utf-8", errors="replace")).to_dict()
            out.write(json.dumps(verdict) + "\n")
    out.flush()
    return 0


def cmd_validate(args) -> int:
    from .solve import validate

    good, problems = validate(args.path)
    for line in problems:
        print(line)
    if problems:
        print(f"{len(good)} exercise(s) valid; {len(problems)} problem(s) found", file=sys.stderr)
        return 2
    print(f"{len(good)} exercise(s) valid")
    return 0


def cmd_export(args) -> int:
    from . import exports
    from .exercise import ExerciseError, exercise_files, load_exercise

    exs, problems = [], []
    for path in args.exercises:
        for f in exercise_files(path):
            try:
                exs.append(load_exercise(f))
            except ExerciseError as exc:
                problems.extend(exc.problems)
    for line in problems:
        print(f"emsym: error: {line}", file=sys.stderr)
    if not exs:
        raise EmsymError("no exercise could be loaded; nothing exported")
    if args.target == "prairielearn":
        report = exports.prairielearn(exs, args.out)
    elif args.target == "moodle":
        report = exports.moodle(exs, args.out, args.variants)
    else:
        report = exports.gradescope(exs, args.out)
    for line in report:
        print(line, file=sys.stderr)
    return 2 if problems else 0


def cmd_serve(args) -> int:
    from .render import data_dir
    from .webapp import serve

    if not 0 < args.port < 65536:
        raise EmsymError(f"--port should be 1 to 65535, not {args.port}")
    path = args.path if args.path is not None else data_dir("exercises")
    if not os.path.exists(path):
        raise EmsymError(f"{path}: no such file or folder")
    serve(path, args.db, host=args.host, port=args.port)
    return 0


def cmd_solve(args) -> int:
    from pathlib import Path

    from .exercise import ExerciseError, exercise_files, load_exercise
    from .render import FORMATS

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in (*FORMATS, "pdf", "json")]
    if bad or not formats:
        raise EmsymError(
            f"--format should be md, html, tex, pdf or json (or several joined by commas), but got {args.format!r}"
        )
    if args.questions_only and "json" in formats:
        raise EmsymError("--questions-only writes question sheets (md, html, tex or pdf); json holds the solutions")
    files = exercise_files(args.path)
    if not files:
        raise EmsymError(f"{args.path}: no exercise files (*.yaml) found")
    sheets = [f for f in formats if f != "json"]
    out = None if args.out in (None, "-") else Path(args.out)
    # Standard output holds one document: one sheet, or the JSON of every exercise.
    if out is None and sheets and (len(files) > 1 or len(sheets) > 1 or "json" in formats):
        raise EmsymError(
            "standard output holds one document: give --out DIR to write several sheets (one file per exercise "
            "and format), or use --format json for one JSON document of every exercise"
        )
    tty = sys.stderr.isatty()
    failures, results = 0, []
    for i, f in enumerate(files, 1):
        try:
            if args.questions_only:
                ex = _variant(load_exercise(f), args.seed)
                for fmt in sheets:
                    _emit(out, f"{ex.id}-questions", fmt, *_question_sheet(ex, fmt))
                done = f"question sheet ({len(ex.parts)} parts)"
            else:
                sol = _solve_one(_variant(load_exercise(f), args.seed), sheets, out, args.no_figures)
                results.append(sol.to_dict())
                errata = len(sol.errata)
                done = f"{len(sol.parts)} parts solved" + (
                    f", {errata} {'erratum' if errata == 1 else 'errata'}" if errata else ""
                )
        except ExerciseError as exc:
            failures += 1
            for line in exc.problems:
                print(f"emsym: error: {line}", file=sys.stderr)
            continue
        if tty or out is not None:
            print(f"[{i}/{len(files)}] {f.stem}: {done}", file=sys.stderr)
    if "json" in formats:
        doc = json.dumps({"exercises": results, "failed": failures}, indent=2)
        if out is None:
            print(doc)
        else:
            _write(out / "solutions.json", doc)
    if out is not None:
        written = len(files) - failures
        print(
            f"{written} exercise(s) written to {out}/" + (f"; {failures} failed" if failures else ""), file=sys.stderr
        )
    return 2 if failures else 0


def _variant(ex, seed):
    """The exercise itself, or its variant for --seed (an exercise without randomise: is unchanged)."""
    if seed is None:
        return ex
    if ex.randomise is None:
        print(f"emsym: note: {ex.id} has no randomise: section; --seed leaves it as written", file=sys.stderr)
        return ex
    from .variants import VariantError, variant

    try:
        return variant(ex, seed)
    except VariantError as exc:
        raise EmsymError(str(exc)) from None


def _question_sheet(ex, fmt: str) -> tuple[str | bytes, dict]:
    from .render import compile_pdf, render_questions

    if fmt == "pdf":
        return compile_pdf(render_questions(ex, "tex"), name=f"{ex.id}-questions"), {}
    return render_questions(ex, fmt), {}


def _solve_one(ex, sheets: list[str], out, no_figures: bool):
    """Solve one exercise and write its sheets; figures go beside Markdown and LaTeX, inside HTML and PDF."""
    from .render import compile_pdf, render_sheet
    from .solve import solve

    sol = solve(ex)
    figs = {}
    if sheets and not no_figures:
        from .plots import figures

        figs = figures(sol)
    links = {name: f"{ex.id}_files/{name}.png" for name in figs}
    for fmt in sheets:
        if fmt == "pdf":
            tex = render_sheet(sol, "tex", figures=figs, figure_links=links)
            pdf = compile_pdf(tex, {links[n]: png for n, png in figs.items()}, name=ex.id)
            _emit(out, ex.id, fmt, pdf, {})
            continue
        shown_links = links if out is not None and fmt in ("md", "tex") else {}
        text = render_sheet(sol, fmt, figures=figs, figure_links=shown_links)
        _emit(out, ex.id, fmt, text, {links[n]: figs[n] for n in shown_links})
    return sol


def _emit(out, stem: str, fmt: str, content: str | bytes, extra: dict) -> None:
    """One sheet to OUT/STEM.FMT (with its figure files), or to standard output."""
    if out is None:
        if isinstance(content, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(content)
        else:
            sys.stdout.write(content)
        return
    for rel, blob in extra.items():
        _write(out / rel, blob)
    _write(out / f"{stem}.{fmt}", content)


def _write(path, content: str | bytes) -> None:
    from .safeio import check_writable_target, write_atomic

    check_writable_target(path, EmsymError)
    try:
        write_atomic(path, content)
    except OSError as exc:
        raise EmsymError(f"{path}: cannot write the output: {exc.strerror}") from None


def cmd_presets(args) -> int:
    from .spec import PRESETS, load_spec, preset_names

    if args.format == "json":
        print(
            json.dumps(
                {
                    name: load_spec(name).to_dict() | {"description": PRESETS[name]["description"]}
                    for name in preset_names()
                },
                indent=2,
            )
        )
        return 0
    for name in preset_names():
        print(f"{name:24} {PRESETS[name]['description']}")
    return 0


def _json(value, **kwargs) -> str:
    """Strict JSON (no NaN or Infinity): a non-finite result is an error, not invalid output."""
    from .safeio import dumps

    return dumps(value, EmsymError, **kwargs)


def _fmt(v) -> str:
    if np.ndim(v):
        return "[" + ", ".join(f"{x:.8g}" for x in v) + "]"
    return f"{v:.8g}"


class _Progress:
    """One self-overwriting line on a terminal, at most a few times a second."""

    def __init__(self):
        self.last = 0.0
        self.shown = False

    def __call__(self, it, ll):
        now = time.monotonic()
        if now - self.last > 0.2:
            sys.stderr.write(f"\riteration {it}: log-likelihood {ll:.10g}   ")
            sys.stderr.flush()
            self.last, self.shown = now, True

    def done(self):
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")


_COMMANDS = {
    "select": cmd_select,
    "derive": cmd_derive,
    "check": cmd_check,
    "run": cmd_run,
    "grade": cmd_grade,
    "solve": cmd_solve,
    "serve": cmd_serve,
    "export": cmd_export,
    "validate": cmd_validate,
    "presets": cmd_presets,
}


def _undecodable(argv: list[str]) -> str | None:
    """The first command-line argument that is not valid UTF-8 (Python keeps such bytes as surrogates)."""
    for i, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = repr(os.fsencode(arg))[:60]
            return f"argument {i} ({shown}) is not valid UTF-8 text; file names and answers must be UTF-8"
    return None


# Options whose value is typed text that may start with '-' ("--answer -x_1"): argparse would
# read such a value as an option, so "--answer VALUE" is joined into "--answer=VALUE" first.
_TEXT_OPTIONS = ("--answer", "--expected", "--where", "--tolerance")


def _join_text_values(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _TEXT_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1] != "--":
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    bad = _undecodable(argv)
    if bad:
        print(f"emsym: error: {bad}", file=sys.stderr)
        return 2
    args = _parser().parse_args(_join_text_values(argv))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmsymWarning)
        try:
            status = _COMMANDS[args.command](args)
        except EmsymError as exc:
            print(f"emsym: error: {exc}", file=sys.stderr)
            status = 2
        except KeyboardInterrupt:
            print("emsym: interrupted", file=sys.stderr)
            status = 130
    for w in caught:
        if issubclass(w.category, EmsymWarning):
            print(f"emsym: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
