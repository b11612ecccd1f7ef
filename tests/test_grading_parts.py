"""Grading exercise parts and batches of submissions (resume, Gradescope, malformed rows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emsym.cli import main
from emsym.grading.parts import ExerciseGraders, folder_name, grade_submissions

EXERCISES = Path(__file__).resolve().parent.parent / "exercises"


@pytest.fixture(scope="module")
def graders():
    return ExerciseGraders(EXERCISES)


def test_formula_part_names_the_mistake(graders):
    v = graders.grade(
        "mit-686x-em", "mstep-sigma2", "(gamma_k1*(x_1-mu_k)^2 + gamma_k2*(x_2-mu_k)^2)/(gamma_k1+gamma_k2)"
    )
    assert v.verdict == "incorrect" and v.mistake == "stale-mean"
    assert graders.grade("mit-686x-em", "estep-formula", "pi_k N_k/(pi_1 N_1 + pi_2 N_2)").verdict == "correct"


def _mit_first_m_step():
    """MIT 6.86x by hand: the E-step at theta0 = (0.5, 0.5, 6, 7, 1, 4) written out, not emsym's."""
    x = np.array([-1.0, 0, 4, 5, 6])
    pi, mu, s2 = np.array([0.5, 0.5]), np.array([6.0, 7.0]), np.array([1.0, 4.0])
    dens = pi[:, None] * np.exp(-((x - mu[:, None]) ** 2) / (2 * s2[:, None])) / np.sqrt(2 * np.pi * s2[:, None])
    r = dens / dens.sum(axis=0)
    Nk = r.sum(axis=1)
    mean = r @ x / Nk
    var = np.array([r[k] @ (x - mean[k]) ** 2 / Nk[k] for k in range(2)])
    return x, r, Nk, mean, var, mu


@pytest.mark.parametrize("k", [0, 1])
def test_numeric_part_mistakes_computed_from_the_same_e_step(graders, k):
    x, r, Nk, mean, var, old = _mit_first_m_step()
    mu_part, sd_part = ("mu-after-one", "sd-after-one") if k == 0 else ("mu2-after-one", "sd2-after-one")
    assert graders.grade("mit-686x-em", mu_part, f"{mean[k]:.10f}").verdict == "correct"
    assert graders.grade("mit-686x-em", sd_part, f"{np.sqrt(var[k]):.10f}").verdict == "correct"
    cases = [
        (mu_part, x.mean(), "unweighted"),
        (mu_part, r[k] @ x / len(x), "n-for-Nk"),
        (mu_part, mean[1 - k], "labels-swapped"),
        (sd_part, np.sqrt(r[k] @ (x - old[k]) ** 2 / Nk[k]), "stale-mean"),
        (sd_part, np.sqrt(r[k] @ (x - mean[k]) ** 2 / len(x)), "n-for-Nk"),
        (sd_part, x.std(), "unweighted"),
    ]
    for part, value, mistake in cases:
        v = graders.grade("mit-686x-em", part, f"{value:.10f}")
        assert (v.verdict, v.mistake) == ("incorrect", mistake), (part, value, v.feedback)


def test_permutable_numeric_part_accepts_any_label(tmp_path):
    text = (
        (EXERCISES / "mit-686x-em.yaml")
        .read_text()
        .replace(
            "    quantity: {what: parameter, name: mu_1, after: 1}\n    tolerance: 0.0001",
            "    quantity: {what: parameter, name: mu_1, after: 1}\n    tolerance: 0.0001\n    permutable: true",
        )
    )
    (tmp_path / "mit.yaml").write_text(text)
    g = ExerciseGraders(tmp_path / "mit.yaml")
    v = g.grade("mit-686x-em", "mu-after-one", "1.4710")
    assert v.verdict == "correct" and "numbering" in v.feedback


def test_assignment_and_choice_parts(graders):
    assert graders.grade("mit-686x-em", "estep-weights", "2, 2, 2, 1, 1").verdict == "correct"
    v = graders.grade("mit-686x-em", "estep-weights", "2 2 1 1 1")
    assert v.verdict == "incorrect" and v.score == pytest.approx(0.8) and "point(s) 3" in v.feedback
    assert graders.grade("mit-686x-em", "estep-weights", "2 2 x").verdict == "invalid"
    assert graders.grade("nyu-q7-mcq", "q7-2", "a, b").verdict == "correct"
    v = graders.grade("nyu-q7-mcq", "q7-2", "(a) (c)")
    assert v.verdict == "incorrect" and "Missing: (b)" in v.feedback
    assert graders.grade("nyu-q7-mcq", "q7-2", "z").verdict == "invalid"
    assert "not graded automatically" in graders.grade("nyu-q3-semi-supervised", "objective", "x").feedback


def _subs(tmp_path, rows):
    f = tmp_path / "subs.csv"
    f.write_text("student,exercise,part,answer\n" + "".join(rows))
    return f


ROWS = [
    "ann,mit-686x-em,loglik,-24.5\n",
    'ann,mit-686x-em,mstep-pi,"(gamma_k1+gamma_k2)/2"\n',
    "bob,mit-686x-em,nopart,1\n",
    "bob,mit-686x-em\n",
    "bob,nyu-q4-m-step,mu1,29\n",
    "cat,mit-686x-em,loglik,\"__import__('os')\"\n",
    "cat,mit-686x-en,loglik,1\n",
    "dan,mit-686x-em,loglik,-24.4\n",
]


def test_every_row_gives_one_output_row_in_order(tmp_path, graders):
    out = grade_submissions(graders, _subs(tmp_path, ROWS), fmt="json")
    rows = json.loads(out["text"])
    assert [r["row"] for r in rows] == list(range(2, 10))
    assert [r["verdict"] for r in rows] == [
        "correct",
        "correct",
        "invalid",
        "invalid",
        "correct",
        "invalid",
        "invalid",
        "incorrect",
    ]
    assert "row 5: expected 4 fields" in rows[3]["feedback"] and "did you mean" in rows[6]["feedback"]


def test_interrupted_batch_resumes_without_regrading(tmp_path, graders, monkeypatch):
    subs = _subs(tmp_path, ROWS)
    out = tmp_path / "results.csv"

    def stop_after_three(i, n):
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        grade_submissions(graders, subs, out=out, fmt="csv", progress=stop_after_three)
    journal = Path(str(out) + ".partial.jsonl")
    assert journal.is_file() and len(journal.read_text().splitlines()) == 3 and not out.exists()
    calls = []
    real = graders.grade
    monkeypatch.setattr(graders, "grade", lambda *a: calls.append(a) or real(*a))
    done = grade_submissions(graders, subs, out=out, fmt="csv")
    assert done["resumed"] == 3 and len(calls) == len(ROWS) - 3 - 1  # the short row is not graded at all
    import csv

    with out.open(newline="") as fh:
        records = list(csv.reader(fh))
    assert len(records) == 1 + len(ROWS) and not journal.exists()


def test_gradescope_results(tmp_path, graders):
    one = _subs(tmp_path, ROWS[:2])
    doc = json.loads(grade_submissions(graders, one, fmt="gradescope")["text"])
    assert doc["score"] == 2 and doc["output_format"] == "md"
    assert {"name", "score", "max_score", "output"} <= set(doc["tests"][0])
    many = _subs(tmp_path, ROWS + ["../../escape,mit-686x-em,loglik,-24.5\n"])
    out = tmp_path / "gs"
    grade_submissions(graders, many, out=out, fmt="gradescope")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("results.json"))
    assert f"{folder_name('ann')}/results.json" in files and len(files) == 5
    assert all(len(Path(f).parts) == 2 and not f.startswith(".") for f in files)
    assert not (tmp_path.parent / "escape").exists()


def test_cli_part_and_submissions(tmp_path, capsys):
    ex = str(EXERCISES / "mit-686x-em.yaml")
    assert main(["grade", ex, "--part", "loglik", "--answer", "-24.5", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "correct"
    assert main(["grade", ex, "--part", "logliq", "--answer", "1"]) == 2
    assert "did you mean 'loglik'?" in capsys.readouterr().err
    assert main(["grade", ex, "--answer", "1"]) == 2
    assert "--part" in capsys.readouterr().err
    subs = _subs(tmp_path, ROWS)
    assert main(["grade", str(EXERCISES), "--submissions", str(subs), "--format", "csv"]) == 0
    import csv
    import io

    assert len(list(csv.reader(io.StringIO(capsys.readouterr().out)))) == 1 + len(ROWS)


def test_gradescope_charges_only_auto_graded_parts_weighted_by_marks(tmp_path):
    text = (EXERCISES / "mit-686x-em.yaml").read_text(encoding="utf-8")
    assert "  - id: loglik\n    kind: numeric\n" in text
    text = text.replace("  - id: loglik\n    kind: numeric\n", "  - id: loglik\n    kind: numeric\n    marks: 3\n", 1)
    (tmp_path / "mit.yaml").write_text(text, encoding="utf-8")
    g = ExerciseGraders(tmp_path / "mit.yaml")
    subs = _subs(
        tmp_path,
        [
            "ann,mit-686x-em,loglik,-24.5\n",
            "ann,mit-686x-em,training-1,a\n",
            "ann,nyu-q2-em-basics,why,because\n",
            "ann,mit-686x-em,no-such-part,1\n",
        ],
    )
    doc = json.loads(grade_submissions(g, subs, fmt="gradescope")["text"])
    tests = {t["name"]: t for t in doc["tests"]}
    assert tests["mit-686x-em / loglik"]["score"] == 3 and tests["mit-686x-em / loglik"]["max_score"] == 3
    assert tests["mit-686x-em / training-1"]["score"] == 0 and tests["mit-686x-em / training-1"]["max_score"] == 1
    unknown = [t for n, t in tests.items() if "no-such-part" in n or "nyu-q2" in n]
    assert unknown and all("score" not in t and t["visibility"] == "hidden" for t in unknown)
    assert doc["score"] == 3


def test_hand_marked_parts_are_not_failed_tests(graders, tmp_path):
    part = "why"  # nyu-q1: an explain part
    subs = _subs(tmp_path, [f"ann,nyu-q1-kmeans-vs-gmm,{part},my explanation\n"])
    done = grade_submissions(graders, subs, fmt="gradescope")
    test = json.loads(done["text"])["tests"][0]
    assert "score" not in test and "status" not in test and "marked by hand" in test["output"]
    assert done["not_graded"] == []


def test_rows_the_ta_got_wrong_are_reported_not_scored(tmp_path, capsys):
    subs = _subs(tmp_path, ["ann,mit-686x-em,loglik,-24.5\n", "ann,mit-686x-en,loglik,1\n", "bob,mit-686x-em\n"])
    assert main(["grade", str(EXERCISES / "mit-686x-em.yaml"), "--submissions", str(subs)]) == 0
    err = capsys.readouterr().err
    assert "2 row(s)" in err and "rows 3, 4" in err and "not scored" in err


def test_progress_reads_the_current_stderr(monkeypatch):
    """The progress bar writes to sys.stderr as it is when asked, not to the stream there at import
    (which a test harness or an embedding application may have replaced and closed since)."""
    import io

    from emsym.grading.parts import terminal_progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert terminal_progress() is None  # not a terminal: no bar
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    show = terminal_progress()
    show(1, 2)
    show(2, 2)
    assert "grading 2/2" in term.getvalue() and term.getvalue().endswith("100%\n")
