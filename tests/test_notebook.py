"""Rich display in Jupyter: the objects a notebook shows render as math and tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emsym.check import check
from emsym.compile import compile_derivation
from emsym.derive import derive
from emsym.em import default_init, run_em
from emsym.exercise import load_exercise
from emsym.solve import solve
from emsym.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def test_derivation_displays_as_math():
    d = derive(load_spec("standard"))
    html = d._repr_html_()
    assert html.count("<math") >= len(d.steps) and "Lagrangian for the mixing weights" in html
    assert "<script" not in html
    md = d._repr_markdown_()
    assert md.count("$$") >= 2 * len(d.updates) and "M-step updates" in md
    tex = d._repr_latex_()
    assert tex.startswith("$$\\begin{aligned}") and "\\mu_{1} &=" in tex


def test_em_result_displays_its_components():
    d = derive(load_spec("standard"))
    m = compile_derivation(d)
    X = np.array([[-1.0], [0.0], [4.0], [5.0], [6.0]])
    r = run_em(m, X, default_init(m, X))
    html = r._repr_html_()
    for c in r.components:
        assert f"{c['weight']:.6g}" in html and f"{float(c['mean'][0]):.6g}" in html
    assert f"{r.loglik[-1]:.6g}" in html


def test_check_report_and_solution_display():
    report = check(load_spec("standard"), n=200)
    html = report._repr_html_()
    assert html.count("<tr>") == len(report.items) + 1 and "every check passed" in html
    sol = solve(load_exercise(ROOT / "exercises" / "mit-686x-em.yaml"))
    page = sol._repr_html_()
    assert "<html" not in page and "mstep-sigma2" in page and "<math" in page and "<style>" in page
