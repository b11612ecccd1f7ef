"""The file trust boundary: every file emsym reads or writes for a user goes through here.

What is read is bounded before it is trusted:

- ``read_text`` opens regular files only (never ``/dev/zero``, a FIFO or a folder), refuses a
  file over its size limit before reading it, and decodes UTF-8 strictly, naming the line of
  the first undecodable byte.
- ``load_yaml`` composes YAML with PyYAML's *safe* composer (no Python object is built from
  a tag) and then builds plain values itself, with limits: nesting depth, the number of values
  after alias expansion (a "billion laughs" file stops at the limit instead of filling
  memory), recursive aliases and duplicate keys are errors, and every value keeps its
  (line, column) for messages.
- ``bounded_lines`` reads a byte stream line by line in bounded memory: a line longer than
  the limit is reported as too long (and skipped to its end), never accumulated.

What is written is written atomically (``write_atomic``: a temporary file in the target
folder, then a rename, with the permissions the user's umask gives a new file), never over a
special file, and JSON is strict (``dumps`` refuses NaN and infinities instead of printing
text that is not JSON).

Each function takes the error class to raise, so a model file reports a ``SpecError``, an
init file a ``DataError`` and an exercise an ``ExerciseError``, all one line for the CLI.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import yaml

__all__ = [
    "LIMITS",
    "bounded_lines",
    "check_writable_target",
    "decode_utf8",
    "dumps",
    "load_yaml",
    "open_text",
    "read_text",
    "utf8_error_line",
    "write_atomic",
]

LIMITS = {
    "yaml_bytes": 1 << 20,  # a model, init or exercise file: 1 MiB
    "yaml_depth": 64,  # nested mappings / lists
    "yaml_values": 200_000,  # values after alias expansion
    "line_bytes": 1 << 16,  # one line of an answers or submissions file: 64 KiB
}

_PLAIN_TAGS = {"tag:yaml.org,2002:" + t for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp")}


def _umask() -> int:
    # The only portable way to read the umask is to set it; done once, at import.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def read_text(
    path: str | os.PathLike, what: str, error: Callable[[str], Exception], max_bytes: int | None = None
) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``; ``error(message)`` otherwise.

    ``what`` names the file in messages ("model file", "init file", ...).
    """
    path = Path(path)
    limit = LIMITS["yaml_bytes"] if max_bytes is None else max_bytes
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    with fh:
        info = _regular(path, fh, what, error)
        if info.st_size > limit:
            raise error(f"{path}: the {what} is {info.st_size:,} bytes; the limit is {limit:,}")
        blob = fh.read(limit + 1)
    if len(blob) > limit:  # grew while we read it
        raise error(f"{path}: the {what} is larger than the limit of {limit:,} bytes")
    return decode_utf8(blob, f"{path}", what, error)


def _regular(path: Path, fh, what: str, error: Callable[[str], Exception]) -> os.stat_result:
    info = os.fstat(fh.fileno())
    if not stat.S_ISREG(info.st_mode):
        fh.close()
        raise error(
            f"{path}: the {what} should be a regular file, but it is a "
            f"{'folder' if stat.S_ISDIR(info.st_mode) else 'special file (device, pipe or socket)'}"
        )
    return info


def open_text(path: str | os.PathLike, what: str, error: Callable[[str], Exception]) -> io.TextIOWrapper:
    """A regular file opened for reading as strict UTF-8 text (BOM dropped; no newline translation)."""
    path = Path(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    _regular(path, fh, what, error)
    return io.TextIOWrapper(fh, encoding="utf-8-sig", errors="strict", newline="")


def utf8_error_line(path: str | os.PathLike) -> int:
    """The line number of the first byte of a file that is not UTF-8 (0 when there is none)."""
    dec = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 16)
            if not block:
                return 0
            try:
                dec.decode(block)
            except UnicodeDecodeError as exc:
                return line + block.count(b"\n", 0, max(exc.start, 0))
            line += block.count(b"\n")


def decode_utf8(blob: bytes, where: str, what: str, error: Callable[[str], Exception]) -> str:
    """Strict UTF-8 (a leading byte-order mark is dropped), naming the line of a bad byte."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = blob.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{where}: line {line}: the {what} is not UTF-8 text (byte 0x{blob[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def load_yaml(text: str, where: str, error: Callable[[str], Exception], language: str = "YAML") -> tuple[Any, dict]:
    """Plain Python values from YAML text, and ``{key path: (line, column)}``.

    Only plain YAML values (mappings, lists, strings, numbers, booleans, null, dates); no tag
    builds an object.  Raises ``error(message)`` with FILE:LINE:COL for: invalid YAML, a
    non-plain tag, a duplicate key, a key that is not a name or number, nesting deeper than
    ``LIMITS['yaml_depth']``, more than ``LIMITS['yaml_values']`` values after alias
    expansion, and an alias that contains itself.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise error(f"{where}{at}: not valid {language}: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:
        raise error(f"{where}: the YAML is nested too deeply (the limit is {LIMITS['yaml_depth']} levels)") from None
    if node is None:
        return None, {}
    marks: dict = {}
    constructor = yaml.SafeLoader("")
    count = 0
    max_depth, max_values = LIMITS["yaml_depth"], LIMITS["yaml_values"]
    on_path: set[int] = set()

    def pos(n) -> str:
        return f"{where}:{n.start_mark.line + 1}:{n.start_mark.column + 1}"

    def scalar(n):
        try:
            return constructor.construct_object(n)
        except (ValueError, OverflowError, yaml.YAMLError) as exc:  # e.g. an int over Python's digit limit
            raise error(f"{pos(n)}: cannot read the value {n.value[:40]!r}: {exc}") from None

    def build(n, keypath, depth):
        nonlocal count
        count += 1
        if count > max_values:
            raise error(
                f"{pos(n)}: the YAML holds more than {max_values:,} values (after expanding aliases); "
                "is it an alias bomb?"
            )
        if depth > max_depth:
            raise error(f"{pos(n)}: the YAML is nested too deeply (the limit is {max_depth} levels)")
        marks.setdefault(keypath, (n.start_mark.line + 1, n.start_mark.column + 1))
        if n.tag not in _PLAIN_TAGS:
            raise error(f"{pos(n)}: the tag {n.tag!r} is not allowed (only plain YAML values)")
        if isinstance(n, yaml.ScalarNode):
            return scalar(n)
        if id(n) in on_path:
            raise error(f"{pos(n)}: an alias refers to a value that contains it (a recursive alias)")
        on_path.add(id(n))
        try:
            if isinstance(n, yaml.SequenceNode):
                return [build(v, keypath + (i,), depth + 1) for i, v in enumerate(n.value)]
            out: dict = {}
            for k, v in n.value:
                key = scalar(k) if isinstance(k, yaml.ScalarNode) and k.tag in _PLAIN_TAGS else None
                if k.tag == "tag:yaml.org,2002:merge":
                    raise error(f"{pos(k)}: merge keys ('<<') are not supported; write the keys out")
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise error(f"{pos(k)}: keys should be plain names")
                if key in out:
                    first = marks.get(keypath + (key,), ("?", "?"))
                    raise error(f"{pos(k)}: duplicate key {key!r} (first at line {first[0]}); each key may appear once")
                marks[keypath + (key,)] = (k.start_mark.line + 1, k.start_mark.column + 1)
                out[key] = build(v, keypath + (key,), depth + 1)
            return out
        finally:
            on_path.discard(id(n))

    try:
        value = build(node, (), 0)
    except RecursionError:  # pragma: no cover - the depth limit is far below Python's
        raise error(f"{where}: the YAML is nested too deeply") from None
    return value, marks


def bounded_lines(fh: BinaryIO, max_bytes: int | None = None, chunk: int = 1 << 16) -> Iterator[bytes | None]:
    """The lines of a binary stream without their line endings; ``None`` for a line over the limit.

    Memory stays bounded by the limit plus one chunk, and time is linear in the input: a line
    over ``max_bytes`` is not accumulated but skipped to its end.  A final newline adds no
    empty line.
    """
    limit = LIMITS["line_bytes"] if max_bytes is None else max_bytes
    parts: list[bytes] = []
    size = 0
    too_long = False
    while True:
        block = fh.read(chunk)
        if not block:
            break
        start = 0
        while True:
            nl = block.find(b"\n", start)
            piece = block[start:] if nl < 0 else block[start:nl]
            if not too_long:
                size += len(piece)
                if size > limit + 1:  # +1: a '\r' before the newline does not count
                    too_long, parts = True, []
                else:
                    parts.append(piece)
            if nl < 0:
                break
            if too_long:
                yield None
            else:
                line = b"".join(parts)
                yield line[:-1] if line.endswith(b"\r") else line
            parts, size, too_long = [], 0, False
            start = nl + 1
    if too_long:
        yield None
    elif parts:
        line = b"".join(parts)
        if line:
            yield line[:-1] if line.endswith(b"\r") else line


def check_writable_target(path: Path, error: Callable[[str], Exception], folder: bool = False) -> None:
    """Refuse to replace anything but a regular file (or, with ``folder``, a folder)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise error(f"{path}: cannot write the output: {exc.strerror}") from None
    if folder and stat.S_ISDIR(info.st_mode):
        return
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a folder"
            if stat.S_ISDIR(info.st_mode)
            else "a link"
            if stat.S_ISLNK(info.st_mode)
            else "a special file (device, pipe or socket)"
        )
        raise error(
            f"{path}: the output path is {kind}; emsym writes {'a folder or ' if folder else ''}"
            "regular files only -- choose another --out"
        )


def write_atomic(path: str | os.PathLike, content: str | bytes) -> None:
    """Write a file so that readers see the old or the new content, never a partial one.

    The new file gets the permissions any new file gets under the user's umask (a temporary
    file alone would be 0600); missing parent folders are created.  Raises ``OSError``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content.encode("utf-8") if isinstance(content, str) else content)
            os.fchmod(fh.fileno(), 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _finite(value: Any, where: str = "") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'a value'} is {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite(v, f"{where}[{i}]")


def dumps(value: Any, error: Callable[[str], Exception], **kwargs: Any) -> str:
    """Strict JSON: a NaN or an infinity is an ``error`` naming where it is, never 'NaN' in the output."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        try:
            _finite(value)
        except ValueError as exc:
            raise error(f"the result is not finite ({exc}): the numbers overflowed; rescale the data") from None
        raise  # pragma: no cover - allow_nan is the only ValueError json raises here
