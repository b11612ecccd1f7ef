"""Derivation cache: repeated derivations of the same spec come from memory or disk.

Key: sha256 of the emsym version, the sympy version, a fingerprint of the source of the
derivation stages (so an upgraded or edited emsym never serves a stale derivation) and
``ModelSpec.key()`` (every field that changes the derivation).  Location: ``$EMSYM_CACHE_DIR``, else
``$XDG_CACHE_HOME/emsym``, else ``~/.cache/emsym``.  Each file is a pickle behind a header
holding the sha256 of the payload; a file whose digest or content does not match is
ignored and rebuilt, never trusted.  The cache is trusted like the rest of the user's own
files (pickle runs code on load): it lives in the user's cache directory only.  Writes are
atomic (temporary file + rename); a read-only cache directory only disables the disk layer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import tempfile
from pathlib import Path

import sympy

from . import __version__
from .derive import Derivation, derive
from .spec import ModelSpec

__all__ = ["cache_dir", "cache_path", "clear_memory", "get_derivation"]

_MAGIC = b"EMSYM-DERIVATION-1\n"
_MEMORY: dict[str, Derivation] = {}


def cache_dir() -> Path:
    if os.environ.get("EMSYM_CACHE_DIR"):
        return Path(os.environ["EMSYM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "emsym"


_STAGES = ("spec.py", "qfunction.py", "derive.py", "mclust.py", "printing.py")


def _code_fingerprint() -> str:
    """sha256 of the modules that make a derivation, so an edited or upgraded emsym re-derives."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _STAGES:
        try:
            h.update((here / name).read_bytes())
        except OSError:  # pragma: no cover - a zipped install: fall back to the version alone
            h.update(name.encode())
    return h.hexdigest()


_FINGERPRINT = _code_fingerprint()


def _key(spec: ModelSpec) -> str:
    return hashlib.sha256(f"{__version__}|{sympy.__version__}|{_FINGERPRINT}|{spec.key()}".encode()).hexdigest()


def cache_path(spec: ModelSpec) -> Path:
    return cache_dir() / f"{_key(spec)}.pickle"


def clear_memory() -> None:
    _MEMORY.clear()


def _read(path: Path, spec: ModelSpec) -> Derivation | None:
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    if not blob.startswith(_MAGIC):
        return None
    head, _, payload = blob[len(_MAGIC):].partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != head:
        return None
    try:
        d = pickle.loads(payload)
    except Exception:  # a damaged or foreign payload: rebuild
        return None
    if not isinstance(d, Derivation) or d.spec.key() != spec.key():
        return None
    return d


def _write(path: Path, d: Derivation) -> None:
    try:
        payload = pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pickle")
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, RecursionError):
        try:
            os.unlink(tmp)  # type: ignore[possibly-undefined]
        except (OSError, UnboundLocalError):
            pass


def get_derivation(spec: ModelSpec, use_cache: bool = True) -> Derivation:
    """``derive(spec)``, from the memory or disk cache when possible."""
    if not use_cache:
        return derive(spec)
    key = _key(spec)
    d = _MEMORY.get(key)
    if d is None:
        path = cache_dir() / f"{key}.pickle"
        d = _read(path, spec)
        if d is None:
            d = derive(spec)
            _write(path, d)
        _MEMORY[key] = d
    if d.spec.name != spec.name or d.spec.description != spec.description:
        d = dataclasses.replace(d, spec=spec)
    return d
