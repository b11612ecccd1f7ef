"""The command line: formats, exit codes, one-line errors (never a traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import pdflatex

from emsym.cli import main

EXERCISES = Path(__file__).resolve().parent.parent / "exercises"


@pytest.fixture
def mit_files(tmp_path):
    data = tmp_path / "mit.csv"
    data.write_text("x\n-1\n0\n4\n5\n6\n")
    init = tmp_path / "init.yaml"
    init.write_text("components:\n  - {weight: 0.5, mean: 6, variance: 1}\n  - {weight: 0.5, mean: 7, variance: 4}\n")
    return str(data), str(init)


def run_cli(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_run_json_schema(capsys, mit_files):
    data, init = mit_files
    status, out, err = run_cli(
        capsys,
        "run",
        "standard",
        "--data",
        data,
        "--init",
        init,
        "--max-iter",
        "300",
        "--tol",
        "1e-12",
        "--responsibilities",
        "--format",
        "json",
    )
    assert status == 0 and err == ""  # converged: no warning
    result = json.loads(out)
    assert set(result) == {
        "components",
        "params",
        "loglik",
        "iterations",
        "converged",
        "responsibilities",
        "n_params",
        "bic",
        "aic",
    }
    assert result["converged"] and len(result["loglik"]) == result["iterations"] + 1
    assert result["loglik"][0] == pytest.approx(-24.512532330086678, abs=1e-9)
    c1 = result["components"][0]
    assert c1["mean"] == pytest.approx([5.0], abs=1e-6) and c1["covariance"][0][0] == pytest.approx(2 / 3, abs=1e-6)
    assert np.array(result["responsibilities"]).shape == (5, 2)


def test_run_max_iter_zero_returns_the_start(capsys, mit_files):
    data, init = mit_files
    status, out, _ = run_cli(
        capsys, "run", "standard", "--data", data, "--init", init, "--max-iter", "0", "--format", "json"
    )
    result = json.loads(out)
    assert status == 0 and result["iterations"] == 0 and len(result["loglik"]) == 1
    assert result["params"] == {"pi_1": 0.5, "pi_2": 0.5, "mu_1": 6.0, "mu_2": 7.0, "sigma2_1": 1.0, "sigma2_2": 4.0}


def test_run_per_component_view_for_a_bernoulli_variant(capsys, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("x\n" + "\n".join(str(v) for v in np.random.default_rng(1).normal(0, [1, 3] * 20)) + "\n")
    init = tmp_path / "i.yaml"
    init.write_text("components:\n  - {weight: 0.6, mean: 0, variance: 1}\n  - {weight: 0.4, mean: 0, variance: 5}\n")
    status, out, _ = run_cli(
        capsys,
        "run",
        "shared-mean-bernoulli",
        "--data",
        str(data),
        "--init",
        str(init),
        "--max-iter",
        "0",
        "--format",
        "json",
    )
    assert status == 0
    result = json.loads(out)
    assert result["params"] == {"theta": 0.4, "mu": 0.0, "sigma2_1": 1.0, "sigma2_2": 5.0}
    assert [c["weight"] for c in result["components"]] == [0.6, 0.4]


def test_run_text_and_warning_on_stderr(capsys, mit_files):
    data, init = mit_files
    status, out, err = run_cli(capsys, "run", "standard", "--data", data, "--init", init, "--max-iter", "1")
    assert status == 0
    assert "stopped (not converged) after 1 iteration;" in out and "5.131728" in out
    assert err.startswith("emsym: warning: EM did not converge in 1 iterations")


@pytest.mark.parametrize(
    "fmt, needle", [("text", "lambda = -N"), ("latex", r"\begin{document}"), ("json", '"method": "EM"')]
)
def test_derive_formats(capsys, fmt, needle):
    status, out, _ = run_cli(capsys, "derive", "standard-general", "--format", fmt)
    assert status == 0 and needle in out


def test_check_text_and_json(capsys):
    status, out, _ = run_cli(capsys, "check", "fixed-sigma", "--points", "200")
    assert status == 0 and "all checks passed" in out and "SKIP  agrees with scikit-learn" in out
    status, out, _ = run_cli(capsys, "check", "standard", "--points", "200", "--format", "json")
    report = json.loads(out)
    assert status == 0 and report["passed"] and len(report["checks"]) >= 4


def test_presets(capsys):
    status, out, _ = run_cli(capsys, "presets", "--format", "json")
    assert status == 0 and json.loads(out)["shared-mean-bernoulli"]["mixing"] == "bernoulli"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["derive", "standrad"], "did you mean 'standard'?"),
        (["run", "standard-general", "--data", "{data}"], "running EM needs whole numbers"),
        (["run", "standard", "--data", "{data}", "--tol", "-1"], "--tol should be >= 0"),
        (["run", "standard", "--data", "{data}", "--max-iter", "-3"], "--max-iter should be >= 0"),
        (["run", "spherical", "--data", "{data}"], "running EM needs whole numbers"),
        (["run", "{model2d}", "--data", "{data}"], "the model is 2-dimensional, but the data has 1 coordinate column"),
        (
            ["run", "tied-variance", "--data", "{data}", "--init", "{init}"],
            "the model has 3 components, but the file gives 2",
        ),
        (["run", "equal-shared-fixed", "--data", "{data}", "--init", "{init}"], "the model's mean is shared"),
        (
            ["run", "fixed-sigma", "--data", "{data}", "--init", "{init}"],
            "components[0].variance is 1.0, but the model fixes it at 100.0",
        ),
        (
            ["run", "standard", "--data", "{badinit_data}", "--init", "{badweights}"],
            "weights should be >= 0 and sum to 1",
        ),
        (["run", "standard", "--data", "{missing}"], "cannot read the data file"),
        (["check", "standard", "--points", "3"], "--points should be at least 10"),
    ],
)
def test_user_errors_are_one_line_exit_2(capsys, tmp_path, mit_files, argv, message):
    data, init = mit_files
    (tmp_path / "m2.yaml").write_text("dim: 2\ncovariance: spherical\n")
    (tmp_path / "w.yaml").write_text(
        "components:\n  - {weight: 0.7, mean: 6, variance: 1}\n  - {weight: 0.7, mean: 7, variance: 4}\n"
    )
    subs = {
        "{data}": data,
        "{init}": init,
        "{model2d}": str(tmp_path / "m2.yaml"),
        "{badinit_data}": data,
        "{badweights}": str(tmp_path / "w.yaml"),
        "{missing}": str(tmp_path / "none.csv"),
    }
    status, out, err = run_cli(capsys, *[subs.get(a, a) for a in argv])
    assert status == 2 and out == ""
    assert err.startswith("emsym: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_console_script_runs_as_a_process(mit_files):
    data, init = mit_files
    env = dict(os.environ)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "emsym",
            "run",
            "standard",
            "--data",
            data,
            "--format",
            "json",
            "--max-iter",
            "0",
            "--init",
            init,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["iterations"] == 0
    bad = subprocess.run(
        [sys.executable, "-m", "emsym", "run", "standard"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "--data" in bad.stderr


def test_grade_single_answer_text_and_json(capsys):
    status, out, _ = run_cli(
        capsys,
        "grade",
        "--expected",
        "(gamma_k1 + gamma_k2)/2",
        "--where",
        "gamma_11 + gamma_21 = 1",
        "--where",
        "gamma_12 + gamma_22 = 1",
        "--answer",
        "(gamma_k1+gamma_k2)/(gamma_11+gamma_21+gamma_12+gamma_22)",
        "--format",
        "json",
    )
    v = json.loads(out)
    assert status == 0 and set(v) == {"verdict", "score", "feedback"}
    assert v["verdict"] == "correct" and "side condition" in v["feedback"]
    status, out, _ = run_cli(
        capsys, "grade", "--expected", "-24.512532330086678", "--tolerance", "nearest tenth", "--answer", "-24.5"
    )
    assert status == 0 and out.startswith("correct (score 1)")


def test_grade_answers_file_one_verdict_per_line_in_order(capsys, tmp_path):
    f = tmp_path / "answers.txt"
    f.write_bytes(b"N_k/N\nN_k\n\n(((\x00\n\xff\xfe\r\n" + b"x" * 100_000 + b"\nN_k/N")
    status, out, _ = run_cli(capsys, "grade", "--expected", "N_k/N", "--answers", str(f), "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert [r["verdict"] for r in rows] == [
        "correct",
        "incorrect",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "correct",
    ]


def test_grade_author_error_exit_2(capsys):
    status, _, err = run_cli(capsys, "grade", "--expected", "N_k/", "--answer", "1")
    assert status == 2 and err.startswith("emsym: error: the expected answer 'N_k/' cannot be read")


@pytest.mark.skipif(
    __import__("shutil").which("pdflatex") is None, reason="pdflatex is not installed (Debian: texlive-latex-base)"
)
@pytest.mark.parametrize(
    "preset",
    [
        "standard",
        "shared-mean-bernoulli",
        "spherical",
        "equal-shared-fixed",
        "tied-variance",
        "standard-general",
        "fixed-sigma",
        "full",
        "tied-full",
        "VEI",
        "EVE",
        "EVV",
    ],
)
def test_latex_derivation_compiles(capsys, tmp_path, preset):
    status, out, _ = run_cli(capsys, "derive", preset, "--format", "latex")
    assert status == 0
    (tmp_path / "d.tex").write_text(out)
    proc = pdflatex(tmp_path, "d.tex")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "d.pdf").stat().st_size > 1000


# -- issue 13: commands a teacher can use as they are ------------------------------------------
@pytest.mark.parametrize("answer", ["-x_1", "-(x_1-mu_k)^2/2"])
def test_answers_starting_with_a_minus(capsys, answer):
    assert main(["grade", "--expected", answer, "--answer", answer, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "correct"
    assert main(["grade", "--expected", answer, f"--answer={answer}", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "correct"


def test_a_fixed_weight_of_zero_is_one_clear_line(tmp_path, capsys):
    f = tmp_path / "m.yaml"
    f.write_text("components: 2\nmixing: {fixed: [0, 1]}\n")
    assert main(["check", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'mixing.fixed[0]' should be a weight > 0" in err and "remove it" in err


def test_solve_json_for_a_folder_goes_to_stdout(capsys):
    assert main(["solve", str(EXERCISES), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["exercises"]) == len(list(EXERCISES.glob("*.yaml"))) and doc["failed"] == 0
    assert main(["solve", str(EXERCISES), "--format", "md", "--out", "-"]) == 2
    assert "standard output holds one document" in capsys.readouterr().err
    assert main(["solve", str(EXERCISES / "nyu-q4-m-step.yaml"), "--format", "md", "--out", "-"]) == 0
    assert capsys.readouterr().out.startswith("# ")


def test_submissions_out_dash_is_stdout(tmp_path, capsys):
    subs = tmp_path / "s.csv"
    subs.write_text("student,exercise,part,answer\nann,mit-686x-em,training-1,b\n")
    assert main(["grade", str(EXERCISES / "mit-686x-em.yaml"), "--submissions", str(subs), "--out", "-"]) == 0
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["verdict"], r["feedback"], r["graded"]) for r in rows] == [("correct", "Correct.", "auto")]
    assert not (tmp_path / "-").exists() and not Path("-").exists()


def test_output_files_follow_the_umask(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert main(["solve", str(EXERCISES / "nyu-q4-m-step.yaml"), "--format", "md", "--out", str(tmp_path)]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    sheet = tmp_path / "nyu-q4-m-step.md"
    assert sheet.stat().st_mode & 0o777 == 0o644


def test_run_iterations_runs_exactly_n_without_a_warning(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("x\n-1\n0\n4\n5\n6\n")
    init = tmp_path / "i.yaml"
    init.write_text("components:\n  - {weight: 0.5, mean: 6, variance: 1}\n  - {weight: 0.5, mean: 7, variance: 4}\n")
    base = ["run", "standard", "--data", str(data), "--init", str(init), "--format", "json"]
    assert main(base) == 0
    converged = json.loads(capsys.readouterr().out)
    assert converged["converged"] and converged["iterations"] < 400
    assert main([*base, "--iterations", "400"]) == 0  # past convergence: no stopping rule fires
    out = capsys.readouterr()
    exact = json.loads(out.out)
    assert exact["iterations"] == 400 and len(exact["loglik"]) == 401 and out.err == ""
    assert main([*base, "--iterations", "3", "--max-iter", "1"]) == 0  # --iterations wins
    assert json.loads(capsys.readouterr().out)["iterations"] == 3
    assert main([*base, "--iterations", "-1"]) == 2
    assert "--iterations should be >= 0" in capsys.readouterr().err


def test_a_general_d_takes_the_data_s_number_of_coordinates(tmp_path, capsys):
    """A Gaussian written for a general d runs on data of any d, as a vector family does.  Reference: the
    same run with the data's d written in the model file."""
    rng = np.random.default_rng(6)
    X = np.vstack([rng.normal(0, 1, (60, 3)), rng.normal(4, 1.5, (60, 3))])
    (tmp_path / "x.csv").write_text("a,b,c\n" + "\n".join(",".join(f"{v:.17g}" for v in row) for row in X) + "\n")
    runs = []
    for dim in ("d", 3):
        (tmp_path / f"m{dim}.yaml").write_text(f"components: 2\ndim: {dim}\ncovariance: diag\n")
        args = ["run", str(tmp_path / f"m{dim}.yaml"), "--data", str(tmp_path / "x.csv"), "--format", "json"]
        assert main(args) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0]["loglik"] == runs[1]["loglik"]
    assert runs[0]["components"] == runs[1]["components"]
    (tmp_path / "vei.yaml").write_text("components: 2\ndim: d\ncovariance: VEI\n")
    (tmp_path / "y.csv").write_text("y\n" + "\n".join(str(v) for v in X[:, 0]) + "\n")
    assert main(["run", str(tmp_path / "vei.yaml"), "--data", str(tmp_path / "y.csv")]) == 2
    err = capsys.readouterr().err
    assert "(dim 1, from the data)" in err and "is for d > 1 dimensions" in err
