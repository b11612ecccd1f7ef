from __future__ import annotations

import pickle

from emsym import cache
from emsym.spec import load_spec


def test_disk_cache_round_trip_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("EMSYM_CACHE_DIR", str(tmp_path))
    spec = load_spec("tied-variance")
    cache.clear_memory()
    first = cache.get_derivation(spec)
    path = cache.cache_path(spec)
    assert path.is_file()
    cache.clear_memory()
    again = cache.get_derivation(spec)
    assert [u.text for u in again.updates] == [u.text for u in first.updates]

    # a damaged file (digest mismatch) is rebuilt, not trusted
    blob = path.read_bytes()
    path.write_bytes(blob[:-10] + b"0123456789")
    cache.clear_memory()
    rebuilt = cache.get_derivation(spec)
    assert [u.text for u in rebuilt.updates] == [u.text for u in first.updates]
    assert path.read_bytes() != blob[:-10] + b"0123456789"

    # a valid file for another spec under this key is not trusted either
    other = pickle.dumps(cache.get_derivation(load_spec("standard")))
    import hashlib
    path.write_bytes(cache._MAGIC + hashlib.sha256(other).hexdigest().encode() + b"\n" + other)
    cache.clear_memory()
    assert cache.get_derivation(spec).spec.key() == spec.key()


def test_unwritable_cache_still_derives(tmp_path, monkeypatch):
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    monkeypatch.setenv("EMSYM_CACHE_DIR", str(target / "sub"))
    cache.clear_memory()
    assert cache.get_derivation(load_spec("standard")).method == "EM"
