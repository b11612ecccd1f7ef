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
import sys
from pathlib import Path

from ..exceptions import EmsymError
from .grader import Verdict
from .parser import DIGITS

__all__ = ["ExerciseGraders", "grade_submissions"]


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
                    return Verdict("correct", 1.0, "Correct, up to the numbering of the components "
                                   "(the question allows any order).", v.reading)
                return Verdict("incorrect", 0.0, "Incorrect: that is the value for another component; check "
                               "which component the question asks about.", v.reading, "labels-swapped")
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
            return Verdict("invalid", 0.0, "Could not read the answer: give one component number per point, "
                           "e.g. 2, 2, 1.")
        if not all(_small_int(t) for t in tokens):
            bad = next(t for t in tokens if not _small_int(t))
            return Verdict("invalid", 0.0, f"Could not read the answer: {bad[:20]!r} is not a component number.")
        got = [int(t) for t in tokens]
        if len(got) != len(self.want):
            return Verdict("invalid", 0.0, f"Could not read the answer: {len(self.want)} numbers expected (one per "
                           f"point), got {len(got)}.")
        right = sum(a == b for a, b in zip(got, self.want))
        if right == len(got):
            return Verdict("correct", 1.0, "Correct.")
        wrong = [str(i + 1) for i, (a, b) in enumerate(zip(got, self.want)) if a != b]
        return Verdict("incorrect", right / len(got), f"Incorrect: {right} of {len(got)} right; look again at "
                       f"point(s) {', '.join(wrong)}.")


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
                return Verdict("invalid", 0.0, f"Could not read the answer: {t[:20]!r} is not an option "
                               f"(a-{chr(96 + n)}).")
        if not chosen:
            return Verdict("invalid", 0.0, "Could not read the answer: give the letter(s) of the option(s).")
        if chosen == self.want:
            return Verdict("correct", 1.0, "Correct.")
        notes = [f"({chr(96 + c)}) {self.options[c - 1].get('explanation', 'is not right')}"
                 for c in sorted(chosen - self.want)]
        missing = sorted(self.want - chosen)
        msg = "Incorrect." + (" " + " ".join(notes) if notes else "")
        if missing:
            msg += f" Missing: {', '.join('(' + chr(96 + c) + ')' for c in missing)}."
        return Verdict("incorrect", 0.0, msg)


class ExerciseGraders:
    """Graders for every part of the exercises under a path (a file or a folder)."""

    def __init__(self, path):
        from ..exercise import exercise_files, load_exercise, ExerciseError
        from ..solve import solve

        self.graders: dict[tuple[str, str], object] = {}
        self.problems: list[str] = []
        self.exercises: dict[str, list[str]] = {}
        for f in exercise_files(path):
            try:
                sol = solve(load_exercise(f))
            except ExerciseError as exc:
                self.problems.extend(exc.problems)
                continue
            self.exercises[sol.exercise.id] = [r.part.id for r in sol.parts]
            for r in sol.parts:
                kind = r.part.kind
                if kind == "formula":
                    g = r.grader
                elif kind == "numeric" and r.grader is not None:
                    g = _NumericPart(r)
                elif kind == "assignment":
                    g = _AssignmentPart(r)
                elif kind == "choice":
                    g = _ChoicePart(r)
                else:
                    g = kind
                self.graders[(sol.exercise.id, r.part.id)] = g

    def lookup(self, exercise: str, part: str):
        """The grader, or an error message naming what is unknown."""
        if exercise not in self.exercises:
            close = difflib.get_close_matches(exercise, list(self.exercises), n=1)
            return None, f"no exercise {exercise!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        if (exercise, part) not in self.graders:
            close = difflib.get_close_matches(part, self.exercises[exercise], n=1)
            return None, f"exercise {exercise!r} has no part {part!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        return self.graders[(exercise, part)], None

    def grade(self, exercise: str, part: str, answer: str) -> Verdict:
        g, err = self.lookup(exercise, part)
        if g is None:
            return Verdict("invalid", 0.0, f"Not graded: {err}.")
        if isinstance(g, str):
            return _not_graded(g)
        return g.grade(answer)


# -- batches ----------------------------------------------------------------------------------
_COLUMNS = ("student", "exercise", "part", "answer")


def _read_rows(path):
    """(row number, fields dict or None, problem) for every data row; never drops a row."""
    raw = Path(path).read_bytes().decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(raw, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise EmsymError(f"{path}: the submissions file is empty; expected a header student,exercise,part,answer") from None
    except csv.Error as exc:
        raise EmsymError(f"{path}: line 1: {exc}") from None
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise EmsymError(f"{path}: line 1 should name the columns {', '.join(_COLUMNS)}; missing {', '.join(missing)}")
    idx = {c: header.index(c) for c in _COLUMNS}
    row_no = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row_no += 1
            yield row_no, None, f"row {row_no}: the CSV is malformed here ({exc})"
            continue
        row_no += 1
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) < len(header):
            yield row_no, {c: (fields[idx[c]] if idx[c] < len(fields) else "") for c in _COLUMNS}, \
                f"row {row_no}: expected {len(header)} fields ({', '.join(header)}), got {len(fields)}"
            continue
        yield row_no, {c: fields[idx[c]] for c in _COLUMNS}, None


def _key(row_no, fields) -> str:
    return hashlib.sha256(json.dumps([row_no, fields], sort_keys=True).encode()).hexdigest()[:16]


def grade_submissions(graders: ExerciseGraders, submissions, out=None, fmt: str = "csv", progress=None) -> dict:
    """Grade every row of a submissions CSV; write ``out`` (or return the text) in csv, json or gradescope."""
    from ..render import write_atomic

    rows = list(_read_rows(submissions))
    journal_path = Path(str(out) + ".partial.jsonl") if out else None
    done: dict[str, dict] = {}
    if journal_path is not None and journal_path.exists():
        for line in journal_path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                done[rec["key"]] = rec["result"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by an interruption: that row is graded again
    results = []
    journal = open(journal_path, "a", encoding="utf-8") if journal_path is not None else None
    resumed = 0
    try:
        for i, (row_no, fields, problem) in enumerate(rows, 1):
            key = _key(row_no, fields)
            if key in done:
                res = done[key]
                resumed += 1
            else:
                base = {c: (fields or {}).get(c, "") for c in ("student", "exercise", "part")}
                if problem is not None:
                    v = Verdict("invalid", 0.0, f"Not graded: {problem}.")
                else:
                    v = graders.grade(fields["exercise"].strip(), fields["part"].strip(), fields["answer"])
                res = {"row": row_no, **base, **v.to_dict()}
                if journal is not None:
                    journal.write(json.dumps({"key": key, "result": res}) + "\n")
                    journal.flush()
            results.append(res)
            if progress is not None:
                progress(i, len(rows))
    finally:
        if journal is not None:
            journal.close()
    text = _format(results, fmt)
    if out is not None:
        if fmt == "gradescope" and isinstance(text, dict):
            for student, doc in text.items():
                write_atomic(Path(out) / _safe_name(student) / "results.json", doc)
        else:
            write_atomic(Path(out), text)
        if journal_path is not None:
            journal_path.unlink(missing_ok=True)
    return {"rows": len(results), "resumed": resumed, "text": text}


def _safe_name(student: str) -> str:
    """A folder name from a student id: never a path ('../x' or '/etc' stay inside the output folder)."""
    name = re.sub(r"[^A-Za-z0-9._@-]", "_", student)[:100].lstrip(".")
    return name or "_"


def _format(results: list[dict], fmt: str):
    if fmt == "json":
        return json.dumps(results, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["row", "student", "exercise", "part", "verdict", "score", "feedback"])
        for r in results:
            w.writerow([r["row"], r["student"], r["exercise"], r["part"], r["verdict"], r["score"], r["feedback"]])
        return buf.getvalue()
    if fmt == "gradescope":
        by_student: dict[str, list] = {}
        for r in results:
            by_student.setdefault(r["student"] or "(no student)", []).append(r)
        docs = {s: json.dumps(_gradescope(rs), indent=1) for s, rs in by_student.items()}
        return docs[next(iter(docs))] if len(docs) == 1 else docs
    raise ValueError(fmt)


def _gradescope(rows: list[dict]) -> dict:
    """Gradescope's results.json for one submission: one test per answered part."""
    tests = [{"name": f"{r['exercise']} / {r['part']}", "score": r["score"], "max_score": 1.0,
              "status": "passed" if r["verdict"] == "correct" else "failed",
              "output": f"**{r['verdict']}**: {r['feedback']}", "output_format": "md"} for r in rows]
    return {"score": sum(t["score"] for t in tests), "output_format": "md",
            "output": f"{sum(r['verdict'] == 'correct' for r in rows)} of {len(rows)} answers correct.",
            "tests": tests}


def terminal_progress(stream=sys.stderr):
    """A progress bar on a terminal (None elsewhere)."""
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
