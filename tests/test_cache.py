"""The derivation cache: served from disk, keyed by the spec, and never unpickling a stranger's file."""

from __future__ import annotations

import os
import pickle

import pytest

from emsym import cache
from emsym.derive import derive
from emsym.exceptions import EmsymWarning
from emsym.family_plan import Plan
from emsym.spec import load_spec


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("EMSYM_CACHE_DIR", str(folder))
    cache.clear_memory()
    cache._WARNED.clear()
    yield folder
    cache.clear_memory()


def _texts(d):
    return [u.text for u in d.updates]


def _no_derive(monkeypatch):
    """Make any fresh derivation fail: what is returned afterwards came from the disk cache."""

    def refuse(spec):
        raise AssertionError(f"derived afresh: {spec.key()}")

    monkeypatch.setattr(cache, "derive", refuse)


def test_second_process_is_served_from_disk(private_cache, monkeypatch):
    spec = load_spec("tied-variance")
    first = cache.get_derivation(spec)
    path = cache.cache_path(spec)
    assert path.is_file() and path.parent == private_cache
    cache.clear_memory()  # as a new process would start
    _no_derive(monkeypatch)
    again = cache.get_derivation(spec)
    assert _texts(again) == _texts(first) == _texts(derive(spec))


def test_folder_and_key_are_private(private_cache):
    cache.get_derivation(load_spec("standard"))
    assert os.stat(private_cache).st_mode & 0o777 == 0o700
    assert os.stat(private_cache / "key").st_mode & 0o777 == 0o600


def test_an_entry_for_another_spec_is_not_served(private_cache):
    tied, standard = load_spec("tied-variance"), load_spec("standard")
    want = _texts(derive(tied))
    other = cache.get_derivation(standard)
    assert _texts(other) != want
    # A correctly signed entry of the standard model placed under the tied model's key.
    cache.cache_path(tied).write_bytes(
        cache._MAGIC
        + cache._tag(cache._secret(private_cache, False), pickle.dumps(other))
        + b"\n"
        + pickle.dumps(other)
    )
    cache.clear_memory()
    assert _texts(cache.get_derivation(tied)) == want


def test_a_damaged_entry_is_rebuilt(private_cache):
    spec = load_spec("tied-variance")
    first = cache.get_derivation(spec)
    path = cache.cache_path(spec)
    blob = path.read_bytes()
    path.write_bytes(blob[:-10] + b"0123456789")
    cache.clear_memory()
    assert _texts(cache.get_derivation(spec)) == _texts(first)
    assert path.read_bytes() != blob[:-10] + b"0123456789"  # rewritten with a valid entry


class _Payload:
    """Unpickling this writes a marker file: the attack the HMAC must stop."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_unsigned_pickle_is_never_loaded(private_cache, tmp_path):
    import hashlib

    spec = load_spec("standard")
    cache.get_derivation(spec)  # creates the folder and its key
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Payload(str(marker)))
    for head in (
        hashlib.sha256(evil).hexdigest().encode(),  # the old format's plain digest
        cache._tag(b"x" * 32, evil),
    ):  # signed with another key
        cache.cache_path(spec).write_bytes(cache._MAGIC + head + b"\n" + evil)
        cache.clear_memory()
        assert cache.get_derivation(spec).method == "EM"
        assert not marker.exists()


def test_a_folder_others_can_write_is_not_used(private_cache, monkeypatch):
    spec = load_spec("standard")
    cache.get_derivation(spec)
    os.chmod(private_cache, 0o777)
    cache.clear_memory()
    calls = []
    real = cache.derive
    monkeypatch.setattr(cache, "derive", lambda s: calls.append(s) or real(s))
    with pytest.warns(EmsymWarning, match="writable by others"):
        assert cache.get_derivation(spec).method == "EM"
    assert calls == [spec.general()]  # derived again (for a generic k): the entry in that folder was not read


def test_a_key_others_can_read_is_not_used(private_cache, monkeypatch):
    spec = load_spec("standard")
    cache.get_derivation(spec)
    os.chmod(private_cache / "key", 0o644)
    cache.clear_memory()
    with pytest.warns(EmsymWarning, match="others could read or replace"):
        assert cache._read(cache.cache_path(spec), spec) is None


def test_unwritable_cache_still_derives(tmp_path, monkeypatch):
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    monkeypatch.setenv("EMSYM_CACHE_DIR", str(target / "sub"))
    cache.clear_memory()
    assert cache.get_derivation(load_spec("standard")).method == "EM"


def test_figures_are_drawn_once_for_the_same_numbers(private_cache, monkeypatch):
    from pathlib import Path

    from emsym import plots
    from emsym.exercise import load_exercise
    from emsym.solve import solve

    ex = Path(__file__).resolve().parents[1] / "exercises" / "mit-686x-em.yaml"
    sol = solve(load_exercise(ex))
    first = plots.figures(sol)
    assert first and all(png.startswith(b"\x89PNG") for png in first.values())

    def refuse(solution):
        raise AssertionError("drawn again")

    monkeypatch.setattr(plots, "_draw_figures", refuse)
    assert plots.figures(sol) == first  # the same numbers: from the cache, not drawn
    blob = next((private_cache / "figures").iterdir())
    blob.write_bytes(b"0" * 64 + b"\n{}")  # a file someone else wrote: ignored, drawn afresh
    with pytest.raises(AssertionError, match="drawn again"):
        plots.figures(sol)


def test_a_damaged_plan_is_derived_again(private_cache):
    spec = load_spec({"family": "poisson", "components": 3})
    cache.get_model(spec)
    (plan,) = (private_cache / "plans").iterdir()
    plan.write_bytes(plan.read_bytes()[:-5] + b"xxxxx")  # the tag no longer matches
    cache.clear_memory()
    model = cache.get_model(spec)
    assert model.update_order == ("pi", "rate")
    assert Plan.from_json((private_cache / "plans" / plan.name).read_bytes().partition(b"\n")[2]) == model.plan
