"""The practice app's records: one SQLite file, created on first start, schema versioned.

Tables (schema version 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)             -- schema_version
    attempts(id INTEGER PRIMARY KEY, student TEXT, exercise TEXT, part TEXT, seed INTEGER,
             answer TEXT, verdict TEXT, score REAL, mistake TEXT, feedback TEXT, created REAL)
    rounds(student TEXT, exercise TEXT, round INTEGER)  -- how many times a student asked for new numbers

Every write is one transaction (``with connection``), the file is in WAL mode with a busy
timeout, and each call opens its own connection, so concurrent submissions from the server's
threads queue rather than clash, and a kill mid-write leaves the last committed state (SQLite's
journal).  A file written by a newer emsym (a higher schema version) is refused, not altered.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

from .exceptions import EmsymError

__all__ = ["SCHEMA_VERSION", "Store"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    student TEXT NOT NULL,
    exercise TEXT NOT NULL,
    part TEXT NOT NULL,
    seed INTEGER,
    answer TEXT NOT NULL,
    verdict TEXT NOT NULL,
    score REAL NOT NULL,
    mistake TEXT,
    feedback TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_student ON attempts (student, exercise, part);
CREATE INDEX IF NOT EXISTS attempts_by_part ON attempts (exercise, part);
CREATE TABLE IF NOT EXISTS rounds (
    student TEXT NOT NULL,
    exercise TEXT NOT NULL,
    round INTEGER NOT NULL,
    PRIMARY KEY (student, exercise)
);
"""
COLUMNS = ("id", "student", "exercise", "part", "seed", "answer", "verdict", "score", "mistake", "feedback", "created")


class Store:
    """Attempts of students on exercise parts (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()  # one connection per thread, kept open
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if row is None:
                    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) > SCHEMA_VERSION:
                    raise EmsymError(
                        f"{self.path}: the practice database has schema version {row[0]}, newer than this "
                        f"emsym's {SCHEMA_VERSION}; use a newer emsym or another --db file"
                    )
        except sqlite3.DatabaseError as exc:
            raise EmsymError(f"{self.path}: cannot open the practice database: {exc}") from None

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (opened once: opening and closing cost more than a write)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: a committed attempt survives a killed process
        db.execute("PRAGMA busy_timeout=30000")
        return db

    def record(
        self,
        student: str,
        exercise: str,
        part: str,
        seed: int | None,
        answer: str,
        verdict: str,
        score: float,
        mistake: str | None,
        feedback: str,
    ) -> int:
        """Store one attempt (one transaction); its id."""
        db = self._connection()
        with db:
            cur = db.execute(
                "INSERT INTO attempts (student, exercise, part, seed, answer, verdict, score, mistake, feedback, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (student, exercise, part, seed, answer, verdict, float(score), mistake, feedback, time.time()),
            )
            return int(cur.lastrowid or 0)

    def round(self, student: str, exercise: str) -> int:
        """How many times the student asked for new numbers in this exercise (0: their first variant)."""
        row = (
            self._connection()
            .execute("SELECT round FROM rounds WHERE student = ? AND exercise = ?", (student, exercise))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def next_round(self, student: str, exercise: str) -> int:
        """Move the student to fresh numbers (one transaction); the new round."""
        db = self._connection()
        with db:
            db.execute(
                "INSERT INTO rounds VALUES (?, ?, 1) ON CONFLICT (student, exercise) DO UPDATE SET round = round + 1",
                (student, exercise),
            )
        return self.round(student, exercise)

    def attempts(self, student: str | None = None, exercise: str | None = None) -> list[dict]:
        """Attempts, oldest first, optionally of one student and/or one exercise."""
        where, args = [], []
        if student is not None:
            where.append("student = ?")
            args.append(student)
        if exercise is not None:
            where.append("exercise = ?")
            args.append(exercise)
        sql = f"SELECT {', '.join(COLUMNS)} FROM attempts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._connection().execute(sql + " ORDER BY id", args).fetchall()
        return [dict(zip(COLUMNS, r)) for r in rows]

    def latest_answers(self, student: str, exercise: str) -> dict[str, str]:
        """A student's latest answer to each part of an exercise (follow-through reads them)."""
        out: dict[str, str] = {}
        for a in self.attempts(student, exercise):
            out[a["part"]] = a["answer"]
        return out

    def summary(self) -> list[dict]:
        """Per exercise and part: attempts, students, correct share, the most frequent named mistakes."""
        groups: dict[tuple[str, str], list[dict]] = {}
        for a in self.attempts():
            groups.setdefault((a["exercise"], a["part"]), []).append(a)
        out = []
        for (ex, part), rows in sorted(groups.items()):
            mistakes = Counter(r["mistake"] for r in rows if r["mistake"])
            out.append(
                {
                    "exercise": ex,
                    "part": part,
                    "attempts": len(rows),
                    "students": len({r["student"] for r in rows}),
                    "correct": sum(r["verdict"] == "correct" for r in rows),
                    "mistakes": mistakes.most_common(3),
                }
            )
        return out

    def csv(self) -> str:
        """Every attempt as CSV (cells that a spreadsheet would read as a formula are quoted as text)."""
        from .grading.parts import spreadsheet_safe

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(COLUMNS)
        for a in self.attempts():
            w.writerow([spreadsheet_safe(a[c]) if isinstance(a[c], str) else a[c] for c in COLUMNS])
        return buf.getvalue()
