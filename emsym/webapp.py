"""The practice web app (``emsym serve``): exercises in a browser, graded as typed, recorded in SQLite.

One Starlette application, server-rendered with the sheets' jinja2 templates (``templates/app``),
served by uvicorn on 127.0.0.1; nothing is loaded from the network (MathML is rendered by the
browser, figures are PNGs from this server, the page's small script is inline).

A student gives a name (kept in a cookie; it is an identity for practice, not a password) and
gets their own variant of every randomised exercise (``emsym.variants.student_seed``): the same
numbers on every visit, which a TA reproduces with ``emsym solve EX --seed S``.  Each answer is
graded by the exercise's own graders for that variant -- the named mistakes, follow-through from
the student's latest earlier answers -- recorded as an attempt, and answered with the verdict,
the feedback and, once right or on request, the part's worked solution.  While typing, the
preview shows how the formula is read (MathML).  The instructor page lists attempts per part
with the most frequent named mistakes, and exports every attempt as CSV.

Requests: ``GET /`` (index), ``POST /login``, ``GET /logout``, ``GET /ex/{id}``,
``GET /ex/{id}/figure/{name}.png``, ``POST /api/preview``, ``POST /api/grade`` (JSON
``{"exercise", "part", "answer"}``), ``GET /api/solution/{id}/{part}``, ``GET /instructor``,
``GET /instructor/attempts.csv``.  A malformed or unknown request gets a 4xx with a message; an
answer is bounded like every typed answer; errors never show a traceback.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .exceptions import EmsymError

__all__ = ["Practice", "create_app", "serve"]

MAX_BODY = 16_384  # bytes of one request body
MAX_NAME = 64
CACHE = 64  # solved variants kept in memory
COOKIE = "emsym_student"


class RequestError(Exception):
    """A client mistake: the status and a message for the page or the JSON reply."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _valid_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise RequestError(400, f"a name of 1 to {MAX_NAME} printable characters, please")
    return name


class Practice:
    """The exercises of a folder, their variants, graders and the attempts store."""

    def __init__(self, path: str | Path, db: str | Path):
        from .exercise import ExerciseError, exercise_files, load_exercise
        from .practice_store import Store

        self.exercises: dict = {}
        self.problems: list[str] = []
        for f in exercise_files(path):
            try:
                ex = load_exercise(f)
            except ExerciseError as exc:
                self.problems.extend(exc.problems)
                continue
            self.exercises[ex.id] = ex
        self.store = Store(db)
        self._cache: OrderedDict = OrderedDict()
        self._shared_html: dict = {}
        self._lock = threading.Lock()
        # Solving and grading run one at a time: they are CPU-bound (the GIL serialises them anyway)
        # and the numeric stages silence warnings with warnings.catch_warnings, which is not thread-safe.
        self._work = threading.Lock()

    # -- variants -------------------------------------------------------------------------
    def exercise(self, ex_id: str):
        ex = self.exercises.get(ex_id)
        if ex is None:
            raise RequestError(404, f"no exercise {ex_id!r}")
        return ex

    def seed_for(self, ex, student: str) -> int | None:
        """The student's variant seed: from their name, and the round when they asked for new numbers."""
        from .variants import student_seed

        if ex.randomise is None:
            return None
        rnd = self.store.round(student, ex.id)
        return student_seed(ex.id, student if rnd == 0 else f"{student}\x00round {rnd}")

    def new_numbers(self, student: str, ex_id: str) -> int | None:
        """Fresh numbers for a randomised exercise (its next round); the new seed."""
        ex = self.exercise(ex_id)
        if ex.randomise is None:
            raise RequestError(400, f"exercise {ex_id!r} has fixed numbers (no randomise: section)")
        self.store.next_round(student, ex_id)
        return self.seed_for(ex, student)

    def solved(self, ex_id: str, student: str):
        """(solution, graders, seed) of a student's variant; solved once and kept (bounded)."""
        from .grading.parts import ExerciseGraders
        from .solve import solve
        from .variants import variant

        ex = self.exercise(ex_id)
        seed = self.seed_for(ex, student)
        key = (ex.id, seed)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        with self._work:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None:
                return hit
            sol = solve(variant(ex, seed) if seed is not None else ex)
            graders = ExerciseGraders()
            graders.add(sol)
        entry = {"solution": sol, "graders": graders, "seed": seed, "figures": None}
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > CACHE:
                self._cache.popitem(last=False)
        return entry

    def warm_up(self) -> None:
        """Solve each exercise as written and work out its formula parts' re-derived mistakes (shared by
        every variant), so that no student's first wrong answer waits for sympy.  Runs in the
        background when the server starts; one exercise at a time, so requests interleave."""
        from .solve import solve

        for ex in list(self.exercises.values()):
            try:
                with self._work:
                    sol = solve(ex)
                    for r in sol.parts:
                        if r.part.kind == "formula" and r.grader is not None:
                            r.grader.grade("0")  # a wrong answer: builds the mistakes
            except EmsymError:
                continue

    def figures(self, entry) -> dict:
        if entry["figures"] is None:
            from .plots import question_figures

            with self._work:
                if entry["figures"] is None:
                    entry["figures"] = question_figures(entry["solution"])
        return entry["figures"]

    # -- answers ----------------------------------------------------------------------------
    def part(self, ex_id: str, part_id: str):
        ex = self.exercise(ex_id)
        for p in ex.parts:
            if p.id == part_id:
                return p
        raise RequestError(404, f"exercise {ex_id!r} has no part {part_id!r}")

    def preview(self, student: str, ex_id: str, part_id: str, answer: str) -> dict:
        """How a formula answer is read: its canonical text and MathML, or the reason it cannot be."""
        from .grading.parser import InvalidAnswer, to_latex
        from .render import mathml

        part = self.part(ex_id, part_id)
        if part.kind != "formula":
            return {"reading": None}
        g = self.solved(ex_id, student)["graders"].graders[(ex_id, part_id)]
        try:
            parsed = g.read(answer)
        except InvalidAnswer as exc:
            return {"error": str(exc)}
        return {"reading": parsed.text, "mathml": mathml(to_latex(parsed.tree))}

    def grade(self, student: str, ex_id: str, part_id: str, answer: str) -> dict:
        """Grade, record and reply: verdict, score, feedback, and the worked solution once right."""
        part = self.part(ex_id, part_id)
        entry = self.solved(ex_id, student)
        graders = entry["graders"]
        if graders.status(ex_id, part_id) != "auto":
            raise RequestError(400, f"part {part_id!r} is marked by a person, not graded here")
        earlier = self.store.latest_answers(student, ex_id) if part.spec.get("uses") else None
        with self._work:
            v = graders.grade(ex_id, part_id, answer, earlier)
        self.store.record(student, ex_id, part_id, entry["seed"], answer, v.verdict, v.score, v.mistake, v.feedback)
        out = {"verdict": v.verdict, "score": v.score, "feedback": v.feedback, "mistake": v.mistake}
        if v.verdict == "correct":
            out["solution"] = self.solution_html(student, ex_id, part_id)
        return out

    def solution_html(self, student: str, ex_id: str, part_id: str) -> str:
        from .render import render_part_html

        part = self.part(ex_id, part_id)
        entry = self.solved(ex_id, student)
        # a numeric part's solution is its variant's; the others' are the same in every variant
        cache = entry.setdefault("solution_html", {}) if part.kind == "numeric" else self._shared_html
        key = part_id if part.kind == "numeric" else (ex_id, part_id)
        if key not in cache:
            r = next(r for r in entry["solution"].parts if r.part.id == part_id)
            cache[key] = render_part_html(r)
        return cache[key]


# -- the Starlette application ------------------------------------------------------------------
def _student_of(request) -> str | None:
    raw = request.cookies.get(COOKIE)
    if raw is None:
        return None
    try:
        return _valid_name(urllib.parse.unquote(raw))
    except RequestError:
        return None


def _need_student(request) -> str:
    s = _student_of(request)
    if s is None:
        raise RequestError(401, "give your name on the first page first")
    return s


async def _body(request) -> bytes:
    too_large = RequestError(413, f"the request is too large (the limit is {MAX_BODY:,} bytes)")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise too_large
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise too_large
    return data


async def _json_body(request, keys=("exercise", "part", "answer")) -> dict:
    if "application/json" not in request.headers.get("content-type", ""):
        raise RequestError(415, "send JSON (Content-Type: application/json)")
    try:
        doc = json.loads((await _body(request)).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestError(400, "the request body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise RequestError(400, f"send a JSON object with {', '.join(keys)}")
    for key in keys:
        if not isinstance(doc.get(key), str):
            raise RequestError(400, f"{key!r} is missing or not text")
    return doc


class _Pages:
    """The request handlers; each returns a response or raises RequestError."""

    def __init__(self, practice: Practice):
        from .render import page_env

        self.practice = practice
        self.env = page_env()

    def page(self, name: str, status: int = 200, **ctx):
        from starlette.responses import HTMLResponse

        html = self.env.get_template(f"app/{name}.html.j2").render(**ctx)
        return HTMLResponse(html, status_code=status)

    async def index(self, request):
        ex = sorted(self.practice.exercises.values(), key=lambda e: e.id)
        nxt = request.query_params.get("next", "")
        return self.page("index", exercises=ex, student=_student_of(request), problems=self.practice.problems, next=nxt)

    async def login(self, request):
        from starlette.responses import RedirectResponse

        form = urllib.parse.parse_qs((await _body(request)).decode("utf-8", errors="replace"))
        name = _valid_name((form.get("name") or [""])[0])
        nxt = (form.get("next") or ["/"])[0]
        target = nxt if nxt.startswith("/ex/") and nxt[4:].replace("-", "").replace("_", "").isalnum() else "/"
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(COOKIE, urllib.parse.quote(name), httponly=True, samesite="strict")
        return resp

    async def logout(self, request):
        from starlette.responses import RedirectResponse

        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    def exercise(self, request):
        from starlette.responses import RedirectResponse

        student = _student_of(request)
        if student is None:
            return RedirectResponse("/?next=" + urllib.parse.quote(request.url.path), status_code=303)
        ex_id = request.path_params["ex_id"]
        entry = self.practice.solved(ex_id, student)
        sol = entry["solution"]
        attempts: dict[str, list] = {}
        for a in self.practice.store.attempts(student, ex_id):
            attempts.setdefault(a["part"], []).append(a)
        status = entry["graders"].status
        return self.page(
            "exercise",
            ex=sol.exercise,
            sol=sol,
            seed=entry["seed"],
            student=student,
            attempts=attempts,
            figures=list(self.practice.figures(entry)),
            graded={p.id: status(ex_id, p.id) == "auto" for p in sol.exercise.parts},
        )

    def figure(self, request):
        from starlette.responses import Response

        entry = self.practice.solved(request.path_params["ex_id"], _need_student(request))
        png = self.practice.figures(entry).get(request.path_params["name"])
        if png is None:
            raise RequestError(404, "no such figure")
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    async def api_preview(self, request):
        from starlette.responses import JSONResponse

        student = _need_student(request)
        doc = await _json_body(request)
        return JSONResponse(self.practice.preview(student, doc["exercise"], doc["part"], doc["answer"]))

    async def api_grade(self, request):
        from starlette.responses import JSONResponse

        student = _need_student(request)
        doc = await _json_body(request)
        # On the event loop: grading is CPU-bound and one at a time anyway (a few ms, bounded by the
        # grader's 0.5 s budget); a thread hop per request cost more than it saved.
        return JSONResponse(self.practice.grade(student, doc["exercise"], doc["part"], doc["answer"]))

    async def api_new_numbers(self, request):
        from starlette.responses import JSONResponse

        student = _need_student(request)
        doc = await _json_body(request, keys=("exercise",))
        return JSONResponse({"seed": self.practice.new_numbers(student, doc["exercise"])})

    def api_solution(self, request):
        from starlette.responses import JSONResponse

        p = request.path_params
        return JSONResponse({"html": self.practice.solution_html(_need_student(request), p["ex_id"], p["part"])})

    def instructor(self, request):
        return self.page("instructor", summary=self.practice.store.summary(), exercises=self.practice.exercises)

    def attempts_csv(self, request):
        from starlette.responses import Response

        return Response(
            self.practice.store.csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="attempts.csv"'},
        )

    def error(self, request, status: int, message: str):
        from starlette.responses import JSONResponse

        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return self.page("error", status=status, message=message, status_code=status)

    def wrap(self, fn):
        """Client mistakes as 4xx (JSON for the API, a page otherwise); never a traceback."""
        import inspect

        async def handler(request):
            try:
                out = fn(request)
                return await out if inspect.isawaitable(out) else out
            except RequestError as exc:
                return self.error(request, exc.status, exc.message)
            except EmsymError as exc:
                return self.error(request, 422, str(exc))

        return handler


def create_app(practice: Practice):
    """The ASGI application over a Practice (see the module docstring)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    pages = _Pages(practice)
    w = pages.wrap
    routes = [
        Route("/", w(pages.index)),
        Route("/login", w(pages.login), methods=["POST"]),
        Route("/logout", w(pages.logout)),
        Route("/ex/{ex_id}", w(pages.exercise)),
        Route("/ex/{ex_id}/figure/{name}.png", w(pages.figure)),
        Route("/api/preview", w(pages.api_preview), methods=["POST"]),
        Route("/api/grade", w(pages.api_grade), methods=["POST"]),
        Route("/api/solution/{ex_id}/{part}", w(pages.api_solution)),
        Route("/api/new-numbers", w(pages.api_new_numbers), methods=["POST"]),
        Route("/instructor", w(pages.instructor)),
        Route("/instructor/attempts.csv", w(pages.attempts_csv)),
    ]

    async def http_error(request, exc: Any):
        status = getattr(exc, "status_code", 400)
        words = {404: "no such page", 405: "this address does not take that method"}
        return pages.error(request, status, words.get(status, "bad request"))

    async def server_error(request, exc: Exception):
        message = "emsym could not answer this request (an internal error); it has been logged on the server"
        return pages.error(request, 500, message)

    handlers: dict = {404: http_error, 405: http_error, 400: http_error, 500: server_error}
    return Starlette(routes=routes, exception_handlers=handlers)


def serve(path: str | Path, db: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the practice app with uvicorn until interrupted."""
    import uvicorn

    practice = Practice(path, db)
    for line in practice.problems:
        print(f"emsym: warning: {line}")
    threading.Thread(target=practice.warm_up, name="emsym-warm-up", daemon=True).start()
    print(f"emsym serve: {len(practice.exercises)} exercise(s) at http://{host}:{port}/ (attempts in {db})")
    uvicorn.run(create_app(practice), host=host, port=port, log_level="warning")
