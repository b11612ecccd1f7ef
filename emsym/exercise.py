"""Exercise files: schema, safe loading with positions, validation (``emsym validate``).

An exercise is a YAML file (see the README's "Exercise files" section).  It is composed with
PyYAML's safe composer -- no Python object is ever constructed from the file -- and each
value keeps its line and column, so every error reads
``FILE:LINE:COL: key.path: expected ..., got ...`` with a suggestion for a misspelled key.

Expected answers are never typed into an exercise: a part names the *quantity* to compute
(``quantity: {what: parameter, name: mu_1, after: 1}``) and emsym computes it (``solve.py``).
A part may record what the source published (``published``); ``solve`` reports every
disagreement as an erratum.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import EmsymError, ExerciseError, SpecError
from .safeio import load_yaml, read_text
from .spec import PRESETS, Spec, for_data, load_spec, spec_from_dict
from .texsafe import math_problem, math_segments

__all__ = [
    "QUANTITIES",
    "SOURCE_KEYS",
    "Exercise",
    "ExerciseError",
    "Part",
    "fill_notation",
    "load_exercise",
    "notation_problem",
    "notation_slots",
    "validate_path",
]

PART_KINDS = ("numeric", "formula", "derivation", "assignment", "choice", "explain")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

# what: (required keys, optional keys) -- the quantities solve.py knows how to compute
QUANTITIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "loglik": ((), ("after",)),
    "responsibility": (("point", "component"), ("after",)),
    "parameter": (("name",), ("after",)),
    "heavier_component": ((), ("after",)),
    "moves_left_more": ((), ()),
    "variance_increases_more": ((), ()),
    "larger_variance": ((), ("after",)),
    "estep": ((), ("component",)),
    "update": (("param",), ()),
    "stationarity": (("param",), ()),
    "kmeans_vs_gmm": ((), ("field",)),
    "init_dependence": ((), ("seed", "field")),
    "likelihood_never_decreases": ((), ()),
    "mean_moves": ((), ("field",)),
}


@dataclass(frozen=True)
class Part:
    id: str
    kind: str
    prompt: str
    spec: dict  # the part's validated keys (quantity, tolerance, names, options, ...)
    published: Any = None
    published_note: str | None = None
    where: str = ""  # FILE:LINE:COL of the part, for messages


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    source: dict
    model: Spec
    statement: str
    parts: tuple[Part, ...]
    data: tuple | None = None  # tuple of points (floats, or tuples for d > 1)
    labels: tuple | None = None
    init: list | None = None  # per-component dicts, as in an init file
    responsibilities: tuple | None = None
    path: str = ""
    notes: str | None = None
    marks: dict = field(default_factory=dict, compare=False, repr=False)
    randomise: Any = None  # emsym.variants.Randomise: how a variant draws its numbers
    seed: int | None = None  # the variant's seed (None: the exercise as written)

    def part(self, part_id: str) -> Part:
        for p in self.parts:
            if p.id == part_id:
                return p
        close = difflib.get_close_matches(part_id, [p.id for p in self.parts], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ExerciseError([f"{self.path}: no part {part_id!r}{hint} (parts: {', '.join(p.id for p in self.parts)})"])


# -- safe loading with positions -----------------------------------------------------------
def _load_with_marks(text: str, path: str):
    """Python data from YAML, plus {key path tuple: (line, column)}; no object construction."""
    raw, marks = load_yaml(text, path, lambda msg: ExerciseError([msg]))
    if raw is None:
        raise ExerciseError([f"{path}: the file is empty"])
    return raw, marks


# -- the schema ----------------------------------------------------------------------------
class _Check:
    """Collects problems with positions while reading an exercise."""

    def __init__(self, path: str, marks: dict):
        self.path, self.marks = path, marks
        self.problems: list[str] = []

    def at(self, keypath) -> str:
        kp = tuple(keypath)
        while kp and kp not in self.marks:
            kp = kp[:-1]
        line, col = self.marks.get(kp, (1, 1))
        return f"{self.path}:{line}:{col}"

    @staticmethod
    def name(keypath) -> str:
        out = ""
        for k in keypath:
            out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
        return out or "(top)"

    def bad(self, keypath, expected: str, got: Any = dataclasses.MISSING, hint: str = ""):
        received = "" if got is dataclasses.MISSING else f", got {_short(got)}"
        self.problems.append(f"{self.at(keypath)}: {self.name(keypath)}: expected {expected}{received}{hint}")

    def keys(self, mapping: dict, keypath, required, optional) -> bool:
        ok = True
        allowed = tuple(required) + tuple(optional)
        for k in mapping:
            if k not in allowed:
                close = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f" (allowed: {', '.join(allowed)})"
                self.problems.append(
                    f"{self.at(tuple(keypath) + (k,))}: {self.name(tuple(keypath) + (k,))}: unknown key{hint}"
                )
                ok = False
        for k in required:
            if k not in mapping:
                self.problems.append(f"{self.at(keypath)}: {self.name(keypath)}: missing required key {k!r}")
                ok = False
        return ok


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _text(c: _Check, d: dict, key, kp, required=True):
    v = d.get(key)
    if v is None:
        if required:
            c.bad(kp + (key,), "text")
        return None
    if not isinstance(v, str):
        c.bad(kp + (key,), "text", v)
        return None
    return v


_TOP_REQUIRED = ("id", "title", "model", "parts")  # `source` is optional: an instructor's own exercise
_TOP_OPTIONAL = ("source", "statement", "data", "labels", "init", "responsibilities", "notes", "randomise")
SOURCE_KEYS = ("course", "institution", "author", "year", "seed", "question", "url")
_PART_COMMON = ("id", "kind", "prompt", "published", "published_note", "marks")
_PART_KEYS = {
    "formula": (("quantity", "names"), ("points", "notation", "where", "tolerance", "indices", "uses", "credit")),
    "numeric": (("quantity",), ("tolerance", "permutable", "uses", "credit")),
    "derivation": (("param",), ()),
    "assignment": ((), ("quantity",)),
    "choice": (("options",), ("check", "multiple")),
    "explain": (("model_answer",), ("check",)),
}


# Notation: 'gamma[n,k]': 'gamma_{n}{k}' -- a name made of letters, digits and '_', with the
# key's index names in braces where the index values go.  A fixed grammar, filled by plain
# substitution (never str.format, which would evaluate attribute lookups and format specs).
_NOTATION_KEY = re.compile(r"([A-Za-z][A-Za-z0-9]*)(?:\[([a-z](?:\s*,\s*[a-z])*)\])?", re.ASCII)
_NOTATION_TEMPLATE = re.compile(r"(?:[A-Za-z0-9_]|\{[a-z]\})+", re.ASCII)
_SLOT = re.compile(r"\{([a-z])\}", re.ASCII)


def notation_slots(key: str) -> tuple[str, list[str]] | None:
    """('gamma', ['n', 'k']) from 'gamma[n,k]'; None when the key does not fit the grammar."""
    m = _NOTATION_KEY.fullmatch(key.strip())
    if not m:
        return None
    return m.group(1), [i.strip() for i in m.group(2).split(",")] if m.group(2) else []


def notation_problem(key: str, template: str) -> str | None:
    """What is wrong with one notation entry, or None."""
    slots = notation_slots(key)
    if slots is None:
        return f"a key such as 'gamma[n,k]' or 'mu[k]' (got key {key!r}) mapped to a name"
    if len(template) > 40 or not _NOTATION_TEMPLATE.fullmatch(template) or not template[0].isalpha():
        return (
            "a name of letters, digits and '_' with index names in braces, e.g. 'gamma_{n}{k}' (at most 40 characters)"
        )
    unknown = sorted(set(_SLOT.findall(template)) - set(slots[1]))
    if unknown:
        return f"only the key's indices ({', '.join(slots[1]) or 'none'}) in braces, not {', '.join(unknown)}"
    return None


def fill_notation(template: str, values: dict[str, str]) -> str:
    """The template with each {i} replaced by values[i] (templates are checked by notation_problem)."""
    return _SLOT.sub(lambda m: values.get(m.group(1), m.group(1)), template)


def _quantity(c: _Check, q, kp) -> dict | None:
    if not isinstance(q, dict) or "what" not in q:
        c.bad(kp, f"a mapping with 'what' (one of {', '.join(QUANTITIES)})", q)
        return None
    what = q["what"]
    if what not in QUANTITIES:
        close = difflib.get_close_matches(str(what), QUANTITIES, n=1)
        c.bad(kp + ("what",), f"one of {', '.join(QUANTITIES)}", what, f"; did you mean {close[0]!r}?" if close else "")
        return None
    required, optional = QUANTITIES[what]
    if not c.keys(q, kp, ("what",) + required, optional):
        return None
    after = q.get("after", "init" if what in ("loglik", "responsibility", "heavier_component") else 1)
    if not (after in ("init", "converged") or (isinstance(after, int) and not isinstance(after, bool) and after >= 0)):
        c.bad(kp + ("after",), "init, converged or a number of iterations >= 0", after)
        return None
    for key in ("point", "component"):
        if key in q and not (
            (isinstance(q[key], int) and not isinstance(q[key], bool) and q[key] >= 1)
            or (key == "component" and q[key] == "k")
        ):
            c.bad(kp + (key,), "a whole number >= 1" + (" or k" if key == "component" else ""), q[key])
            return None
    return dict(q, after=after)


def _read_part(c: _Check, raw, kp, seen: set) -> Part | None:
    if not isinstance(raw, dict):
        c.bad(kp, "a mapping with id, kind, prompt, ...", raw)
        return None
    kind = raw.get("kind")
    if kind not in PART_KINDS:
        close = difflib.get_close_matches(str(kind), PART_KINDS, n=1)
        c.bad(kp + ("kind",), f"one of {', '.join(PART_KINDS)}", kind, f"; did you mean {close[0]!r}?" if close else "")
        return None
    required, optional = _PART_KEYS[kind]
    if not c.keys(
        raw,
        kp,
        ("id", "kind", "prompt") + required,
        tuple(k for k in _PART_COMMON if k not in ("id", "kind", "prompt")) + optional,
    ):
        return None
    pid = raw["id"]
    if not isinstance(pid, str) or not _ID.match(pid):
        c.bad(kp + ("id",), "a short id of lower-case letters, digits, '.', '-' or '_'", pid)
        return None
    if pid in seen:
        c.bad(kp + ("id",), "an id not used by another part", pid)
        return None
    seen.add(pid)
    prompt = _text(c, raw, "prompt", kp)
    spec = {k: v for k, v in raw.items() if k not in _PART_COMMON}
    marks = raw.get("marks", 1)
    if not (_is_num(marks) and 0 < marks <= 1000):
        c.bad(kp + ("marks",), "the part's weight in a score: a number > 0 (at most 1000; default 1)", marks)
    spec["marks"] = marks
    before = len(c.problems)
    if "quantity" in raw:
        q = _quantity(c, raw["quantity"], kp + ("quantity",))
        spec["quantity"] = q
    if kind == "assignment" and "quantity" not in raw:
        spec["quantity"] = {"what": "heavier_component", "after": "init"}
    if "tolerance" in raw:
        from .grading import GraderError, parse_tolerance

        try:
            parse_tolerance(raw["tolerance"])
        except GraderError as exc:
            c.bad(kp + ("tolerance",), "a tolerance such as 0.05, '1%', 'nearest tenth'", raw["tolerance"], f" ({exc})")
    if "uses" in raw:
        uses = raw["uses"]
        if not isinstance(uses, list) or not uses or not all(isinstance(u, str) and _ID.match(u) for u in uses):
            c.bad(kp + ("uses",), "a list of the ids of earlier parts this part builds on", uses)
    if "credit" in raw:
        cr = raw["credit"]
        if isinstance(cr, bool) or not isinstance(cr, (int, float)) or not 0 <= cr <= 1:
            c.bad(
                kp + ("credit",), "the share of the marks for an answer right from a wrong earlier answer, 0 to 1", cr
            )
        elif "uses" not in raw:
            c.bad(kp + ("credit",), "a part with 'uses' (credit is for answers that follow from earlier parts)", cr)
    if kind == "formula" and "indices" in raw:
        ind = raw["indices"]
        if (
            not isinstance(ind, dict)
            or not ind
            or not all(
                isinstance(k, str) and len(k) == 1 and k.isalpha() and isinstance(v, str) and v.isidentifier()
                for k, v in ind.items()
            )
        ):
            c.bad(kp + ("indices",), "a mapping of index letters to sizes, e.g. {n: N, k: K}", ind)
    if kind == "formula":
        names = raw.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            c.bad(kp + ("names",), "a list of the names the student may use", names)
        where = raw.get("where", [])
        if not isinstance(where, list) or not all(isinstance(w, str) and w.count("=") == 1 for w in where):
            c.bad(kp + ("where",), "a list of side conditions 'LHS = RHS'", where)
        notation = raw.get("notation", {})
        if not isinstance(notation, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in notation.items()
        ):
            c.bad(kp + ("notation",), "a mapping such as {'gamma[n,k]': 'gamma_k{n}'}", notation)
        else:
            for key, template in notation.items():
                problem = notation_problem(key, template)
                if problem:
                    c.bad(kp + ("notation", key), problem, template)
        pts = raw.get("points")
        if pts is not None and not (isinstance(pts, int) and not isinstance(pts, bool) and 1 <= pts <= 20):
            c.bad(kp + ("points",), "a number of points from 1 to 20", pts)
    if kind == "choice":
        opts = raw.get("options")
        if not isinstance(opts, list) or len(opts) < 2:
            c.bad(kp + ("options",), "a list of at least two options", opts)
        else:
            for i, o in enumerate(opts):
                okp = kp + ("options", i)
                if not isinstance(o, dict):
                    c.bad(okp, "a mapping with text, correct, explanation", o)
                    continue
                c.keys(o, okp, ("text", "correct"), ("explanation", "computed"))
                if "correct" in o and not isinstance(o["correct"], bool):
                    c.bad(okp + ("correct",), "true or false", o["correct"])
            if all(isinstance(o, dict) for o in opts) and not any(o.get("correct") for o in opts):
                c.bad(kp + ("options",), "at least one option marked correct: true")
        if "check" in raw:
            spec["check"] = _quantity(c, raw["check"], kp + ("check",))
    if kind == "explain":
        _text(c, raw, "model_answer", kp)
        if "check" in raw:
            spec["check"] = _quantity(c, raw["check"], kp + ("check",))
    if kind == "derivation" and not isinstance(raw.get("param"), str):
        c.bad(kp + ("param",), "the name of a parameter, e.g. mu_k", raw.get("param"))
    if len(c.problems) != before or prompt is None:
        return None
    note = raw.get("published_note")
    if note is not None and not isinstance(note, str):
        c.bad(kp + ("published_note",), "text", note)
        return None
    return Part(pid, kind, prompt, spec, raw.get("published"), note, c.at(kp))


def _points(c: _Check, data, kp, base: Path, allow_outside: bool = False):
    if isinstance(data, dict):
        if not c.keys(data, kp, ("csv",), ()):
            return None, None
        from .data import load_data
        from .exceptions import DataError

        f = _inside(c, base, data["csv"], kp + ("csv",), allow_outside)
        if f is None:
            return None, None
        try:
            ds = load_data(f)
        except DataError as exc:
            c.problems.append(f"{c.at(kp + ('csv',))}: data.csv: {exc}")
            return None, None
        pts = tuple(float(r[0]) if ds.X.shape[1] == 1 else tuple(map(float, r)) for r in ds.X)
        labels = tuple(int(v) for v in ds.labels) if ds.labels is not None else None
        return pts, labels
    if not isinstance(data, list) or not data:
        c.bad(kp, "a list of points (numbers, or lists for d > 1) or {csv: FILE}", data)
        return None, None
    if all(_is_num(v) for v in data):
        return tuple(float(v) for v in data), None
    if all(isinstance(v, list) and v and all(_is_num(e) for e in v) for v in data):
        dims = {len(v) for v in data}
        if len(dims) != 1:
            c.bad(kp, "points of one dimension", f"dimensions {sorted(dims)}")
            return None, None
        return tuple(tuple(float(e) for e in v) for v in data), None
    bad = next(i for i, v in enumerate(data) if not _is_num(v))
    c.bad(kp + (bad,), "a finite number (or a list of numbers for every point)", data[bad])
    return None, None


def _check_math(c: _Check, value: Any, kp: tuple) -> None:
    """Every $...$ in author text uses allowed LaTeX commands only (``texsafe``)."""
    if isinstance(value, str):
        for tex in math_segments(value):
            problem = math_problem(tex)
            if problem:
                c.bad(kp, f"math with allowed LaTeX commands only: {problem}", f"${tex}$")
                return
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_math(c, v, kp + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_math(c, v, kp + (i,))


def _inside(c: _Check, base: Path, name: Any, kp: tuple, allow_outside: bool) -> Path | None:
    """The file ``name`` relative to the exercise's folder; outside that folder only when allowed."""
    if not isinstance(name, str) or not name or "\x00" in name:
        c.bad(kp, "a file name relative to the exercise's folder", name)
        return None
    f = base / name
    if allow_outside:
        return f
    try:
        inside = f.resolve().is_relative_to(base.resolve())
    except (OSError, RuntimeError):  # a link loop
        inside = False
    if Path(name).is_absolute() or not inside:
        c.bad(kp, "a file inside the exercise's folder (an exercise may not read files elsewhere)", name)
        return None
    return f


def _build(raw: Any, path: str, marks: dict, allow_outside: bool = False) -> Exercise:
    c = _Check(path, marks)
    if not isinstance(raw, dict):
        raise ExerciseError([f"{path}:1:1: expected a mapping with {', '.join(_TOP_REQUIRED)}"])
    c.keys(raw, (), _TOP_REQUIRED, _TOP_OPTIONAL)
    _check_math(c, raw, ())
    ex_id = raw.get("id")
    if ex_id is not None and (not isinstance(ex_id, str) or not _ID.match(ex_id)):
        c.bad(("id",), "a short id of lower-case letters, digits, '.', '-' or '_'", ex_id)
    _text(c, raw, "title", ())
    source = raw.get("source")
    if source is not None:
        if not isinstance(source, dict):
            c.bad(("source",), "a mapping (course, institution or author, year, seed)", source)
        else:
            c.keys(source, ("source",), (), SOURCE_KEYS)
    base = Path(path).parent
    model = None
    if "model" in raw:
        m = raw["model"]
        try:
            if isinstance(m, dict):
                model = spec_from_dict(m, where=c.at(("model",)) + ": model")
            elif isinstance(m, str):
                if m in PRESETS:
                    model = load_spec(m)
                else:
                    candidate = _inside(c, base, m, ("model",), allow_outside)
                    if candidate is not None:
                        model = load_spec(str(candidate) if candidate.is_file() else m)
            else:
                c.bad(("model",), "a preset name, a model file or an inline model mapping", m)
        except SpecError as exc:
            c.problems.append(f"{c.at(('model',))}: model: {exc}")
    data = labels = None
    if "data" in raw:
        data, labels = _points(c, raw["data"], ("data",), base, allow_outside)
    if "labels" in raw:
        lab = raw["labels"]
        if not isinstance(lab, list) or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in lab
        ):
            c.bad(("labels",), "a list of component numbers (or null for unknown), one per point", lab)
        else:
            labels = tuple(0 if v is None else v for v in lab)
    dim = 1 if not data or not isinstance(data[0], tuple) else len(data[0])
    if model is not None and data is not None:
        try:
            model = for_data(model, dim, c.at(("model",)) + ": model")  # a general d is the data's
        except SpecError as exc:
            c.problems.append(f"{c.at(('model',))}: model: {exc}")
            model = None
    if model is not None and data is not None:
        if model.concrete and dim != model.dim:
            c.bad(("data",), f"points of dimension {model.dim} (the model's dim)", f"dimension {dim}")
        if labels is not None:
            if len(labels) != len(data):
                c.bad(("labels",), f"{len(data)} labels (one per point)", f"{len(labels)}")
            elif model.concrete and any(v < 0 or v > model.components for v in labels):
                c.bad(("labels",), f"component numbers 1..{model.components} or null", labels)
    init = None
    if "init" in raw:
        from .data import parse_family_init, parse_init_components
        from .exceptions import DataError

        try:
            dim = int(model.dim) if model is not None and model.concrete else 1
            where = c.at(("init",)) + ": init"
            fields = model.init_fields if model is not None else None
            if fields is not None:
                init = parse_family_init({"components": raw["init"]}, fields, where)
            else:
                init = parse_init_components({"components": raw["init"]}, dim, where=where)
            if model is not None and model.concrete and len(init) != model.components:
                c.bad(("init",), f"{model.components} components (the model's)", f"{len(init)}")
        except DataError as exc:
            c.problems.append(str(exc))
    resp = None
    if "responsibilities" in raw:
        r = raw["responsibilities"]
        ok = (
            isinstance(r, list)
            and r
            and all(isinstance(row, list) and all(_is_num(v) and 0 <= v <= 1 for v in row) for row in r)
        )
        if not ok:
            c.bad(
                ("responsibilities",),
                "a list of rows of probabilities (one row per point, one column per component)",
                r,
            )
        else:
            for i, row in enumerate(r):
                if abs(sum(row) - 1) > 1e-6:
                    c.bad(("responsibilities", i), "a row that sums to 1", row)
            if model is not None and model.concrete and any(len(row) != model.components for row in r):
                c.bad(("responsibilities",), f"{model.components} columns (one per component)", r[0])
            if data is not None and len(r) != len(data):
                c.bad(("responsibilities",), f"{len(data)} rows (one per point)", f"{len(r)} rows")
            resp = tuple(tuple(float(v) for v in row) for row in r)
    parts = []
    raw_parts = raw.get("parts")
    if raw_parts is not None:
        if not isinstance(raw_parts, list) or not raw_parts:
            c.bad(("parts",), "a non-empty list of parts", raw_parts)
        else:
            seen: set = set()
            for i, rp in enumerate(raw_parts):
                part = _read_part(c, rp, ("parts", i), seen)
                if part is not None:
                    parts.append(part)
    statement = raw.get("statement", "")
    if not isinstance(statement, str):
        c.bad(("statement",), "text", statement)
    randomise = None
    if "randomise" in raw:
        from .randomise import parse_randomise

        K = int(model.components) if model is not None and model.concrete else None
        randomise = parse_randomise(raw["randomise"], lambda kp, what, got: c.bad(("randomise", *kp), what, got), K)
        if resp is not None:
            c.bad(("randomise",), "no randomise with given responsibilities (a variant draws its points)", "randomise")
        if model is not None and not model.concrete:
            c.bad(("randomise",), "a model with a whole number of components and dimension", "randomise")
    if c.problems:
        raise ExerciseError(c.problems)
    assert isinstance(ex_id, str) and model is not None  # required keys, checked above
    ex = Exercise(
        ex_id,
        raw["title"],
        dict(source or {}),
        model,
        statement,
        tuple(parts),
        data,
        labels,
        init,
        resp,
        path,
        raw.get("notes"),
        marks,
        randomise,
    )
    _check_parts_against_model(ex, c)
    if c.problems:
        raise ExerciseError(c.problems)
    return ex


def _check_parts_against_model(ex: Exercise, c: _Check) -> None:
    """What needs the model: parameter names exist, data is there when a number needs it."""
    from .cache import get_derivation

    spec = ex.model
    names = set()
    general = spec.general()
    try:
        names |= {p.name for p in get_derivation(spec).model.params}
        if general is not None:
            names |= {p.name for p in get_derivation(general).model.params}
    except EmsymError as exc:  # pragma: no cover - a spec that validates derives
        c.problems.append(f"{c.at(('model',))}: model: {exc}")
        return
    view = spec.view_names()
    earlier: list[str] = []
    for i, part in enumerate(ex.parts):
        kp = ("parts", i)
        for used in part.spec.get("uses", []):
            if used not in earlier:
                c.bad(kp + ("uses",), f"ids of earlier parts ({', '.join(earlier) or 'none before this one'})", used)
        earlier.append(part.id)
        q = part.spec.get("quantity") or part.spec.get("check")
        what = q["what"] if q else None
        needs_data = what is not None and what not in ("estep", "update", "stationarity")
        if needs_data and ex.data is None:
            c.bad(kp + ("quantity",), "an exercise with data (this quantity is computed from data)", what)
        if needs_data and not spec.concrete:
            c.bad(kp + ("quantity",), "a model with a whole number of components and dimension", what)
        if q and q["what"] == "parameter" and q["name"] not in names | view:
            close = difflib.get_close_matches(q["name"], sorted(names | view), n=1)
            c.bad(
                kp + ("quantity", "name"),
                f"a parameter of the model ({', '.join(sorted(names | view))})",
                q["name"],
                f"; did you mean {close[0]!r}?" if close else "",
            )
        if q and q["what"] in ("update", "stationarity") and q["param"] not in names:
            c.bad(kp + ("quantity", "param"), f"a free parameter of the model ({', '.join(sorted(names))})", q["param"])
        if part.kind == "derivation" and part.spec["param"] not in names:
            c.bad(kp + ("param",), f"a free parameter of the model ({', '.join(sorted(names))})", part.spec["param"])
        if (
            q
            and q["what"] == "responsibility"
            and ex.data is not None
            and (
                q["point"] > len(ex.data)
                or (spec.concrete and q["component"] != "k" and q["component"] > spec.components)
            )
        ):
            c.bad(kp + ("quantity",), f"point 1..{len(ex.data)} and component 1..{spec.components}", q)
        if (
            needs_data
            and ex.init is None
            and ex.responsibilities is None
            and what in ("loglik", "responsibility", "heavier_component")
        ):
            c.bad(kp + ("quantity",), "an exercise with init (initial parameters) for this quantity", what)


def load_exercise(path: str | os.PathLike, allow_outside: bool = False) -> Exercise:
    """Read and validate one exercise file; raise ``ExerciseError`` listing every problem.

    The data CSV and model file an exercise names must lie in its folder (or below it), so a
    shared exercise cannot show lines of ``/etc/passwd`` in an error; ``allow_outside=True``
    lifts that for files you trust.
    """
    path = str(path)
    text = read_text(path, "exercise file", lambda msg: ExerciseError([msg]))
    raw, marks = _load_with_marks(text, path)
    return _build(raw, path, marks, allow_outside)


def exercise_files(path: str | os.PathLike) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*.y*ml") if f.suffix in (".yaml", ".yml") and not f.name.startswith("_"))
    if not p.exists():
        raise ExerciseError([f"{p}: no such file or folder"])
    return [p]


def validate_path(path: str | os.PathLike) -> tuple[list[Exercise], list[str]]:
    """Every exercise under PATH that validates, and the problems of the others."""
    good, problems = [], []
    for f in exercise_files(path):
        try:
            good.append(load_exercise(f))
        except ExerciseError as exc:
            problems.extend(exc.problems)
    return good, problems
