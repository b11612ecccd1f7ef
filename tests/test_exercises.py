"""Exercise files, solving and worked sheets."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from _helpers import pdflatex

from emsym.cache import get_derivation
from emsym.cli import main
from emsym.compile import compile_derivation
from emsym.em import run_em
from emsym.exceptions import EmsymWarning
from emsym.exercise import ExerciseError, exercise_files, load_exercise, validate_path
from emsym.render import render_sheet
from emsym.solve import solve

EXERCISES = Path(__file__).resolve().parent.parent / "exercises"
FILES = exercise_files(EXERCISES)
SEEDS = {"000_6b304c9521d098c2.txt", "001_838608a90051b623.txt", "002_9cd675bbc8c184ec.txt", "003_6521fd230669f1ac.txt"}


@pytest.fixture(scope="module")
def solved():
    return {f.stem: solve(load_exercise(f)) for f in FILES}


def test_every_exercise_validates():
    good, problems = validate_path(EXERCISES)
    assert problems == [] and len(good) == len(FILES) >= 15


def test_every_seed_is_covered_and_there_are_own_exercises(solved):
    seeds = {s.exercise.source.get("seed") for s in solved.values()}
    assert seeds >= SEEDS
    nyu = {
        s.exercise.source.get("question", "").split(":")[0]
        for s in solved.values()
        if s.exercise.source.get("seed") == "000_6b304c9521d098c2.txt"
    }
    assert {f"Question {i}" for i in range(1, 7)} <= nyu and "Question 7.1 and 7.2" in nyu
    assert sum(s.exercise.source.get("author") == "emsym" for s in solved.values()) >= 4


def test_numbers_agree_with_the_em_runner(solved):
    """Every numeric part equals an independent call of run_em through the public API."""
    checked = 0
    for sol in solved.values():
        ex = sol.exercise
        if ex.init is None or ex.responsibilities is not None:
            continue
        model = compile_derivation(get_derivation(ex.model))
        X = np.array(ex.data, dtype=float).reshape(len(ex.data), -1)
        init = model.params_from_components(ex.init)
        labels = np.array(ex.labels) if ex.labels is not None else None
        for r in sol.parts:
            q = r.part.spec.get("quantity")
            if r.part.kind != "numeric" or q["what"] != "parameter":
                continue
            after = q["after"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EmsymWarning)
                res = run_em(
                    model,
                    X,
                    init,
                    max_iter=10_000 if after == "converged" else after,
                    tol=1e-12 if after == "converged" else -1,
                    labels=labels,
                )
            name = q["name"]
            if name in res.params:
                want = res.params[name]
            elif name.count("_") == 2:  # p_1_4: component 1, coordinate 4 of a family's vector parameter
                field, k, l = name.split("_")
                want = res.components[int(k) - 1][field][int(l) - 1]
            elif name.rsplit("_", 1)[0] in res.components[0] and not name.startswith("mean"):
                field, k = name.rsplit("_", 1)
                want = res.components[int(k) - 1][field]
            else:
                field, k = name.rsplit("_", 1)
                c = res.components[int(k) - 1]
                want = {
                    "sd": np.sqrt(c["covariance"][0, 0]),
                    "mean": c["mean"],
                    "weight": c["weight"],
                    "variance": c["covariance"][0, 0],
                }[field]
            np.testing.assert_allclose(np.ravel(r.answer), np.ravel(want), rtol=1e-9, err_msg=f"{ex.id} {r.part.id}")
            checked += 1
    assert checked >= 10


def test_nyu_q5_errata_show_both_values(solved):
    sol = solved["nyu-q5-shared-mean"]
    errata = dict(sol.errata)
    assert set(errata) == {"r21", "r31", "mu-after-one"}
    assert "33/52" in errata["r21"] and "0.636" in errata["r21"]
    assert "5/17" in errata["r31"] and "0.3086" in errata["r31"]
    md = render_sheet(sol, "md")
    assert "## Errata" in md and "33/52" in md


def test_mit_sheet_has_no_errata_and_every_part(solved):
    sol = solved["mit-686x-em"]
    assert sol.errata == [] and all(r.agrees for r in sol.parts if r.part.published is not None)
    md = render_sheet(sol, "md")
    for r in sol.parts:
        assert f"### {r.part.id} ({r.part.kind})" in md
    assert "| N_k |" in md and "-24.5" in md
    assert md.count("$$") % 2 == 0


def test_formula_parts_have_graders_that_accept_the_published_answer(solved):
    r = next(p for p in solved["mit-686x-em"].parts if p.part.id == "mstep-pi")
    assert r.grader.grade("(gamma_k1 + gamma_k2)/(gamma_11 + gamma_21 + gamma_12 + gamma_22)").verdict == "correct"
    assert r.grader.grade("gamma_k1 + gamma_k2").verdict == "incorrect"


def _write(tmp_path, text, name="ex.yaml"):
    f = tmp_path / name
    f.write_text(text)
    return f


GOOD = """id: small
title: Small
source: {author: test}
model: standard
data: [-1, 0, 4, 5, 6]
init:
  - {weight: 0.5, mean: 6, variance: 1}
  - {weight: 0.5, mean: 7, variance: 4}
parts:
  - id: ll
    kind: numeric
    prompt: loglik
    quantity: {what: loglik}
"""


@pytest.mark.parametrize(
    "change, message",
    [
        (("title: Small", "titel: Small"), r"ex.yaml:2:1: titel: unknown key; did you mean 'title'\?"),
        (
            ("kind: numeric", "kind: numerik"),
            r"ex.yaml:\d+:\d+: parts\[0\].kind: expected one of numeric, .*did you mean 'numeric'\?",
        ),
        (
            ("{what: loglik}", "{what: parameter, name: mu_9, after: 1}"),
            r"parts\[0\].quantity.name: expected a parameter of the model",
        ),
        (("data: [-1, 0, 4, 5, 6]", "data: [[1, 2], [3, 4], [5, 6]]"), r"data: expected points of dimension 1"),
        (("data: [-1, 0, 4, 5, 6]", "data: [-1, zero, 4]"), r"data\[1\]: expected a finite number"),
        (("model: standard", "model: standrad"), r"model: .*did you mean 'standard'\?"),
        (("{what: loglik}", "{what: loglik, after: soon}"), r"after: expected init, converged or a number"),
        (
            ("  - {weight: 0.5, mean: 7, variance: 4}", "  - {weight: 0.5, mean: 7, variance: -4}"),
            r"variance should be > 0",
        ),
    ],
)
def test_validation_errors_name_file_line_key_expected_received(tmp_path, change, message):
    f = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ExerciseError) as err:
        load_exercise(f)
    assert re.search(message, "\n".join(err.value.problems)), err.value.problems


def test_a_model_for_a_general_d_takes_the_data_s(tmp_path):
    """model: {dim: d}: the exercise's points say d; a variant that does not exist for that d is one line."""
    two_d = GOOD.replace("model: standard", "model: {components: 2, dim: d, covariance: spherical}").replace(
        "data: [-1, 0, 4, 5, 6]", "data: [[-1, 0], [0, 1], [4, 4], [5, 6], [6, 5]]"
    )
    two_d = two_d.replace("mean: 6, variance: 1", "mean: [6, 6], variance: 1").replace(
        "mean: 7, variance: 4", "mean: [7, 7], variance: 4"
    )
    ex = load_exercise(_write(tmp_path, two_d))
    assert ex.model.dim == 2 and ex.model.covariance == "spherical"
    one_d = GOOD.replace("model: standard", "model: {components: 2, dim: d, covariance: EVI}")
    with pytest.raises(ExerciseError, match=r"model: .*\(dim 1, from the data\).*is for d > 1 dimensions"):
        load_exercise(_write(tmp_path, one_d, "one.yaml"))


def test_formula_names_must_cover_the_answer(tmp_path):
    text = (
        GOOD
        + """  - id: mu
    kind: formula
    prompt: mu_k
    quantity: {what: update, param: mu_k}
    points: 2
    notation: {"gamma[n,k]": "gamma_{k}{n}"}
    names: [gamma_k1, gamma_k2, x_1]
"""
    )
    with pytest.raises(ExerciseError, match=r"uses x_2, which 'names' does not list"):
        solve(load_exercise(_write(tmp_path, text)))


def test_yaml_objects_are_refused(tmp_path):
    f = _write(tmp_path, GOOD.replace("title: Small", "title: !!python/object/apply:os.system ['echo pwned']"))
    with pytest.raises(ExerciseError, match="is not allowed"):
        load_exercise(f)


def test_a_bad_exercise_does_not_stop_the_others(tmp_path, capsys):
    folder = tmp_path / "ex"
    folder.mkdir()
    _write(folder, GOOD, "a.yaml")
    _write(folder, GOOD.replace("id: small", "id: broken").replace("kind: numeric", "kind: numerik"), "b.yaml")
    out = tmp_path / "out"
    status = main(["solve", str(folder), "--format", "md,json", "--out", str(out), "--no-figures"])
    err = capsys.readouterr().err
    assert status == 2 and "b.yaml" in err and "numerik" in err
    assert (out / "small.md").is_file() and json.loads((out / "solutions.json").read_text())["failed"] == 1
    assert main(["validate", str(folder)]) == 2


def test_solve_json_reports_published_and_agreement(capsys):
    status = main(["solve", str(EXERCISES / "nyu-q4-m-step.yaml"), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert status == 0
    part = doc["exercises"][0]["parts"][2]
    assert part["answer"] == pytest.approx(29) and part["published"] == 29 and part["agrees"] is True


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (Debian: texlive-latex-base)")
def test_latex_sheet_compiles(tmp_path):
    status = main(["solve", str(EXERCISES / "mit-686x-em.yaml"), "--format", "tex", "--out", str(tmp_path)])
    assert status == 0
    proc = pdflatex(tmp_path, "mit-686x-em.tex")
    assert proc.returncode == 0, proc.stdout[-2000:]
    if shutil.which("pdftotext"):  # what a reader sees: captions, not LaTeX leftovers
        text = subprocess.run(
            ["pdftotext", "mit-686x-em.pdf", "-"], cwd=tmp_path, capture_output=True, text=True
        ).stdout
        captions = [line for line in text.splitlines() if line.startswith("Figure ")]
        assert len(captions) == 4 and all(re.match(r"Figure \d: [A-Z]", c) for c in captions), captions


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
_PROBE = """<script>
window.addEventListener('load', () => {
  const els = [...document.querySelectorAll('math, img')];
  const sizes = els.map(e => { const r = e.getBoundingClientRect();
    return [e.tagName.toLowerCase(), r.width, r.height, e.tagName === 'IMG' ? e.naturalWidth : -1]; });
  document.body.setAttribute('data-sizes', JSON.stringify(sizes));
});
</script></body>"""


_WIDE = """<script>
window.addEventListener('load', () => {
  const wide = [...document.querySelectorAll('math[display=block]')]
    .filter(e => e.scrollWidth > e.clientWidth + 2)
    .map(e => [e.clientWidth, e.scrollWidth, e.textContent.slice(0, 40)]);
  document.body.setAttribute('data-wide', JSON.stringify(wide));
});
</script></body>"""


def _chromium(tmp_path, window: str) -> list[str]:
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={window}",
    ]


def _probe(flags: list[str], page, attribute: str):
    """What a probe script left in the body's ``attribute`` once the page loaded (JSON)."""
    dom = subprocess.run(
        flags + ["--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    m = re.search(attribute + r'="([^"]*)"', dom)
    assert m, dom[:500]
    return json.loads(m.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium (Debian package 'chromium'; `make test` installs it when it can)"
)
def test_long_equations_fit_the_page_in_rows(tmp_path):
    """The three-component Q function (about 260 characters) and the MAP objectives (with a full covariance
    Q is one long sum over the points before the prior's terms) used to run past the right edge; they are
    shown a term per row, and no display on these sheets is wider than the page."""
    names = ["own-three-components", "own-map-bernoulli", "own-tied-variance", "own-map-wishart"]
    for name in names:
        assert (
            main(["solve", str(EXERCISES / f"{name}.yaml"), "--format", "html", "--no-figures", "--out", str(tmp_path)])
            == 0
        )
    html = (tmp_path / "own-three-components.html").read_text()
    q = html[html.index("<strong>Q function.</strong>") :]
    assert q.index('<div class="rows">') < q.index("<h2")  # Q is written in rows
    for name in names:
        probe = tmp_path / f"{name}-probe.html"
        probe.write_text((tmp_path / f"{name}.html").read_text().replace("</body>", _WIDE))
        assert _probe(_chromium(tmp_path, "1280,2000"), probe, "data-wide") == [], name


@pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium (Debian package 'chromium'; `make test` installs it when it can)"
)
def test_html_sheet_shows_math_and_plots_in_a_browser(tmp_path):
    status = main(["solve", str(EXERCISES / "mit-686x-em.yaml"), "--format", "html", "--out", str(tmp_path)])
    assert status == 0
    page = tmp_path / "mit-686x-em.html"
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org/1998/Math/MathML", "") and "https://" not in html
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", _PROBE))
    flags = _chromium(tmp_path, "1000,3000")
    sizes = _probe(flags, probe, "data-sizes")
    maths = [s for s in sizes if s[0] == "math"]
    imgs = [s for s in sizes if s[0] == "img"]
    assert len(maths) > 10 and all(w > 0 and h > 0 for _, w, h, _ in maths)
    assert len(imgs) == 4 and all(w > 0 and h > 0 and natural > 0 for _, w, h, natural in imgs)
    shot = tmp_path / "sheet.png"
    subprocess.run(flags + [f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("names: [gamma_k1, gamma_k2, x_1, x_2]\n", "names: [gamma_k1, x_1, x_2]\n", r":\d+:5: parts.mstep-mu: names:"),
        (
            "  - {weight: 0.5, mean: 7, variance: 4}",
            "  - {weight: 0.6, mean: 7, variance: 4}",
            r":10:1: init: the weights",
        ),
    ],
)
def test_validate_refuses_what_solve_refuses(tmp_path, capsys, old, new, message):
    text = (EXERCISES / "mit-686x-em.yaml").read_text(encoding="utf-8")
    assert old in text
    f = tmp_path / "ex.yaml"
    f.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert main(["validate", str(f)]) == 2
    out = capsys.readouterr().out
    assert re.search(str(f).replace(".", r"\.") + message, out), out
    assert main(["solve", str(f)]) == 2


def test_validate_refuses_untied_starting_variances_in_a_tied_model(tmp_path, capsys):
    text = (EXERCISES / "own-tied-variance.yaml").read_text(encoding="utf-8")
    f = tmp_path / "ex.yaml"
    f.write_text(text.replace("  - {weight: 0.3, mean: 0, variance: 1}", "  - {weight: 0.3, mean: 0, variance: 2}"))
    assert main(["validate", str(f)]) == 2
    assert f"{f}:6:1: init: the model's variance is tied" in capsys.readouterr().out


def test_every_formula_prompt_and_its_grader_agree_on_names(solved):
    """The names a formula part lists are the names its prompt offers and its grader accepts (NYU Q6
    asked for r_1 and sigma2_0 while its grader knew only g_12 and s2_1)."""
    seen = 0
    for sol in solved.values():
        for r in sol.parts:
            if r.part.kind != "formula":
                continue
            seen += 1
            names = r.part.spec["names"]
            assert all(n in r.grader.parse_names for n in names), (sol.exercise.id, r.part.id)
            missing = [n for n in names if not re.search(rf"\b{re.escape(n)}\b", r.part.prompt)]
            assert not missing, (sol.exercise.id, r.part.id, missing)
            for name in names:  # each name, typed alone, is read (never "unknown name"; x_n alone is unbound)
                assert "unknown name" not in r.grader.grade(name).feedback, (r.part.id, name)
    assert seen >= 7


def test_nyu_q6_accepts_the_sources_names():
    sol = solve(load_exercise(EXERCISES / "nyu-q6-shared-mean-bernoulli.yaml"))
    g = next(r for r in sol.parts if r.part.id == "mu-formula").grader
    source = (
        "(x_1*(r_1*sigma2_0 + (1 - r_1)*sigma2_1) + x_2*(r_2*sigma2_0 + (1 - r_2)*sigma2_1))"
        "/((r_1*sigma2_0 + (1 - r_1)*sigma2_1) + (r_2*sigma2_0 + (1 - r_2)*sigma2_1))"
    )
    assert g.grade(source).verdict == "correct"
    assert g.grade("(x_1*r_1 + x_2*r_2)/(r_1 + r_2)").verdict == "incorrect"  # ignores the variances


def test_source_is_optional_and_marks_are_validated(tmp_path):
    text = (EXERCISES / "own-fixed-means.yaml").read_text(encoding="utf-8")
    assert "source: {author: emsym, year: 2026}\n" in text
    f = tmp_path / "ex.yaml"
    f.write_text(text.replace("source: {author: emsym, year: 2026}\n", ""), encoding="utf-8")
    assert load_exercise(f).source == {}
    f.write_text(text.replace("    kind: numeric\n", "    kind: numeric\n    marks: 0\n", 1), encoding="utf-8")
    with pytest.raises(ExerciseError, match=r"marks: expected the part's weight in a score: a number > 0"):
        load_exercise(f)


def test_choice_prompts_say_how_to_answer(solved):
    sol = solved["mit-686x-em"]
    for fmt, needle in (
        ("md", "*Answer with the letter of the correct option"),
        ("html", "<em>Answer with the letter of the correct option"),
        ("tex", r"\emph{Answer with the letter of the correct option"),
    ):
        assert render_sheet(sol, fmt).count(needle) == 3  # the three training questions


def test_question_sheets_hold_every_prompt_and_no_answer(tmp_path):
    status = main(
        [
            "solve",
            str(EXERCISES / "mit-686x-em.yaml"),
            "--questions-only",
            "--format",
            "md,html,tex",
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 0
    ex = load_exercise(EXERCISES / "mit-686x-em.yaml")
    solution = solve(ex)
    for fmt in ("md", "html", "tex"):
        text = (tmp_path / f"mit-686x-em-questions.{fmt}").read_text(encoding="utf-8")
        assert all(p.id in text for p in ex.parts)
        assert "Answer with a number" in text and "correct" not in text.lower().replace("correct option", "")
        for r in solution.parts:  # no computed answer leaks into the question sheet
            if r.part.kind == "numeric":
                assert r.shown not in text, (fmt, r.part.id, r.shown)
    assert main(["solve", str(EXERCISES), "--questions-only", "--format", "json"]) == 2


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (Debian: texlive-latex-base)")
def test_pdf_sheets_compile_through_pdflatex(tmp_path):
    assert (
        main(["solve", str(EXERCISES / "nyu-q6-shared-mean-bernoulli.yaml"), "--format", "pdf", "--out", str(tmp_path)])
        == 0
    )
    assert (
        main(
            [
                "solve",
                str(EXERCISES / "nyu-q6-shared-mean-bernoulli.yaml"),
                "--format",
                "pdf",
                "--questions-only",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    for name in ("nyu-q6-shared-mean-bernoulli.pdf", "nyu-q6-shared-mean-bernoulli-questions.pdf"):
        assert (tmp_path / name).read_bytes().startswith(b"%PDF-")


def test_pdf_without_pdflatex_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pdflatex on this PATH
    assert main(["solve", str(EXERCISES / "nyu-q4-m-step.yaml"), "--format", "pdf", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--format pdf needs pdflatex" in err and "Traceback" not in err


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (Debian: texlive-latex-base)")
def test_every_latex_sheet_fits_the_page(tmp_path):
    """No text or equation runs into the margin: pdflatex reports no overfull line in any bundled sheet."""
    assert main(["solve", str(EXERCISES), "--format", "tex", "--no-figures", "--out", str(tmp_path)]) == 0
    overfull = {}
    for tex in sorted(tmp_path.glob("*.tex")):
        proc = pdflatex(tmp_path, tex.name)
        assert proc.returncode == 0, (tex.name, proc.stdout[-1500:])
        log = tex.with_suffix(".log").read_text(encoding="latin-1")
        overfull[tex.stem] = re.findall(r"Overfull \\hbox \((\d+\.\d+)pt too wide\)", log)
    assert len(overfull) == len(FILES) and not any(overfull.values()), {k: v for k, v in overfull.items() if v}


def test_update_headings_are_math(solved):
    sol = solved["nyu-q6-shared-mean-bernoulli"]
    assert r"**Update of ${\sigma^{2}_{2}}$**" in render_sheet(sol, "md")
    assert r"\subsection*{Update of ${\sigma^{2}_{2}}$}" in render_sheet(sol, "tex")
    html = render_sheet(sol, "html")
    assert "<h3>Update of <math" in html and "Update of sigma2_2" not in html


@pytest.mark.skipif(shutil.which("pandoc") is None, reason="pandoc is not installed (Debian: pandoc)")
def test_markdown_sheets_survive_pandoc(tmp_path):
    """pandoc reads every $...$ of every Markdown sheet as math (it refuses '$ x $' with inner spaces)."""
    assert main(["solve", str(EXERCISES), "--format", "md", "--no-figures", "--out", str(tmp_path)]) == 0
    for md in sorted(tmp_path.glob("*.md")):
        html = subprocess.run(
            ["pandoc", "-f", "markdown", "-t", "html", "--mathml", str(md)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "$" not in html, (md.name, html[html.index("$") - 80 : html.index("$") + 80])
        assert "<math" in html


def test_markdown_in_a_statement_is_rendered_not_shown(tmp_path):
    text = (EXERCISES / "own-fixed-means.yaml").read_text(encoding="utf-8")
    statement = "statement: The means are known (-1 and 3); EM estimates the weights and the variances.\n"
    assert statement in text
    md = (
        "statement: |\n  The **means** are *known*: $\\mu_1 = -1$ and $\\mu_2 = 3$.\n\n"
        "  - estimate the weights\n  - estimate the variances (`sigma2_k`)\n"
    )
    f = tmp_path / "ex.yaml"
    f.write_text(text.replace(statement, md), encoding="utf-8")
    sol = solve(load_exercise(f))
    html = render_sheet(sol, "html")
    assert "<strong>means</strong>" in html and "<em>known</em>" in html and "<li>estimate the weights</li>" in html
    assert "**" not in html and "<code>sigma2_k</code>" in html and "<msub><mi>μ</mi><mn>1</mn></msub>" in html
    tex = render_sheet(sol, "tex")
    assert r"\textbf{means}" in tex and r"\begin{itemize}" in tex and r"$\mu_1 = -1$" in tex and "**" not in tex
    if shutil.which("pdflatex"):
        (tmp_path / "s.tex").write_text(render_sheet(sol, "tex", figures={}), encoding="utf-8")
        proc = pdflatex(tmp_path, "s.tex")
        assert proc.returncode == 0, proc.stdout[-1500:]


@pytest.mark.parametrize("fmt, first_use", [("md", "N_{1}"), ("tex", "N_{1}"), ("html", "<msub><mi>N</mi>")])
def test_n_k_is_defined_where_it_first_appears(solved, fmt, first_use):
    sheet = render_sheet(solved["mit-686x-em"], fmt)
    mstep = sheet.index("The M-step, derived")
    definition = sheet.index("is the effective number of points of component")
    first = sheet.index(first_use)  # in HTML the first N_k is the definition's own MathML
    assert mstep < first and (first > definition or (fmt == "html" and first < definition < first + 400))


def test_validate_suggests_the_where_a_textbook_form_needs(tmp_path, capsys):
    text = (EXERCISES / "mit-686x-em.yaml").read_text(encoding="utf-8")
    where = '    where: ["gamma_11 + gamma_21 = 1", "gamma_12 + gamma_22 = 1"]\n'
    published = '    published: "(gamma_k1 + gamma_k2) / 2"\n'
    assert where in text and published in text
    unsimplified = '    published: "(gamma_k1 + gamma_k2)/(gamma_11 + gamma_21 + gamma_12 + gamma_22)"\n'
    f = tmp_path / "ex.yaml"
    f.write_text(text.replace(where, "").replace(published, unsimplified), encoding="utf-8")
    assert main(["validate", str(f)]) == 0
    err = capsys.readouterr().err
    assert f"{f}:51:5: parts.mstep-pi: the source's answer" in err
    assert 'add where: ["gamma_11 + gamma_21 = 1", "gamma_12 + gamma_22 = 1"]' in err
    assert main(["validate", str(EXERCISES / "mit-686x-em.yaml")]) == 0  # with the where: no warning
    assert "warning" not in capsys.readouterr().err


def test_html_sheets_have_a_print_stylesheet(solved):
    """On paper nothing scrolls: display math must not keep its screen scrollbar when printed."""
    html = render_sheet(solved["gt-gmm-full-covariance"], "html")
    style = html[html.index("@media print") :]
    assert re.search(r'math\[display="block"\] \{ overflow: visible;', style)
