"""Derivation cache: repeated derivations of the same spec come from memory or disk.

Key: sha256 of the emsym version, the sympy version, a fingerprint of the source of the
derivation stages (so an upgraded or edited emsym never serves a stale derivation) and
``ModelSpec.key()`` (every field that changes the derivation).  Location: ``$EMSYM_CACHE_DIR``, else
``$XDG_CACHE_HOME/emsym``, else ``~/.cache/emsym``.

Trust.  An entry is a pickle, and unpickling can run code, so an entry is loaded only when
(1) the folder belongs to the user and nobody else may write to it (it is created 0700; a
folder owned by someone else, or writable by group or others, disables the disk layer with a
warning), and (2) the entry carries an HMAC-SHA256 of its payload under a per-user secret key
(``key`` in the folder, 32 random bytes, created 0600, refused if anyone else could read or
replace it).  Someone who can drop a file into the cache but cannot read the key cannot make
an entry emsym will load; an entry whose tag or content does not match is ignored and
rebuilt.  Writes are atomic (temporary file + rename); a read-only cache folder only disables
the disk layer.

Plans.  ``get_model`` gives the compiled numeric model.  For a family (not the Gaussian) the
derivation lowered to a plan (``emsym.family_plan``, plain JSON) is stored under ``plans/`` with
the same key and HMAC tag, and never unpickled; a process that finds it builds the model from
it without importing sympy or reading the derivation -- ``emsym run`` on a cached family model
pays for numpy and the data, not for the computer algebra.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import os
import pickle
import secrets
import stat
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .exceptions import EmsymWarning
from .family_spec import FamilySpec

if TYPE_CHECKING:
    from .derive import Derivation
    from .spec import ModelSpec, Spec

__all__ = ["cache_dir", "cache_path", "clear_memory", "get_derivation", "get_model"]

_MAGIC = b"EMSYM-DERIVATION-2\n"
_MEMORY: dict[str, Derivation] = {}
_PLANS: dict[str, bytes] = {}


def cache_dir() -> Path:
    if os.environ.get("EMSYM_CACHE_DIR"):
        return Path(os.environ["EMSYM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "emsym"


_STAGES = (
    "spec.py",
    "options.py",
    "family_spec.py",
    "priors.py",
    "qfunction.py",
    "family_model.py",
    "derive.py",
    "summation.py",
    "roots.py",
    "family_derive.py",
    "instantiate.py",
    "family_lower.py",
    "family_plan.py",
    "family_compile.py",
    "mclust.py",
    "printing.py",
    *(f"families/{f.name}" for f in sorted((Path(__file__).resolve().parent / "families").glob("*.py"))),
)


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
_SYMPY_VERSION = metadata.version("sympy")  # without importing sympy (about 0.3 s)


def _key(spec: Spec) -> str:
    return hashlib.sha256(f"{__version__}|{_SYMPY_VERSION}|{_FINGERPRINT}|{spec.key()}".encode()).hexdigest()


def cache_path(spec: Spec) -> Path:
    return cache_dir() / f"{_key(spec)}.pickle"


def clear_memory() -> None:
    _MEMORY.clear()
    _PLANS.clear()


_WARNED: set[str] = set()


def _private(info: os.stat_result) -> bool:
    """Owned by this user and not writable (or, for the key, readable) by anyone else."""
    mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    return mine and not info.st_mode & 0o022


def _refuse(folder: Path, why: str) -> None:
    if str(folder) not in _WARNED:
        _WARNED.add(str(folder))
        warnings.warn(
            f"the derivation cache {folder} {why}; derivations are not read from or written to disk "
            "(set EMSYM_CACHE_DIR to a folder of your own)",
            EmsymWarning,
            stacklevel=4,
        )


def _secret(folder: Path, create: bool) -> bytes | None:
    """The per-user key of a cache folder, or None where the folder or key cannot be trusted."""
    try:
        if create:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or not _private(info):
        _refuse(folder, "belongs to another user or is writable by others")
        return None
    key_path = folder / "key"
    try:
        fd = os.open(key_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        if not create:
            return None
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
            fd = os.open(key_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        key = fh.read(64)
    if not stat.S_ISREG(info.st_mode) or not _private(info) or info.st_mode & 0o044 or len(key) != 32:
        _refuse(folder, "has a key file that others could read or replace")
        return None
    return key


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).hexdigest().encode()


def _read(path: Path, spec: Spec) -> Derivation | None:
    key = _secret(path.parent, create=False)
    if key is None:
        return None
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    if not blob.startswith(_MAGIC):
        return None
    head, _, payload = blob[len(_MAGIC) :].partition(b"\n")
    if not hmac.compare_digest(_tag(key, payload), head):
        return None  # not written by this user's emsym: never unpickled
    try:
        d = pickle.loads(payload)
    except Exception:  # a damaged or foreign payload: rebuild
        return None
    from .derive import Derivation

    if not isinstance(d, Derivation) or d.spec.key() != spec.key():
        return None
    return d


def _write(path: Path, d: Derivation) -> None:
    key = _secret(path.parent, create=True)
    if key is None:
        return
    for step in d.steps:  # printed once here, so every later process reads the printed forms
        step.latex, step.plain, step.rows  # noqa: B018 - cached_property
    try:
        payload = pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pickle")
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC + _tag(key, payload) + b"\n" + payload)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, RecursionError, AttributeError, TypeError):
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)


def get_blob(kind: str, key: str) -> bytes | None:
    """Bytes stored by ``put_blob`` under (kind, key) in this user's trusted cache folder, or None.

    Blobs carry the same per-user HMAC tag as derivations, so a file anyone else drops there is
    ignored; they are never unpickled.
    """
    folder = cache_dir() / kind
    secret = _secret(cache_dir(), create=False)
    if secret is None:
        return None
    try:
        blob = (folder / key).read_bytes()
    except OSError:
        return None
    head, _, payload = blob.partition(b"\n")
    return payload if hmac.compare_digest(_tag(secret, payload), head) else None


def put_blob(kind: str, key: str, payload: bytes) -> None:
    """Store bytes under (kind, key), atomically, when the cache folder can be trusted."""
    secret = _secret(cache_dir(), create=True)
    if secret is None:
        return
    folder = cache_dir() / kind
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(_tag(secret, payload) + b"\n" + payload)
        os.replace(tmp, folder / key)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)


def derive(spec: ModelSpec) -> Derivation:
    """``emsym.derive.derive`` (a Gaussian), imported when a derivation is first needed (it imports sympy)."""
    from .derive import derive as derive_spec

    return derive_spec(spec)


def _derive(spec: Spec, use_cache: bool) -> Derivation:
    """A family derives for a generic component; a concrete Gaussian with a general form is that form
    (derived once, cached) written out for its K components (``emsym.instantiate``; a general d stays
    general): the cost does not grow with K.  Pinned variants (fixed or linked values, Bernoulli z)
    derive per component."""
    from .family_derive import derive_family
    from .instantiate import instantiate

    if isinstance(spec, FamilySpec):
        return derive_family(spec)
    general = spec.general()
    if general is None or general is spec:
        return derive(spec)
    return instantiate(get_derivation(general, use_cache), spec)


def get_derivation(spec: Spec, use_cache: bool = True) -> Derivation:
    """The derivation of ``spec``, from the memory or disk cache when possible."""
    if not use_cache:
        return _derive(spec, use_cache=False)
    key = _key(spec)
    d = _MEMORY.get(key)
    if d is None:
        path = cache_dir() / f"{key}.pickle"
        d = _read(path, spec)
        if d is None:
            d = _derive(spec, use_cache=True)
            _write(path, d)
        _MEMORY[key] = d
    if d.spec.name != spec.name or d.spec.description != spec.description:
        d = dataclasses.replace(d, spec=spec)
    return d


def get_model(spec: Spec, use_cache: bool = True):
    """The compiled numeric model of a concrete ``spec`` (what ``emsym.em.run_em`` runs).

    A family model comes from its stored plan when there is one (no sympy, no derivation read);
    otherwise the derivation is compiled, and a family's plan stored for the next process.
    """
    if not isinstance(spec, FamilySpec):
        from .compile import compile_derivation

        return compile_derivation(get_derivation(spec, use_cache))
    from .family_compile import FamilyCompiledModel
    from .family_plan import Plan

    key = _key(spec)
    payload = _PLANS.get(key) or (get_blob("plans", key) if use_cache else None)
    if payload is not None:
        try:
            model = FamilyCompiledModel(spec, Plan.from_json(payload), lambda: get_derivation(spec, use_cache))
        except (ValueError, TypeError, KeyError, IndexError):  # pragma: no cover - a plan of another format
            payload = None
        else:
            _PLANS[key] = payload
            return model
    model = FamilyCompiledModel.from_derivation(get_derivation(spec, use_cache))
    if use_cache:
        payload = model.plan.to_json()
        _PLANS[key] = payload
        put_blob("plans", key, payload)
    return model
