"""The practice web app: a real uvicorn server on 127.0.0.1, a real SQLite file, a real browser.

The browser tests drive Debian's chromium through Playwright; when either is missing they are
skipped with the reason (``make test`` installs both where it can).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
PRACTICE = "mit-686x-em-practice"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from emsym.webapp import Practice, create_app

    folder = tmp_path_factory.mktemp("app")
    for name in (f"{PRACTICE}.yaml", "gt-gmm-mle.yaml"):
        shutil.copy(EXERCISES / name, folder / name)
    db = folder / "attempts.sqlite"
    practice = Practice(folder, db)
    port = _free_port()
    config = uvicorn.Config(create_app(practice), host="127.0.0.1", port=port, log_level="error")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "db": db, "practice": practice}
    srv.should_exit = True
    thread.join(timeout=10)


def _request(url, method="GET", data=None, headers=None, cookie="Ada"):
    headers = dict(headers or {})
    if cookie:
        headers["Cookie"] = f"emsym_student={cookie}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _grade(server, part, answer, student="Ada"):
    doc = json.dumps({"exercise": PRACTICE, "part": part, "answer": answer}).encode()
    return _request(server["url"] + "/api/grade", "POST", doc, {"Content-Type": "application/json"}, cookie=student)


def test_index_lists_the_exercises(server):
    status, text = _request(server["url"] + "/", cookie=None)
    assert status == 200 and PRACTICE in text and "gt-gmm-mle" in text and "<form" in text


@pytest.mark.parametrize(
    "path, method, body, headers, status, words",
    [
        ("/ex/no-such-exercise", "GET", None, {}, 404, "no exercise"),
        ("/nowhere", "GET", None, {}, 404, "no such page"),
        ("/api/grade", "GET", None, {}, 405, "does not take"),
        ("/api/grade", "POST", b"{not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        ("/api/grade", "POST", b"answer=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "JSON"),
        ("/api/grade", "POST", b'{"exercise": 1}', {"Content-Type": "application/json"}, 400, "'exercise'"),
        ("/api/grade", "POST", b"x" * 20000, {"Content-Type": "application/json"}, 413, "too large"),
        ("/login", "POST", b"name=", {"Content-Type": "application/x-www-form-urlencoded"}, 400, "a name of 1"),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_message(server, path, method, body, headers, status, words):
    got, text = _request(server["url"] + path, method, body, headers)
    assert got == status and words in text and "Traceback" not in text


def test_unknown_part_and_missing_name(server):
    status, text = _grade(server, "no-such-part", "1")
    assert status == 404 and "no part" in text
    status, text = _grade(server, "loglik", "1", student=None)
    assert status == 401 and "name" in text


def test_grading_names_the_mistake_and_records_the_attempt(server):
    status, text = _grade(server, "mstep-sigma2", "sqrt(sum_n gamma_nk (x_n - mu_k)^2 / N_k)", student="Grace")
    out = json.loads(text)
    assert status == 200 and out["verdict"] == "incorrect" and out["mistake"] == "sigma-for-sigma2"
    status, text = _grade(server, "mstep-sigma2", r"\frac{1}{N_k}\sum_{n=1}^N \gamma_{nk}(x_n-\mu_k)^2", "Grace")
    out = json.loads(text)
    assert out["verdict"] == "correct" and "<" in out["solution"]
    rows = server["practice"].store.attempts("Grace", PRACTICE)
    assert [r["verdict"] for r in rows][-2:] == ["incorrect", "correct"]


def test_numbers_are_the_students_own_variant(server):
    from emsym.exercise import load_exercise
    from emsym.solve import solve
    from emsym.variants import student_seed, variant

    ex = load_exercise(EXERCISES / f"{PRACTICE}.yaml")
    mine = {r.part.id: r for r in solve(variant(ex, student_seed(PRACTICE, "Ada"))).parts}
    theirs = {r.part.id: r for r in solve(variant(ex, student_seed(PRACTICE, "Bob"))).parts}
    assert json.loads(_grade(server, "loglik", mine["loglik"].shown)[1])["verdict"] == "correct"
    assert json.loads(_grade(server, "loglik", theirs["loglik"].shown)[1])["verdict"] != "correct"


def test_concurrent_submissions_lose_no_attempt(server):
    before = len(server["practice"].store.attempts())
    answers = [("loglik", str(-10 - i)) for i in range(5)]

    def student(k):
        return [_grade(server, part, a, student=f"student{k}")[0] for part, a in answers]

    with ThreadPoolExecutor(20) as pool:
        statuses = [s for batch in pool.map(student, range(20)) for s in batch]
    assert statuses == [200] * 100
    assert len(server["practice"].store.attempts()) == before + 100


def test_instructor_page_and_csv(server):
    _grade(server, "mstep-sigma2", "sqrt(sum_n gamma_nk (x_n - mu_k)^2 / N_k)", student="Hopper")
    status, text = _request(server["url"] + "/instructor", cookie=None)
    assert status == 200 and "sigma-for-sigma2" in text
    status, text = _request(server["url"] + "/instructor/attempts.csv", cookie=None)
    assert status == 200 and text.startswith("id,student,exercise,part,seed,answer")


def test_the_database_survives_a_kill_mid_write(tmp_path):
    db = tmp_path / "kill.sqlite"
    code = (
        "import sys\nfrom emsym.practice_store import Store\ns = Store(sys.argv[1])\nprint('ready', flush=True)\n"
        "i = 0\nwhile True:\n    s.record('k', 'ex', 'p', 1, str(i), 'incorrect', 0.0, None, 'f' * 500)\n    i += 1\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = con.execute("SELECT count(*) FROM attempts").fetchone()[0]
    answers = [int(a) for (a,) in con.execute("SELECT answer FROM attempts ORDER BY id")]
    con.close()
    assert n > 0 and answers == list(range(n))  # every committed attempt, in order, none half-written
    from emsym.practice_store import Store

    assert len(Store(db).attempts()) == n


def test_a_newer_schema_is_refused(tmp_path):
    from emsym.exceptions import EmsymError
    from emsym.practice_store import Store

    db = tmp_path / "new.sqlite"
    Store(db)
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(EmsymError, match="schema version 99"):
        Store(db)


def test_serve_command_answers_on_localhost(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emsym", "serve", str(EXERCISES), "--port", str(port), "--db", str(tmp_path / "a.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(300):
            try:
                status, text = _request(f"http://127.0.0.1:{port}/", cookie=None)
                break
            except (ConnectionError, urllib.error.URLError):
                time.sleep(0.1)
        else:
            pytest.fail("emsym serve did not answer")
        assert status == 200 and "mit-686x-em" in text
        assert _request(f"http://127.0.0.1:{port}/ex/missing")[0] == 404
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stdout.close()


# -- a real browser ------------------------------------------------------------------------------
def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs Debian's chromium where it can)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (it is in the test extras)")
    return chromium, sync_playwright


def test_a_student_practises_in_a_browser(server):
    chromium, sync_playwright = _browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(server["url"] + "/")
        page.fill("#name", "Katherine")
        page.click("#login button")
        page.click(f"a[href='/ex/{PRACTICE}']")
        data = page.text_content("#data")
        part = page.locator("#part-mstep-sigma2")
        box = part.locator("input[name=answer]")
        box.fill("sqrt(sum_n gamma_nk (x_n - mu_k)^2 / N_k)")
        part.locator(".preview math").wait_for()  # the live preview shows the reading as MathML
        part.locator("button[type=submit]").click()
        feedback = part.locator(".feedback")
        feedback.wait_for()
        page.wait_for_function("document.querySelector('#part-mstep-sigma2 .feedback').textContent.length > 0")
        assert "sigma instead of sigma^2" in feedback.text_content()
        box.fill(r"\frac{1}{N_k}\sum_{n=1}^N \gamma_{nk}(x_n-\mu_k)^2")
        part.locator("button[type=submit]").click()
        page.wait_for_function("document.querySelector('#part-mstep-sigma2 .feedback').classList.contains('correct')")
        part.locator(".solution").wait_for()
        assert "Correct" in feedback.text_content()
        page.reload()
        assert page.text_content("#data") == data  # the same variant after a reload
        attempts = page.locator("#part-mstep-sigma2 .attempts li")
        assert attempts.count() == 2 and "incorrect" in attempts.nth(0).text_content()
        page.goto(server["url"] + "/instructor")
        assert "sigma-for-sigma2" in page.content()
        page.screenshot(path=str(Path(os.environ.get("EMSYM_SCREENSHOTS", "/tmp")) / "emsym-instructor.png"))
        browser.close()


def test_every_bundled_exercise_page_renders(tmp_path):
    """A student opens each bundled exercise: 200, its parts, no error page (families, choices, derivations)."""
    import uvicorn

    from emsym.exercise import exercise_files, load_exercise
    from emsym.webapp import Practice, create_app

    practice = Practice(EXERCISES, tmp_path / "all.sqlite")
    assert not practice.problems
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(practice), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if srv.started:
                break
            time.sleep(0.05)
        for f in exercise_files(EXERCISES):
            ex = load_exercise(f)
            status, text = _request(f"http://127.0.0.1:{port}/ex/{ex.id}", cookie="Ada")
            assert status == 200, (ex.id, text[:300])
            assert all(f'id="part-{p.id}"' in text for p in ex.parts), ex.id
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def test_login_returns_to_the_exercise_asked_for(server):
    import http.client
    import urllib.parse as up

    host = up.urlparse(server["url"])

    def login(body: bytes):
        con = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
        con.request("POST", "/login", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = con.getresponse()
        r.read()
        con.close()
        return r.status, r.getheader("Location")

    assert login(b"name=Lovelace&next=%2Fex%2F" + PRACTICE.encode()) == (303, f"/ex/{PRACTICE}")
    assert login(b"name=Lovelace&next=https%3A%2F%2Fevil.example") == (303, "/")  # never off the site


def test_new_numbers_give_a_fresh_variant_and_keep_the_attempts(server):
    def exercise_page(student):
        return _request(server["url"] + f"/ex/{PRACTICE}", cookie=student)[1]

    def data(page):
        return re.search(r'<span id="data">([^<]*)</span>', page).group(1)

    before = data(exercise_page("Noether"))
    _grade(server, "loglik", "-1", student="Noether")
    doc = json.dumps({"exercise": PRACTICE}).encode()
    status, text = _request(
        server["url"] + "/api/new-numbers", "POST", doc, {"Content-Type": "application/json"}, cookie="Noether"
    )
    assert status == 200 and isinstance(json.loads(text)["seed"], int)
    after = exercise_page("Noether")
    assert data(after) != before and data(exercise_page("Noether")) == data(after)  # new, then stable
    assert "incorrect (0): <code>-1</code>" in after  # the earlier attempt is kept
    seeds = {a["seed"] for a in server["practice"].store.attempts("Noether", PRACTICE)}
    _grade(server, "loglik", "-1", student="Noether")
    assert len({a["seed"] for a in server["practice"].store.attempts("Noether", PRACTICE)} - seeds) == 1
    status, text = _request(
        server["url"] + "/api/new-numbers", "POST", b"{bad", {"Content-Type": "application/json"}, cookie="Noether"
    )
    assert status == 400
    doc = json.dumps({"exercise": "gt-gmm-mle"}).encode()
    status, text = _request(
        server["url"] + "/api/new-numbers", "POST", doc, {"Content-Type": "application/json"}, cookie="Noether"
    )
    assert status == 400 and "fixed numbers" in text
