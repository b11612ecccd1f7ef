"""Hostile answers and broken files (issue 14): one regression test per finding, plus fuzzing.

Each test names the item of the audit it covers.  Nothing a student types may raise, hang or
lose a row; nothing a file says may exhaust memory, run code, or reach a page or TeX unchecked.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emsym.cli import main
from emsym.exceptions import DataError, EmsymError, SpecError
from emsym.exercise import ExerciseError, load_exercise
from emsym.grading import FormulaGrader, GraderError, parse_tolerance
from emsym.grading.parts import ExerciseGraders, folder_name, grade_submissions, spreadsheet_safe
from emsym.render import render_sheet
from emsym.safeio import bounded_lines
from emsym.solve import solve
from emsym.spec import load_spec

EXERCISES = Path(__file__).resolve().parent.parent / "exercises"
MIT = EXERCISES / "mit-686x-em.yaml"
HEADER = "student,exercise,part,answer\n"


@pytest.fixture(scope="module")
def mit_graders():
    return ExerciseGraders(MIT)


def _run(argv, capsys):
    status = main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


# -- 1. Unicode digits and huge numbers on the answer path ---------------------------------------------
@pytest.mark.parametrize("answer", ["²", "①", "⁴", "٣", "9" * 5000, "1" * 30 + "²"])
@pytest.mark.parametrize("part", ["training-1", "estep-weights", "loglik", "mstep-mu"])
def test_unicode_digits_and_long_numbers_never_raise(mit_graders, part, answer):
    v = mit_graders.grade("mit-686x-em", part, answer)
    assert v.verdict == "invalid" and v.feedback.startswith("Could not read the answer")


def test_unicode_digit_in_cli_answer_expected_and_where(capsys):
    status, out, _ = _run(["grade", str(MIT), "--part", "training-1", "--answer", "²"], capsys)
    assert status == 0 and out.startswith("invalid")
    status, _, err = _run(["grade", "--expected", "①", "--answer", "x"], capsys)
    assert status == 2 and err.startswith("emsym: error: the expected answer '①' cannot be read")
    status, _, err = _run(["grade", "--expected", "x", "--where", "x = ⁴", "--answer", "x"], capsys)
    assert status == 2 and "side condition" in err and "Traceback" not in err


def test_a_batch_row_with_a_unicode_digit_is_journalled_and_graded(tmp_path, mit_graders):
    subs = tmp_path / "s.csv"
    subs.write_text(HEADER + "ann,mit-686x-em,training-1,²\nbob,mit-686x-em,training-1,b\n", encoding="utf-8")
    out = tmp_path / "r.json"
    done = grade_submissions(mit_graders, subs, out=out, fmt="json")
    assert [r["verdict"] for r in json.loads(out.read_text())] == ["invalid", "correct"] and done["rows"] == 2


# -- 2. the symbolic confirmation is bounded ----------------------------------------------------------
def test_symbolic_confirmation_of_a_huge_expansion_is_not_attempted():
    g = FormulaGrader("N_k/N")
    bomb = "N_k/N*((((N_k+N)*(hatN_k+hatN))^4)^4)^3/(((N_k*hatN_k+N_k*hatN+N*hatN_k+N*hatN)^4)^4)^3"
    start = time.process_time()
    v = g.grade(bomb)
    assert v.verdict == "correct" and "symbolically" not in v.feedback  # numeric verdict, sympy not run
    assert time.process_time() - start < 2.0  # was 34 s; a generous bound, far above the ~10 ms it takes


def test_the_size_bound_itself_refuses_the_bomb():
    from emsym.grading.grader import _symbolic_ok, symbolically_equal
    from emsym.grading.parser import parse

    bomb = parse("N_k/N*((((N_k+N)*(hatN_k+hatN))^4)^4)^3/(((N_k*hatN_k+N_k*hatN+N*hatN_k+N*hatN)^4)^4)^3").tree
    assert len(list(parse("x").tree)) and not _symbolic_ok(bomb)  # 39 nodes: only the size bound stops it
    assert symbolically_equal(bomb, parse("N_k/N").tree) is None
    assert _symbolic_ok(parse("(gamma_k1*x_1 + gamma_k2*x_2)/(gamma_k1 + gamma_k2)").tree)


def test_small_answers_are_still_confirmed_symbolically():
    g = FormulaGrader("(gamma_k1*x_1 + gamma_k2*x_2)/(gamma_k1 + gamma_k2)")
    assert "confirmed symbolically" in g.grade("(x_1*gamma_k1 + gamma_k2*x_2)/(gamma_k2 + gamma_k1)").feedback


# -- 3. long lines in --answers ------------------------------------------------------------------------
def test_bounded_lines_skips_an_overlong_line_in_bounded_memory():
    lines = list(bounded_lines(io.BytesIO(b"a\r\n" + b"x" * 100 + b"\nb\n\nc"), max_bytes=10, chunk=7))
    assert lines == [b"a", None, b"b", b"", b"c"]


def test_answers_file_with_a_huge_line_gives_one_invalid_row(tmp_path, capsys):
    f = tmp_path / "answers.txt"
    f.write_bytes(b"x\n" + b"x" * (4 << 20) + b"\n2*x\n")
    start = time.process_time()
    status, out, _ = _run(["grade", "--expected", "x", "--answers", str(f)], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [r["verdict"] for r in rows] == ["correct", "invalid", "incorrect"]
    assert "too long" in rows[1]["feedback"] and time.process_time() - start < 5


# -- 4. every physical row gives one output row, nothing truncated in silence ------------------------
def test_unterminated_quote_and_extra_fields_are_named_rows(tmp_path, mit_graders):
    subs = tmp_path / "s.csv"
    subs.write_text(
        HEADER + 'ann,mit-686x-em,training-1,"b\n'  # unterminated quote
        "bob,mit-686x-em,training-1,b,a\n"  # extra field: not graded as 'b'
        "cat,mit-686x-em,loglik,-24.5,+ 1000\n"  # not cut to -24.5
        "\n"  # blank row
        "dan,mit-686x-em,training-1,b\n",
        encoding="utf-8",
    )
    rows = json.loads(grade_submissions(mit_graders, subs, fmt="json")["text"])
    assert [r["row"] for r in rows] == [2, 3, 4, 5, 6]
    assert [r["verdict"] for r in rows] == ["invalid", "invalid", "invalid", "invalid", "correct"]
    assert "quote is not closed" in rows[0]["feedback"]
    assert "expected 4 fields" in rows[1]["feedback"] and "double quotes" in rows[1]["feedback"]
    assert "expected 4 fields" in rows[2]["feedback"] and rows[3]["feedback"].endswith("the row is blank.")


def test_bom_semicolons_and_non_utf8_rows(tmp_path, mit_graders):
    subs = tmp_path / "s.csv"
    subs.write_bytes(
        "\ufeffstudent;exercise;part;answer\nann;mit-686x-em;training-1;b\n".encode()
        + b"bob;mit-686x-em;training-1;\xff\n"
    )
    rows = json.loads(grade_submissions(mit_graders, subs, fmt="json")["text"])
    assert [r["verdict"] for r in rows] == ["correct", "invalid"] and "not UTF-8" in rows[1]["feedback"]


# -- 5. Gradescope folders are one-to-one and never overwritten --------------------------------------
def test_gradescope_folders_never_collide(tmp_path, mit_graders):
    ids = ["a b", "a_b", "张三", "李四", ".hidden", "hidden", "../up", "/etc"]
    assert len({folder_name(s) for s in ids}) == len(ids)
    assert all(not folder_name(s).startswith(".") and "/" not in folder_name(s) for s in ids)
    subs = tmp_path / "s.csv"
    subs.write_text(HEADER + "".join(f'"{s}",mit-686x-em,training-1,b\n' for s in ids), encoding="utf-8")
    out = tmp_path / "gs"
    grade_submissions(mit_graders, subs, out=out, fmt="gradescope")
    assert len(list(out.glob("*/results.json"))) == len(ids)
    assert not (tmp_path / "up").exists()
    with pytest.raises(EmsymError, match="does not overwrite"):
        grade_submissions(mit_graders, subs, out=out, fmt="gradescope")


# -- 6. a resumed batch never reuses verdicts of another exercise file or version --------------------
def test_journal_is_keyed_by_exercise_content(tmp_path):
    ex = tmp_path / "ex.yaml"
    ex.write_text(MIT.read_text(encoding="utf-8"), encoding="utf-8")
    subs = tmp_path / "s.csv"
    subs.write_text(HEADER + "ann,mit-686x-em,training-1,b\nbob,mit-686x-em,training-1,b\n", encoding="utf-8")
    out = tmp_path / "r.json"

    def stop(i, n):
        if i == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        grade_submissions(ExerciseGraders(ex), subs, out=out, fmt="json", progress=stop)
    assert grade_submissions(ExerciseGraders(ex), subs, out=out.with_name("other.json"), fmt="json")["resumed"] == 0
    # the same files resume; a changed exercise file (answer now 'a') does not
    text = ex.read_text(encoding="utf-8")
    changed = (
        text.replace("correct: true", "correct: __T__")
        .replace("correct: false", "correct: true")
        .replace("correct: __T__", "correct: false")
    )
    ex.write_text(changed, encoding="utf-8")
    done = grade_submissions(ExerciseGraders(ex), subs, out=out, fmt="json")
    assert done["resumed"] == 0
    assert [r["verdict"] for r in json.loads(out.read_text())] == ["incorrect", "incorrect"]


def test_journal_is_keyed_by_emsym_version(tmp_path, monkeypatch):
    import emsym

    subs = tmp_path / "s.csv"
    subs.write_text(HEADER + "ann,mit-686x-em,training-1,b\n", encoding="utf-8")
    first = ExerciseGraders(MIT).fingerprint
    monkeypatch.setattr(emsym, "__version__", "99.0")
    assert ExerciseGraders(MIT).fingerprint != first


# -- 7. output paths and spreadsheet formulas ---------------------------------------------------------
def test_output_problems_are_named_as_output(tmp_path, capsys):
    subs = tmp_path / "s.csv"
    subs.write_text(HEADER + "ann,mit-686x-em,training-1,b\n", encoding="utf-8")
    status, _, err = _run(["grade", str(MIT), "--submissions", str(subs), "--out", "/dev/null"], capsys)
    assert status == 2 and "special file" in err and "cannot read the submissions" not in err
    assert Path("/dev/null").is_char_device()
    deep = tmp_path / "new" / "folders" / "r.csv"
    status, _, err = _run(["grade", str(MIT), "--submissions", str(subs), "--out", str(deep)], capsys)
    assert status == 0 and deep.is_file()
    status, _, err = _run(["grade", str(MIT), "--submissions", str(tmp_path / "missing.csv")], capsys)
    assert status == 2 and "cannot read the submissions" in err


def test_student_ids_cannot_inject_spreadsheet_formulas(tmp_path, mit_graders):
    subs = tmp_path / "s.csv"
    subs.write_text(
        HEADER + '"=HYPERLINK(""http://x"")",mit-686x-em,training-1,b\n+1,mit-686x-em,training-1,b\n'
        "@SUM(A1),mit-686x-em,training-1,b\n-2,mit-686x-em,training-1,b\n",
        encoding="utf-8",
    )
    text = grade_submissions(mit_graders, subs, fmt="csv")["text"]
    students = [r[1] for r in list(csv.reader(io.StringIO(text)))[1:]]
    assert students == ['\'=HYPERLINK("http://x")', "'+1", "'@SUM(A1)", "'-2"]
    assert spreadsheet_safe("ann") == "ann"


# -- 8. YAML bombs, recursion, nesting, duplicate keys --------------------------------------------------
BOMB = "".join(
    f"{a}: &{a} [{', '.join([f'*{b}'] * 9) if b else ', '.join(['lol'] * 9)}]\n"
    for a, b in zip("abcdefghi", [None, *"abcdefgh"])
)


@pytest.mark.parametrize(
    "text, message",
    [
        (BOMB, "more than 200,000 values"),
        ("a: &a [*a]\n", "recursive alias"),
        ("[" * 20000 + "]" * 20000, "nested too deeply"),
        ("components: 2\ncomponents: 3\n", "duplicate key 'components'"),
        ("components: " + "9" * 5000 + "\n", "cannot read the value|at most 50"),
    ],
)
def test_broken_yaml_is_one_clear_error(tmp_path, text, message):
    f = tmp_path / "m.yaml"
    f.write_text(text)
    start = time.process_time()
    for load, error in ((load_spec, SpecError), (load_exercise, ExerciseError)):
        with pytest.raises(error, match=message):
            load(str(f))
    assert time.process_time() - start < 5


def test_duplicate_key_in_an_exercise_names_both_lines(tmp_path):
    f = tmp_path / "ex.yaml"
    f.write_text(MIT.read_text(encoding="utf-8") + "title: again\n", encoding="utf-8")
    with pytest.raises(ExerciseError, match=r"ex.yaml:\d+:1: duplicate key 'title' \(first at line 2\)"):
        load_exercise(f)


# -- 9. model size and exact numbers -------------------------------------------------------------------
@pytest.mark.parametrize(
    "model, message",
    [
        ({"components": 200}, "'components' should be at most 50"),
        ({"components": 10**30}, "'components' should be at most 50"),
        ({"components": 2, "dim": 1000}, "'dim' should be at most 100"),
        ({"components": 2, "mean": {"fixed": ["1e999999999", 2]}}, "at most 40 digits"),
        ({"components": 2, "mean": {"fixed": [10**400, 2]}}, "smaller than 1e300"),
        ({"components": 2, "mean": {"fixed": ["1/0", 2]}}, "division by zero"),
    ],
)
def test_model_size_is_bounded(model, message, capsys, tmp_path):
    start = time.process_time()
    with pytest.raises(SpecError, match=message):
        load_spec(model)
    assert time.process_time() - start < 1


# -- 10. encodings, special files, arguments ------------------------------------------------------------
def test_non_utf8_and_special_files(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"x\n1\n2\n\xff\xfe\n")
    status, _, err = _run(["run", "standard", "--data", str(bad)], capsys)
    assert status == 2 and "line 4: the data file is not UTF-8" in err
    status, _, err = _run(["run", "standard", "--data", "/dev/zero"], capsys)
    assert status == 2 and "should be a regular file" in err
    good = tmp_path / "ok.csv"
    good.write_text("x\n1\n2\n3\n")
    init = tmp_path / "init.yaml"
    init.write_bytes(b"components: [\xff]\n")
    status, _, err = _run(["run", "standard", "--data", str(good), "--init", str(init)], capsys)
    assert status == 2 and "init file is not UTF-8" in err
    model = tmp_path / "m.yaml"
    model.write_bytes(b"components: 2\nname: \xe9\n")
    status, _, err = _run(["derive", str(model)], capsys)
    assert status == 2 and "model file is not UTF-8" in err


def test_bom_in_a_data_csv_is_accepted(tmp_path):
    from emsym.data import load_data

    f = tmp_path / "d.csv"
    f.write_bytes("\ufeffx\n1\n2\n".encode())
    assert load_data(f).columns == ("x",)


def test_non_utf8_arguments(capsys):
    status, _, err = _run(["derive", os.fsdecode(b"\xff.yaml")], capsys)
    assert status == 2 and "is not valid UTF-8" in err


# -- 11. tolerances -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad", ["..%", "1e999", "inf", "-5%", "nan", "nearest -1", float("inf"), float("nan"), -0.1, 10**400, "50 sf", True]
)
def test_bad_tolerances_are_refused(bad):
    with pytest.raises(GraderError, match="tolerance"):
        parse_tolerance(bad)


@pytest.mark.parametrize(
    "good, want", [("1%", ("rel", 0.01)), (0.05, ("abs", 0.05)), ("3 sig figs", ("sig", 3.0)), ("0", ("abs", 0.0))]
)
def test_good_tolerances(good, want):
    assert parse_tolerance(good) == want


def test_an_exercise_with_a_bad_tolerance_fails_validation(tmp_path):
    f = tmp_path / "ex.yaml"
    f.write_text(
        MIT.read_text(encoding="utf-8").replace("tolerance: 0.0001", "tolerance: '1e999'", 1), encoding="utf-8"
    )
    assert "'1e999'" in f.read_text()
    with pytest.raises(ExerciseError, match="tolerance"):
        load_exercise(f)


# -- 12. notation is a fixed grammar ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "template", ["gamma_{k.__class__.__name__}{n}", "{k:>300000000}", "gamma_{n!r}", "x_{z}", "a" * 41, "{n}x"]
)
def test_notation_templates_cannot_run_format_code(tmp_path, template):
    text = MIT.read_text(encoding="utf-8")
    assert "names: [" in text
    f = tmp_path / "ex.yaml"
    f.write_text(
        text.replace("    names: [", f"    notation: {{'gamma[n,k]': '{template}'}}\n    names: [", 1), encoding="utf-8"
    )
    with pytest.raises(ExerciseError, match="notation"):
        load_exercise(f)


# -- 13. overflow ------------------------------------------------------------------------------------------
def test_data_near_the_float_limit_is_an_error_not_nan(tmp_path, capsys):
    f = tmp_path / "big.csv"
    f.write_text("x\n1e308\n-1e308\n3\n4\n")
    status, out, err = _run(["run", "standard", "--data", str(f), "--format", "json"], capsys)
    assert status == 2 and out == "" and "too large" in err


def test_json_output_is_strict():
    from emsym.safeio import dumps

    with pytest.raises(EmsymError, match=r"loglik\[1\] is nan"):
        dumps({"loglik": [1.0, float("nan")]}, EmsymError)


# -- 15. sheets: MathML sanitised, LaTeX whitelisted, files confined ---------------------------------------
def _exercise(tmp_path, statement, extra=""):
    f = tmp_path / "ex.yaml"
    f.write_text(
        f"""id: hostile
title: Hostile
source: {{author: test}}
model: standard
data: [0, 1, 5, 6]
init: [{{weight: 0.5, mean: 0, variance: 1}}, {{weight: 0.5, mean: 5, variance: 1}}]
statement: {json.dumps(statement)}
{extra}parts:
  - {{id: mu1, kind: numeric, prompt: "mu_1 after one step", quantity: {{what: parameter, name: mu_1, after: 1}}}}
""",
        encoding="utf-8",
    )
    return f


@pytest.mark.parametrize(
    "math",
    [
        r"$\href{javascript:alert(1)}{x}$",
        r"$\input{/etc/passwd}$",
        r"$^^5cinput{/etc/passwd}$",
        r"$\def\x{1}$",
        r"$\begin{verbatim}x\end{verbatim}$",
    ],
)
def test_unsafe_math_in_exercise_text_is_refused(tmp_path, math):
    f = _exercise(tmp_path, f"Consider {math}.")
    with pytest.raises(ExerciseError, match=r"ex.yaml:7:\d+: statement: expected math with allowed LaTeX"):
        load_exercise(f)


def test_html_sheets_never_carry_script_or_links(tmp_path):
    from emsym.render import _inline_html

    html = _inline_html(r"A $\text{<script>alert(1)</script>}$ and $\href{javascript:alert(1)}{x}$ <b>b</b>")
    assert "<script" not in html and "javascript" not in html and "href" not in html and "&lt;b&gt;" in html
    sol = solve(load_exercise(_exercise(tmp_path, r"Fine math: $\hat{\mu}_k = \frac{1}{N_k}\sum_n x_n$.")))
    page = render_sheet(sol, "html")
    assert "<mfrac>" in page and "<script" not in page


def test_tex_sheets_print_unsafe_math_as_text(tmp_path):
    from emsym.render import _tex_keep_math

    shown = _tex_keep_math(r"$\input{/etc/passwd}$")
    assert shown.startswith(r"\$\textbackslash{}input\{/") and "\\input" not in shown
    assert _tex_keep_math(r"$\frac{1}{2}$") == r"$\frac{1}{2}$"


@pytest.mark.parametrize("data", ["{csv: /etc/passwd}", "{csv: ../outside.csv}"])
def test_exercise_data_files_stay_in_the_exercise_folder(tmp_path, data):
    (tmp_path / "outside.csv").write_text("x\n1\n2\n3\n")
    folder = tmp_path / "ex"
    folder.mkdir()
    f = _exercise(folder, "s").read_text().replace("data: [0, 1, 5, 6]", f"data: {data}")
    (folder / "ex.yaml").write_text(f)
    with pytest.raises(ExerciseError, match="a file inside the exercise's folder") as info:
        load_exercise(folder / "ex.yaml")
    assert "root:" not in str(info.value)
    assert load_exercise(folder / "ex.yaml", allow_outside=data.endswith("outside.csv}")) if "outside" in data else True


def test_a_model_file_outside_the_exercise_folder_is_refused(tmp_path):
    (tmp_path / "m.yaml").write_text("components: 2\n")
    folder = tmp_path / "ex"
    folder.mkdir()
    text = _exercise(folder, "s").read_text().replace("model: standard", "model: ../m.yaml")
    (folder / "ex.yaml").write_text(text)
    with pytest.raises(ExerciseError, match="a file inside the exercise's folder"):
        load_exercise(folder / "ex.yaml")


# -- fuzzing -------------------------------------------------------------------------------------------------
def _tokens(*tokens: str, size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(tokens), max_size=size).map("".join)


_ANSWER_TEXT = _tokens(
    *"0123456789.eE+-*/^()[]_ ,=xyNk²³①⁴٣µσπγ₁₂\\{}$abc",
    "gamma_k1",
    "x_1",
    "mu",
    "sigma2",
    "sum",
    "log(",
    "exp(",
    "sqrt(",
    "abs(",
    "**",
    "hat",
    "pi",
    "e",
    "9" * 40,
    size=60,
)
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(answer=_ANSWER_TEXT)
def test_fuzz_the_answer_path_never_raises(mit_graders, answer):
    for part in ("loglik", "estep-weights", "training-1", "mstep-mu", "mstep-sigma2"):
        start = time.process_time()
        v = mit_graders.grade("mit-686x-em", part, answer)
        assert v.verdict in ("correct", "incorrect", "invalid") and 0 <= v.score <= 1
        assert not v.feedback.startswith("Not graded: emsym could not grade")  # no internal error
        assert time.process_time() - start < 2


@_SETTINGS
@given(lines=st.lists(_tokens(*'ab,;"\t \r', "mit-686x-em", "training-1", "²", size=20), max_size=12))
def test_fuzz_the_batch_reader_keeps_one_row_per_line(tmp_path_factory, mit_graders, lines):
    f = tmp_path_factory.mktemp("fuzz") / "s.csv"
    body = "".join(line.replace("\n", "").replace("\r", "") + "\n" for line in lines)
    f.write_bytes((HEADER + body).encode("utf-8"))
    rows = json.loads(grade_submissions(mit_graders, f, fmt="json")["text"])
    assert [r["row"] for r in rows] == list(range(2, 2 + len(lines)))


@_SETTINGS
@given(text=_tokens(*"abc:-[]{}&*!|>'\" \n0123456789.,#%@`", "components", "mean", "fixed", "  ", size=80))
def test_fuzz_the_file_loaders_raise_only_their_own_errors(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("fuzzfile")
    f = folder / "m.yaml"
    f.write_text(text, encoding="utf-8")
    from emsym.data import load_init_components

    for load, error in (
        (load_spec, SpecError),
        (load_exercise, ExerciseError),
        (lambda p: load_init_components(p, 1), DataError),
    ):
        with contextlib.suppress(error):
            load(str(f))
