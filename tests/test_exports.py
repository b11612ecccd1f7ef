"""Exports, each built and checked against its platform's published format.

- PrairieLearn (docs: question info.json -- uuid, title, topic, type "v3"; question.html elements;
  server.py generate(data) / grade(data) with data["params"], ["correct_answers"],
  ["submitted_answers"], ["partial_scores"], ["score"]): the server.py is imported and called as
  PrairieLearn calls it.
- Moodle XML (docs: <quiz> of <question type="...">, each with <name><text>, <questiontext
  format="html"><text>; numerical answers with fraction and tolerance; multichoice fractions
  from Moodle's list): parsed and checked element by element.
- Gradescope (autograder spec: setup.sh and run_autograder at the zip's root, executable;
  /autograder/results/results.json with score and tests of name, score, max_score, output):
  the zip is unpacked into an /autograder-like folder and run_autograder is executed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from emsym.exercise import load_exercise
from emsym.solve import solve
from emsym.variants import variant

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "exercises"
PRACTICE = EX / "mit-686x-em-practice.yaml"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "emsym", *map(str, args)], capture_output=True, text=True)


# -- PrairieLearn -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pl(tmp_path_factory):
    out = tmp_path_factory.mktemp("pl")
    r = _cli("export", "prairielearn", PRACTICE, EX / "gt-gmm-mle.yaml", "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def _server(folder: Path):
    spec = importlib.util.spec_from_file_location(f"pl_{folder.name.replace('-', '_')}", folder / "server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_prairielearn_info_and_question_html(pl):
    for name in ("mit-686x-em-practice", "gt-gmm-mle"):
        info = json.loads((pl / name / "info.json").read_text())
        assert uuid.UUID(info["uuid"]).version == 4 and info["type"] == "v3"
        assert info["title"] and info["topic"]
        html = (pl / name / "question.html").read_text()
        assert html.count("<pl-question-panel>") == 1 and "<pl-answer-panel>" in html
        names = re.findall(r'answers-name="([^"]+)"', html)
        assert names and all(re.fullmatch(r"[A-Za-z0-9_]+", n) for n in names)
    a, b = (json.loads((pl / n / "info.json").read_text())["uuid"] for n in ("mit-686x-em-practice", "gt-gmm-mle"))
    assert a != b


def test_prairielearn_server_generates_the_variant_and_grades_with_emsym(pl):
    mod = _server(pl / "mit-686x-em-practice")
    data = {"variant_seed": 4242, "params": {}, "correct_answers": {}}
    mod.generate(data)
    sol = solve(variant(load_exercise(PRACTICE), 4242))
    assert data["params"]["data"] == ", ".join(f"{v:g}" for v in sol.exercise.data)
    want = {r.part.id: r for r in sol.parts}
    assert data["correct_answers"]["loglik"] == want["loglik"].shown
    data.update(submitted_answers={}, partial_scores={}, feedback={}, score=0)
    data["submitted_answers"] = {
        "loglik": want["loglik"].shown,
        "resp_1": "0.5",
        "mu_after_one": "0",
        "sigma2_after_one": want["sigma2-after-one"].shown,
        "mstep_sigma2": "sqrt(sum_n gamma_nk (x_n - mu_k)^2 / N_k)",
    }
    mod.grade(data)
    ps = data["partial_scores"]
    assert ps["loglik"]["score"] == 1 and ps["sigma2_after_one"]["score"] == 1
    assert ps["mstep_sigma2"]["score"] == 0 and "sigma instead of sigma^2" in ps["mstep_sigma2"]["feedback"]
    assert 0 < data["score"] < 1


# -- Moodle -------------------------------------------------------------------------------------------
MOODLE_FRACTIONS = {100, 90, 83.33333, 80, 75, 70, 66.66667, 60, 50, 40, 33.33333, 30, 25, 20, 16.66667, 14.28571}
MOODLE_FRACTIONS |= {12.5, 11.11111, 10, 5, 0} | {-f for f in (100, 50, 33.33333, 25, 20)}


def test_moodle_xml_matches_the_format(tmp_path):
    out = tmp_path / "quiz.xml"
    r = _cli("export", "moodle", PRACTICE, EX / "nyu-q7-mcq.yaml", "--out", out, "--variants", "3")
    assert r.returncode == 0, r.stderr
    assert "exported as essays" in r.stderr and "mstep-sigma2" in r.stderr  # the report says what is not faithful
    root = ET.parse(out).getroot()
    assert root.tag == "quiz"
    kinds = [q.get("type") for q in root.findall("question")]
    assert set(kinds) <= {"category", "numerical", "multichoice", "essay"}
    for q in root.findall("question"):
        if q.get("type") == "category":
            assert q.find("category/text").text.startswith("$course$/")
            continue
        assert q.find("name/text").text and q.find("questiontext").get("format") == "html"
        if q.get("type") == "numerical":
            a = q.find("answer")
            assert a.get("fraction") == "100" and float(a.find("tolerance").text) >= 0
            float(a.find("text").text)
        if q.get("type") == "multichoice":
            fr = [float(a.get("fraction")) for a in q.findall("answer")]
            assert all(any(abs(f - m) < 1e-4 for m in MOODLE_FRACTIONS) for f in fr) and max(fr) > 0
    # three variants of each randomised question, each with its own variant's answer
    ex = load_exercise(PRACTICE)
    names = [q.find("name/text").text for q in root.findall("question") if q.get("type") == "numerical"]
    assert sum("/ loglik (variant" in n for n in names) == 3
    for seed in range(3):
        want = next(r for r in solve(variant(ex, seed)).parts if r.part.id == "loglik").answer
        named = [q for q in root.findall("question") if q.get("type") == "numerical"]
        q = next(q for q in named if q.find("name/text").text.endswith(f"loglik (variant {seed})"))
        assert float(q.find("answer/text").text) == pytest.approx(want)


# -- Gradescope ---------------------------------------------------------------------------------------
def test_gradescope_autograder_runs_like_gradescope(tmp_path):
    z = tmp_path / "autograder.zip"
    r = _cli("export", "gradescope", EX / "mit-686x-em.yaml", "--out", z)
    assert r.returncode == 0, r.stderr
    root = tmp_path / "autograder"
    with zipfile.ZipFile(z) as zf:
        names = zf.namelist()
        assert "setup.sh" in names and "run_autograder" in names and "emsym-src/pyproject.toml" in names
        for n in ("setup.sh", "run_autograder"):
            assert stat.S_IMODE(zf.getinfo(n).external_attr >> 16) & 0o111
        zf.extractall(root / "source")
    run = root / "source" / "run_autograder"
    run.chmod(0o755)
    (root / "submission").mkdir()
    (root / "submission" / "answers.csv").write_text(
        "part,answer\nloglik,-24.5\nmstep-sigma2,(gamma_k1 x_1 + gamma_k2 x_2)/(gamma_k1 + gamma_k2)\n"
    )
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), EMSYM_PYTHON=sys.executable)
    subprocess.run(["bash", str(run)], check=True, env=env, capture_output=True)
    results = json.loads((root / "results" / "results.json").read_text())
    assert isinstance(results["score"], float) and results["tests"]
    for t in results["tests"]:
        assert {"name", "score", "max_score", "output"} <= set(t)
    by = {t["name"].split(" / ")[1]: t for t in results["tests"]}
    assert by["loglik"]["score"] == by["loglik"]["max_score"]
    assert by["mstep-sigma2"]["score"] == 0
