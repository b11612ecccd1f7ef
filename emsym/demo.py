"""``make demo``: derive, check and run every preset and bundled model, solve the exercises.

Usage: ``python -m emsym.demo [OUTDIR]`` (default ``demo-output``).  For each model it writes
``derivation.txt``, ``derivation.tex``, ``derivation.json`` and ``check.json``; it also runs
EM on the MIT 6.86x data from theta0 (``mit-run.json``) and on generated 2-d data, and writes
a worked sheet (Markdown and HTML) for every bundled exercise into ``sheets/``.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .cache import get_derivation
from .check import check
from .compile import CompiledModel
from .data import load_data, load_init_components
from .em import run_em
from .exceptions import EmsymWarning
from .render import data_dir, render_derivation, write_atomic
from .spec import load_spec, preset_names


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "demo-output").resolve()
    models_dir = data_dir("models")
    sources = preset_names() + sorted(str(p) for p in models_dir.glob("*.yaml") if not p.name.endswith("-init.yaml"))
    failures = 0
    t0 = time.perf_counter()
    for i, source in enumerate(sources, 1):
        spec = load_spec(source)
        folder = out / spec.label()
        d = get_derivation(spec)
        write_atomic(folder / "derivation.txt", render_derivation(d, "text"))
        write_atomic(folder / "derivation.tex", render_derivation(d, "latex"))
        write_atomic(folder / "derivation.json", json.dumps(d.to_dict(), indent=2))
        report = check(spec, n=300)
        write_atomic(folder / "check.json", json.dumps(report.to_dict(), indent=2))
        failures += not report.passed
        status = "all checks passed" if report.passed else "CHECK FAILED"
        print(f"[{i:2}/{len(sources)}] {spec.label():24} {d.method:3}  {len(d.updates)} updates, {status}", flush=True)
    data = load_data(models_dir / "mit-6.86x.csv")
    model = CompiledModel(get_derivation(load_spec("standard")))
    init = model.params_from_components(load_init_components(models_dir / "mit-6.86x-init.yaml", 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmsymWarning)
        res = run_em(model, data.X, init, max_iter=500, tol=1e-12, responsibilities=True)
    write_atomic(out / "mit-run.json", json.dumps(res.to_dict(), indent=2))
    print(
        f"MIT 6.86x: log-likelihood at theta0 {res.loglik[0]:.6f}; converged after {res.iterations} iterations "
        f"to pi = {[round(c['weight'], 4) for c in res.components]}, "
        f"mu = {[round(float(c['mean'][0]), 4) for c in res.components]}"
    )
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, s, (300, 2)) for c, s in [((-4, 0), 1.0), ((3, 3), 0.6), ((3, -3), 1.5)]])
    model2 = CompiledModel(get_derivation(load_spec(str(models_dir / "spherical-2d.yaml"))))
    res2 = run_em(model2, X, max_iter=300)
    write_atomic(out / "spherical-2d-run.json", json.dumps(res2.to_dict(), indent=2))
    print(f"spherical 2-d, 900 generated points: converged={res2.converged} after {res2.iterations} iterations")
    from .cli import main as cli_main

    sheets = out / "sheets"
    solved = cli_main(["solve", str(data_dir("exercises")), "--format", "md,html", "--out", str(sheets)])
    failures += solved != 0
    print(f"\nDone in {time.perf_counter() - t0:.1f} s. Output written to {out}/")
    print("  one folder per model (derivation.txt/.tex/.json, check.json), mit-run.json, spherical-2d-run.json,")
    print(f"  and a worked sheet per exercise in {sheets}/ (open the .html files in a browser)")
    return 1 if failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
