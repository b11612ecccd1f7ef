"""Grading answers to exercise parts, one at a time or as a batch of submissions.

``ExerciseGraders(path)`` loads and solves the exercises under PATH once and keeps a grader
per (exercise id, part id):

- formula: the part's ``FormulaGrader`` (names, side conditions, misconceptions);
- numeric: the computed value with the part's tolerance; a wrong number is compared with the
  values typical mistakes give (computed from the same E-step: unweighted mean, stale mean,
  n for N_k, counts for weights, unnormalised responsibilities) and with the same quantity of
  the other components -- accepted when the part says ``permutable: true`` (label switching);
- assignment: a list of component numbers, with partial credit;
- choice: option letters (a, b, ...) or numbers;
- derivation and explain parts are not auto-graded (verdict "invalid", said plainly).

``grade_submissions`` grades a CSV of student,exercise,part,answer rows: every input row gives
exactly one output row in the same order, also on errors; with an output file it keeps a
journal beside it, so an interrupted run resumes without regrading.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..exceptions import EmsymError
from ..safeio import LIMITS as _IO_LIMITS
from ..safeio import bounded_lines
from .grader import Verdict
from .parser import DIGITS

LINE_LIMIT = _IO_LIMITS["line_bytes"]

__all__ = ["ExerciseGraders", "folder_name", "grade_submissions", "spreadsheet_safe"]


def _not_graded(kind: str) -> Verdict:
    return Verdict("invalid", 0.0, f"This part ({kind}) is not graded automatically; a person reads the answer.")


def _small_int(token: str) -> bool:
    """1 to 3 ASCII digits ('²' and '①' are digits to str.isdigit() but not to int())."""
    return 0 < len(token) < 4 and all(c in DIGITS for c in token)


class _NumericPart:
    def __init__(self, result):
        self.r = result
        self.g = result.grader

    def grade(self, answer) -> Verdict:
        v = self.g.grade(answer)
        if v.verdict != "incorrect":
            return v
        got = self.g.number(answer)
        if got is None:
            return v
        for other in self.r.details.get("other_labels", []):
            if self.g.within(got, float(other)):
                if self.r.part.spec.get("permutable"):
                    return Verdict(
                        "correct",
                        1.0,
                        "Correct, up to the numbering of the components (the question allows any order).",
                        v.reading,
                    )
                return Verdict(
                    "incorrect",
                    0.0,
                    "Incorrect: that is the value for another component; check "
                    "which component the question asks about.",
                    v.reading,
                    "labels-swapped",
                )
        for key, msg, value in self.r.details.get("mistakes", []):
            if self.g.within(got, float(value)):
                return Verdict("incorrect", 0.0, f"Incorrect: {msg}", v.reading, key)
        return v


class _AssignmentPart:
    def __init__(self, result):
        self.want = [int(v) for v in result.answer]

    def grade(self, answer) -> Verdict:
        tokens = [t for t in re.split(r"[\s,;]+", str(answer).strip()) if t]
        if not tokens or len(str(answer)) > 1000:
            return Verdict(
                "invalid", 0.0, "Could not read the answer: give one component number per point, e.g. 2, 2, 1."
            )
        if not all(_small_int(t) for t in tokens):
            bad = next(t for t in tokens if not _small_int(t))
            return Verdict("invalid", 0.0, f"Could not read the answer: {bad[:20]!r} is not a component number.")
        got = [int(t) for t in tokens]
        if len(got) != len(self.want):
            return Verdict(
                "invalid",
                0.0,
                f"Could not read the answer: {len(self.want)} numbers expected (one per point), got {len(got)}.",
            )
        right = sum(a == b for a, b in zip(got, self.want))
        if right == len(got):
            return Verdict("correct", 1.0, "Correct.")
        wrong = [str(i + 1) for i, (a, b) in enumerate(zip(got, self.want)) if a != b]
        return Verdict(
            "incorrect",
            right / len(got),
            f"Incorrect: {right} of {len(got)} right; look again at point(s) {', '.join(wrong)}.",
        )


class _ChoicePart:
    def __init__(self, result):
        self.options = result.part.spec["options"]
        self.want = set(result.answer)

    def grade(self, answer) -> Verdict:
        tokens = [t.strip("()").lower() for t in re.split(r"[\s,;]+", str(answer).strip()) if t.strip("()")]
        n = len(self.options)
        chosen = set()
        for t in tokens:
            if len(t) == 1 and "a" <= t <= chr(96 + n):
                chosen.add(ord(t) - 96)
            elif _small_int(t) and 1 <= int(t) <= n:
                chosen.add(int(t))
            else:
                return Verdict(
                    "invalid", 0.0, f"Could not read the answer: {t[:20]!r} is not an option (a-{chr(96 + n)})."
                )
        if not chosen:
            return Verdict("invalid", 0.0, "Could not read the answer: give the letter(s) of the option(s).")
        if chosen == self.want:
            return Verdict("correct", 1.0, "Correct.")
        notes = [
            f"({chr(96 + c)}) {self.options[c - 1].get('explanation', 'is not right')}"
            for c in sorted(chosen - self.want)
        ]
        missing = sorted(self.want - chosen)
        msg = "Incorrect." + (" " + " ".join(notes) if notes else "")
        if missing:
            msg += f" Missing: {', '.join('(' + chr(96 + c) + ')' for c in missing)}."
        return Verdict("incorrect", 0.0, msg)


def part_grader(r) -> Any:
    """The grader of one solved part (a FormulaGrader, a numeric, assignment or choice grader), or the
    part's kind for a part a person marks."""
    kind = r.part.kind
    if kind == "formula":
        return r.grader
    if kind == "numeric" and r.grader is not None:
        return _NumericPart(r)
    if kind == "assignment":
        return _AssignmentPart(r)
    if kind == "choice":
        return _ChoicePart(r)
    return kind


class ExerciseGraders:
    """Graders for every part of the exercises under a path (a file or a folder)."""

    def __init__(self, path: str | os.PathLike | None = None):
        from .. import __version__
        from ..exercise import ExerciseError, exercise_files, load_exercise
        from ..solve import solve

        self.graders: dict[tuple[str, str], object] = {}
        self.marks: dict[tuple[str, str], float] = {}  # a part's weight in a score (the exercise's `marks:`)
        self.problems: list[str] = []
        self.exercises: dict[str, list[str]] = {}
        self.follow: dict[tuple[str, str], tuple[list[str], float, Any]] = {}  # parts with uses:
        files = exercise_files(path) if path is not None else []
        # What a verdict depends on besides the answer: emsym's version and the exercise files.
        h = hashlib.sha256(f"emsym {__version__}".encode())
        for f in files:
            try:
                h.update(f"|{f.name}|".encode() + hashlib.sha256(f.read_bytes()).digest())
            except OSError:
                h.update(f"|{f.name}|unreadable".encode())
        self.fingerprint = h.hexdigest()
        for f in files:
            try:
                sol = solve(load_exercise(f))
            except ExerciseError as exc:
                self.problems.extend(exc.problems)
                continue
            self.add(sol)

    def add(self, sol) -> None:
        """Graders for every part of one solved exercise (a file's, or a student's variant)."""
        self.exercises[sol.exercise.id] = [r.part.id for r in sol.parts]
        for r in sol.parts:
            key = (sol.exercise.id, r.part.id)
            self.graders[key] = part_grader(r)
            self.marks[key] = float(r.part.spec.get("marks", 1))
            if "follow" in r.details:
                spec = r.part.spec
                self.follow[key] = (spec["uses"], spec.get("credit", 0.5), r.details["follow"])

    def status(self, exercise: str, part: str) -> str:
        """'auto' (graded here), 'manual' (a person reads it) or 'unknown' (no such exercise or part)."""
        g = self.graders.get((exercise, part))
        return "unknown" if g is None else "manual" if isinstance(g, str) else "auto"

    def lookup(self, exercise: str, part: str) -> tuple[Any, str | None]:
        """The grader, or an error message naming what is unknown."""
        if exercise not in self.exercises:
            close = difflib.get_close_matches(exercise, list(self.exercises), n=1)
            return None, f"no exercise {exercise!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        if (exercise, part) not in self.graders:
            close = difflib.get_close_matches(part, self.exercises[exercise], n=1)
            return None, f"exercise {exercise!r} has no part {part!r}" + (
                f" (did you mean {close[0]!r}?)" if close else ""
            )
        return self.graders[(exercise, part)], None

    def grade(self, exercise: str, part: str, answer: str, earlier: dict | None = None) -> Verdict:
        """A verdict for any answer text; never raises (a batch must not stop on one row).

        ``earlier`` maps the ids of this exercise's other parts to the same student's answers: a
        part with ``uses:`` then earns its ``credit:`` (default 0.5) when its answer is wrong but
        follows from a wrong earlier answer (error carried forward), and the feedback says so.
        """
        g, err = self.lookup(exercise, part)
        if g is None:
            return Verdict("invalid", 0.0, f"Not graded: {err}.")
        if isinstance(g, str):
            return _not_graded(g)
        try:
            v = g.grade(answer)
            if v.verdict == "incorrect" and earlier and (exercise, part) in self.follow:
                v = self._carried_forward(exercise, part, answer, earlier, v)
            return v
        except Exception as exc:  # a bug in emsym, not the student's fault: say so, keep the row
            return Verdict(
                "invalid",
                0.0,
                f"Not graded: emsym could not grade this answer ({type(exc).__name__}); please report it.",
            )

    def _carried_forward(self, exercise: str, part: str, answer: str, earlier: dict, v: Verdict) -> Verdict:
        uses, credit, follow = self.follow[(exercise, part)]
        wrong = []
        for u in uses:
            if u not in earlier:
                return v
            g: Any = self.graders.get((exercise, u))
            if g is None or isinstance(g, str):
                return v
            if g.grade(earlier[u]).verdict == "incorrect":
                wrong.append(u)
        if not wrong or not follow(earlier, answer):
            return v
        return Verdict(
            "incorrect",
            float(credit),
            f"Incorrect, but it follows correctly from your answer to part {', '.join(wrong)}, which was wrong "
            f"(error carried forward: {credit:.0%} of the marks). {v.feedback}",
            v.reading,
            "carried-forward",
        )


# -- batches ----------------------------------------------------------------------------------
_COLUMNS = ("student", "exercise", "part", "answer")
_DELIMITERS = (",", ";", "\t")


def _header(line: bytes | None, path) -> tuple[str, dict]:
    """(delimiter, {column: index}) from line 1; comma, semicolon or tab, whichever names the columns."""
    if line is None:
        raise EmsymError(
            f"{path}: line 1 is longer than the limit ({LINE_LIMIT:,} bytes); expected the header "
            "student,exercise,part,answer"
        )
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise EmsymError(
            f"{path}: line 1 is not UTF-8 text; save the file as UTF-8 (CSV UTF-8 in a spreadsheet)"
        ) from None
    for delim in _DELIMITERS:
        try:
            header = [h.strip().lower() for h in next(csv.reader([text], delimiter=delim, strict=True))]
        except (csv.Error, StopIteration):
            continue
        if all(c in header for c in _COLUMNS):
            return delim, {c: header.index(c) for c in _COLUMNS} | {"_width": len(header)}
    if not text.strip():
        raise EmsymError(f"{path}: the submissions file is empty; expected a header student,exercise,part,answer")
    raise EmsymError(
        f"{path}: line 1 should name the columns {', '.join(_COLUMNS)} separated by commas (or "
        f"semicolons or tabs), but got {text[:80]!r}"
    )


def _read_rows(path):
    """(line number, raw line, fields dict or None, problem) for every physical line after the header.

    One physical line is one row, whatever its quotes: an unterminated quote is an error for its
    own line and never swallows the following ones, a row with more fields than the header is
    refused (an answer with the delimiter in it must be quoted) rather than cut, and a blank line
    is reported as blank.  So every input row gives exactly one output row.
    """
    from ..safeio import bounded_lines

    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise EmsymError(f"{path}: cannot read the submissions: {exc.strerror or exc}") from None
    with fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise EmsymError(f"{path}: the submissions file should be a regular file")
        lines = bounded_lines(fh, LINE_LIMIT)
        delim, idx = _header(next(lines, b""), path)
        width = idx.pop("_width")
        names = ", ".join(c for c, _ in sorted(idx.items(), key=lambda kv: kv[1]))
        for row_no, raw in enumerate(lines, start=2):
            if raw is None:
                yield row_no, b"", None, f"row {row_no}: the line is longer than the limit ({LINE_LIMIT:,} bytes)"
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield row_no, raw, None, f"row {row_no}: the line is not UTF-8 text"
                continue
            if not text.strip():
                yield row_no, raw, None, f"row {row_no}: the row is blank"
                continue
            try:
                fields = next(csv.reader([text], delimiter=delim, strict=True))
            except csv.Error as exc:
                problem = (
                    "a quote is not closed on this line (an answer must be on one line)"
                    if "end of data" in str(exc)
                    else f"the CSV is malformed here ({exc})"
                )
                yield row_no, raw, None, f"row {row_no}: {problem}"
                continue
            got = {c: (fields[i] if i < len(fields) else "") for c, i in idx.items()}
            if len(fields) != width:
                hint = f"; an answer containing '{delim}' must be in double quotes" if len(fields) > width else ""
                yield row_no, raw, got, f"row {row_no}: expected {width} fields ({names}), got {len(fields)}{hint}"
                continue
            yield row_no, raw, got, None


def _key(fingerprint: str, row_no: int, raw: bytes) -> str:
    """Journal key of a row: the grading context (emsym version, exercise files), its line number and bytes."""
    h = hashlib.sha256(fingerprint.encode())
    h.update(f"|{row_no}|".encode())
    h.update(raw)
    return h.hexdigest()[:32]


_WORKER: dict = {}  # the graders a forked worker process grades with


def _grade_task(task: tuple) -> dict:
    ex_id, part_id, answer, earlier = task
    graders = _WORKER["graders"]
    v = graders.grade(ex_id, part_id, answer, earlier)
    return {**v.to_dict(), "graded": graders.status(ex_id, part_id)}


def _earlier_answers(graders: ExerciseGraders, rows) -> dict:
    """(student, exercise) -> {part: answer} for the parts other parts build on (``uses:``); the last
    row of a student's part counts, as in the output."""
    used = {(ex, u) for (ex, _), (uses, _, _) in graders.follow.items() for u in uses}
    out: dict = {}
    if not used:
        return out
    for _, _, fields, problem in rows:
        if problem is None and fields is not None:
            ex, part = fields["exercise"].strip(), fields["part"].strip()
            if (ex, part) in used:
                out.setdefault((fields["student"].strip(), ex), {})[part] = fields["answer"]
    return out


def grade_submissions(
    graders: ExerciseGraders,
    submissions: str | os.PathLike,
    out: str | os.PathLike | None = None,
    fmt: str = "csv",
    progress: Callable[[int, int], None] | None = None,
    jobs: int = 1,
) -> dict:
    """Grade every row of a submissions CSV; write ``out`` (or return the text) in csv, json or gradescope.

    With ``out``, graded rows are journalled beside it (``OUT.partial.jsonl``) and a rerun of the
    same command resumes; a journal entry is reused only for the same line, the same exercise files
    and the same emsym version.  Read problems raise ``EmsymError`` naming the submissions, write
    problems naming the output.  ``jobs`` > 1 grades in that many worker processes (forked, so they
    share the solved exercises); rows keep their order and the journal is written as they finish.
    A part with ``uses:`` is graded with the same student's answers to the parts it builds on
    (follow-through credit), wherever those rows are in the file.
    """
    from ..safeio import check_writable_target, write_atomic

    if fmt not in ("csv", "json", "gradescope"):
        raise ValueError(fmt)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise EmsymError(f"jobs should be a whole number >= 1, but got {jobs!r}")
    rows = list(_read_rows(submissions))
    earlier = _earlier_answers(graders, rows)
    journal_path = None
    if out is not None:
        out = Path(out)
        check_writable_target(out, EmsymError, folder=(fmt == "gradescope"))
        journal_path = out.with_name(out.name + ".partial.jsonl")
        check_writable_target(journal_path, EmsymError)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmsymError(f"{out.parent}: cannot create the output folder: {exc.strerror}") from None
    done: dict[str, dict] = {}
    if journal_path is not None and journal_path.exists():
        with open(journal_path, "rb") as jf:
            for line in bounded_lines(jf, 1 << 20):
                try:
                    rec = json.loads(line or b"")
                    done[rec["key"]] = rec["result"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by an interruption: that row is graded again
    results = []
    try:
        journal = open(journal_path, "a", encoding="utf-8") if journal_path is not None else None
    except OSError as exc:
        raise EmsymError(f"{journal_path}: cannot write the grading journal: {exc.strerror}") from None
    resumed = 0
    keys = [_key(graders.fingerprint, row_no, raw) for row_no, raw, _, _ in rows]
    tasks = []  # (row index, task) for the rows not in the journal and readable
    for i, ((_, _, fields, problem), key) in enumerate(zip(rows, keys)):
        if key in done or problem is not None or fields is None:
            continue
        ex_id, part_id = fields["exercise"].strip(), fields["part"].strip()
        mine = earlier.get((fields["student"].strip(), ex_id)) if (ex_id, part_id) in graders.follow else None
        tasks.append((i, (ex_id, part_id, fields["answer"], mine)))
    pool = None
    if jobs > 1 and len(tasks) > 1:
        import multiprocessing

        _WORKER["graders"] = graders
        pool = multiprocessing.get_context("fork").Pool(jobs)
        graded_iter: Any = iter(pool.imap(_grade_task, (t for _, t in tasks), chunksize=64))
    else:
        _WORKER["graders"] = graders
        graded_iter = (_grade_task(t) for _, t in tasks)
    task_rows = iter(i for i, _ in tasks)
    next_task = next(task_rows, None)
    try:
        for i, ((row_no, _, fields, problem), key) in enumerate(zip(rows, keys)):
            if key in done:
                res = done[key]
                resumed += 1
            else:
                base = {c: (fields or {}).get(c, "") for c in ("student", "exercise", "part")}
                ex_id, part_id = base["exercise"].strip(), base["part"].strip()
                if i == next_task:
                    got = next(graded_iter)
                    next_task = next(task_rows, None)
                    graded = got.pop("graded")
                    verdict = got
                else:
                    v = Verdict("invalid", 0.0, f"Not graded: {problem}.")
                    graded = "unknown"  # the row itself is broken: the TA's to fix, not the student's fault
                    verdict = v.to_dict()
                res = {
                    "row": row_no,
                    **base,
                    **verdict,
                    "graded": graded,
                    "marks": graders.marks.get((ex_id, part_id), 1.0),
                }
                if journal is not None:
                    journal.write(json.dumps({"key": key, "result": res}) + "\n")
                    if i % 256 == 0:
                        journal.flush()
            results.append(res)
            if progress is not None:
                progress(i + 1, len(rows))
    finally:
        if pool is not None:
            pool.terminate()
        _WORKER.clear()
        if journal is not None:
            journal.close()
    text = _format(results, fmt)
    if out is not None:
        try:
            if fmt == "gradescope" and isinstance(text, dict):
                targets = {Path(out) / name / "results.json": doc for name, doc in text.items()}
                existing = [str(t) for t in targets if t.exists()]
                if existing:
                    raise EmsymError(
                        f"{existing[0]} already exists ({len(existing)} result file(s) in all); emsym "
                        "does not overwrite graded results: remove them or choose another --out"
                    )
                for target, doc in targets.items():
                    write_atomic(target, doc)
            else:
                write_atomic(out, text)
        except OSError as exc:
            raise EmsymError(f"{out}: cannot write the output: {exc.strerror}") from None
        if journal_path is not None:
            journal_path.unlink(missing_ok=True)
    not_graded = [r["row"] for r in results if r.get("graded") == "unknown"]
    return {"rows": len(results), "resumed": resumed, "text": text, "not_graded": not_graded}


def folder_name(student: str) -> str:
    """A Gradescope folder name for a student id: readable, never a path, and one-to-one.

    The readable part keeps ASCII letters, digits and ``._@-`` (``../x`` and ``/etc`` stay inside
    the output folder); a short hash of the exact id follows, so ids that read alike (``a b`` and
    ``a_b``, ``张三`` and ``李四``, ``.hidden`` and ``hidden``) never share a folder.
    """
    readable = re.sub(r"[^A-Za-z0-9._@-]", "_", student)[:60].lstrip(".") or "_"
    return f"{readable}-{hashlib.sha256(student.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: object) -> str:
    """A CSV cell a spreadsheet shows as text: one starting with = + - @ (a formula) gets a leading '."""
    text = str(cell)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _format(results: list[dict], fmt: str):
    if fmt == "json":
        return json.dumps(results, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["row", "student", "exercise", "part", "verdict", "score", "feedback", "graded", "marks"])
        for r in results:
            w.writerow(
                [
                    r["row"],
                    *(spreadsheet_safe(r[c]) for c in ("student", "exercise", "part", "verdict")),
                    r["score"],
                    spreadsheet_safe(r["feedback"]),
                    r.get("graded", "auto"),
                    r.get("marks", 1.0),
                ]
            )
        return buf.getvalue()
    if fmt == "gradescope":
        by_student: dict[str, list] = {}
        for r in results:
            by_student.setdefault(r["student"] or "(no student)", []).append(r)
        docs = {folder_name(s): json.dumps(_gradescope(rs), indent=1) for s, rs in by_student.items()}
        return docs[next(iter(docs))] if len(docs) == 1 else docs
    raise ValueError(fmt)


def _gradescope_test(r: dict) -> dict:
    """One Gradescope test for one answered part, weighted by the part's marks.

    A part a person marks (explain, derivation) is listed without a score, so it is neither passed
    nor failed; a row the TA's file got wrong (unknown exercise or part, a malformed line) is
    hidden from the student and carries no score -- it is reported to the TA instead.
    """
    test: dict[str, Any] = {"name": f"{r['exercise']} / {r['part']}", "output_format": "md"}
    graded = r.get("graded", "auto")
    if graded == "auto":
        marks = float(r.get("marks", 1.0))
        test |= {
            "score": round(r["score"] * marks, 6),
            "max_score": marks,
            "status": "passed" if r["verdict"] == "correct" else "failed",
            "output": f"**{r['verdict']}**: {r['feedback']}",
        }
    elif graded == "manual":
        test["output"] = "This part is marked by hand; your answer has been recorded."
    else:
        test |= {
            "visibility": "hidden",
            "output": f"Not graded (a problem with the submissions file, not the answer): {r['feedback']}",
        }
    return test


def _gradescope(rows: list[dict]) -> dict:
    """Gradescope's results.json for one submission: one test per answered part."""
    tests = [_gradescope_test(r) for r in rows]
    auto = [r for r in rows if r.get("graded", "auto") == "auto"]
    manual = sum(r.get("graded") == "manual" for r in rows)
    note = f"; {manual} answer(s) to be marked by hand" if manual else ""
    return {
        "score": round(sum(t.get("score", 0.0) for t in tests), 6),
        "output_format": "md",
        "output": f"{sum(r['verdict'] == 'correct' for r in auto)} of {len(auto)} auto-graded answers correct{note}.",
        "tests": tests,
    }


def terminal_progress(stream=None):
    """A progress bar on a terminal (None elsewhere); ``stream`` defaults to the current sys.stderr
    (read when called: a default bound at import would keep a stream someone has since closed)."""
    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        return None
    state = {"last": -1}

    def show(i, n):
        pct = int(100 * i / max(n, 1))
        if pct != state["last"] or i == n:
            bar = "#" * (pct // 4)
            stream.write(f"\rgrading {i}/{n} [{bar:<25}] {pct}%")
            if i == n:
                stream.write("\n")
            stream.flush()
            state["last"] = pct

    return show
