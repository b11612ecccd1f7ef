"""Reading user files for a run: the data CSV and the initial-parameter file.

Data: a CSV with a header row and one point per row; every column is a coordinate except
an optional ``label`` column (component number 1..K, empty where unknown) for
semi-supervised EM.  Problems are reported with the file, line and column.

Init: YAML or JSON ``{components: [{weight: w, mean: m, variance: v}, ...]}`` in component
order k = 1..K; for d > 1 ``mean`` is a list and ``covariance: [[...]]`` may replace
``variance`` (it must be sigma^2 I for a spherical model).
"""

from __future__ import annotations

import csv
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import DataError
from .safeio import load_yaml, open_text, read_text, utf8_error_line
from .spec import suggest

__all__ = ["Dataset", "load_data", "load_init_components", "parse_family_init", "parse_init_components"]


@dataclass(frozen=True)
class Dataset:
    """Points ``X`` of shape (n, d), their column names, and labels (0 = unknown) or None."""

    X: np.ndarray
    columns: tuple[str, ...]
    labels: np.ndarray | None = None
    source: str = "data"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_data(path: str | os.PathLike) -> Dataset:
    """Read a data CSV (see the module docstring); raise ``DataError`` naming the bad row.

    The file must be a regular file in UTF-8 (a byte-order mark is allowed).
    """
    path = Path(path)
    fh = open_text(path, "data file", DataError)
    try:
        with fh:
            X, labels, coords = _read_csv(fh, path)
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: line {utf8_error_line(path)}: the data file is not UTF-8 text; save it as UTF-8 (or plain ASCII)"
        ) from None
    if X.shape[0] == 0:
        raise DataError(f"{path}: no data rows after the header")
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = map(int, np.argwhere(bad)[0])
        raise DataError(f"{path}: line {r + 2}, column '{coords[c]}': expected a finite number, got {X[r, c]!r}")
    return Dataset(X, tuple(coords), labels, str(path))


_WHOLE = re.compile(r"[0-9, \t+-]*\r?\n?", re.ASCII)


def _fast_parse(fh) -> np.ndarray:
    """The rows after the header with numpy's C parser; ValueError if a row is not plain numbers.

    Counts and binary data (Poisson, Bernoulli, multinomial) are parsed as whole numbers first,
    about twice as fast as parsing floats, and converted exactly (|x| < 2^53; larger whole numbers
    round as the float parser rounds them); a file that turns out to hold other numbers is read
    again as floats.
    """
    start = fh.tell()
    first = fh.readline(1 << 16)
    fh.seek(start)
    with warnings.catch_warnings():  # "no data" is reported by the caller, in our words
        warnings.simplefilter("ignore", UserWarning)
        if _WHOLE.fullmatch(first):
            try:
                # column-major: the runner's (d, n) view of it is then contiguous without another copy
                return np.loadtxt(fh, delimiter=",", dtype=np.int64, ndmin=2).astype(float, order="F")
            except (ValueError, OverflowError):
                fh.seek(start)
        return np.loadtxt(fh, delimiter=",", dtype=float, ndmin=2)


def _read_csv(fh, path: Path):
    first = fh.readline(1 << 16)
    if len(first) >= 1 << 16 and not first.endswith("\n"):
        raise DataError(f"{path}: line 1 (the header) is longer than 65,536 characters")
    header = next(csv.reader([first]), [])
    header = [h.strip() for h in header]
    if not header or header == [""]:
        raise DataError(f"{path}: the file is empty; expected a header row such as 'x' and one point per row")
    if all(_is_number(h) for h in header):
        raise DataError(
            f"{path}: line 1 should be a header with column names (e.g. 'x'), but got numbers "
            f"{first.strip()[:80]!r}; add a header row"
        )
    if len(set(header)) != len(header):
        raise DataError(f"{path}: line 1 repeats a column name: {header}")
    label_col = header.index("label") if "label" in header else None
    coords = [h for h in header if h != "label"]
    if not coords:
        raise DataError(f"{path}: there is no coordinate column, only 'label'")
    if label_col is None:
        try:  # fast path: numpy's C parser
            X = _fast_parse(fh)
        except ValueError:
            fh.seek(0)
            fh.readline()
            X, labels = _slow_parse(fh, path, header, None)
        else:
            labels = None
            if X.size == 0:
                X = X.reshape(0, len(header))
            elif X.shape[1] != len(header):
                raise DataError(f"{path}: rows have {X.shape[1]} values, but the header has {len(header)} columns")
    else:
        X, labels = _slow_parse(fh, path, header, label_col)
    return X, labels, coords


def _slow_parse(fh, path, header, label_col):
    """Row by row, so the first bad row is named exactly."""
    rows, labels = [], []
    for lineno, row in enumerate(csv.reader(fh), start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}: line {lineno} has {len(row)} values, but the header has {len(header)} columns")
        values = []
        for col, cell in enumerate(row):
            cell = cell.strip()
            if col == label_col:
                if cell == "":
                    labels.append(0)
                    continue
                try:
                    lab = int(cell)
                except ValueError:
                    lab = None
                if lab is None or lab < 1 or str(lab) != cell.lstrip("+"):
                    raise DataError(
                        f"{path}: line {lineno}, column 'label': expected a component number "
                        f"1..K or an empty cell, got {cell!r}"
                    )
                labels.append(lab)
                continue
            try:
                v = float(cell)
            except ValueError:
                raise DataError(
                    f"{path}: line {lineno}, column '{header[col]}': expected a number, got {cell!r}"
                ) from None
            if not math.isfinite(v):
                raise DataError(
                    f"{path}: line {lineno}, column '{header[col]}': expected a finite number, got {cell!r}"
                )
            values.append(v)
        rows.append(values)
    ncoord = len(header) - (label_col is not None)
    X = np.array(rows, dtype=float).reshape(len(rows), ncoord)
    return X, (np.array(labels, dtype=np.int64) if label_col is not None else None)


_INIT_KEYS = ("weight", "mean", "variance", "covariance")


def load_init_components(path: str | os.PathLike, dim: int, fields: tuple[str, ...] | None = None) -> list[dict]:
    """Read an init file into per-component dicts: (weight, mean (d,), variance) for a Gaussian, or
    (weight, <parameter>...) for another family when ``fields`` names its parameters."""
    path = Path(path)
    raw, _ = load_yaml(read_text(path, "init file", DataError), str(path), DataError, "YAML or JSON")
    if fields is not None:
        return parse_family_init(raw, fields, str(path))
    return parse_init_components(raw, dim, str(path))


def _components(raw: Any, where: str) -> list:
    if not isinstance(raw, dict) or "components" not in raw:
        raise DataError(
            f"{where}: expected a mapping with the key 'components' (a list, one entry per "
            f"component), but got {type(raw).__name__ if not isinstance(raw, dict) else list(raw)}"
        )
    extra = [k for k in raw if k != "components"]
    if extra:
        raise DataError(f"{where}: unknown key {extra[0]!r}{suggest(extra[0], ['components'])}")
    comps = raw["components"]
    if not isinstance(comps, list) or not comps:
        raise DataError(f"{where}: 'components' should be a non-empty list, but got {comps!r}")
    return comps


def parse_family_init(raw: Any, fields: tuple[str, ...], where: str = "init") -> list[dict]:
    """Per-component dicts {weight, <parameter>: float or (d,) array}; shapes and domains are checked
    against the model by ``FamilyCompiledModel.params_from_components``."""
    keys = ("weight", *fields)
    out = []
    for k, c in enumerate(_components(raw, where)):
        at = f"{where}: components[{k}]"
        if not isinstance(c, dict):
            raise DataError(f"{at} should be a mapping with {', '.join(keys)}, but got {c!r}")
        entry: dict = dict.fromkeys(keys)
        for key, v in c.items():
            if key not in keys:
                raise DataError(f"{at}: unknown key {key!r}{suggest(str(key), keys)} (valid: {', '.join(keys)})")
            if v is None:
                continue
            if isinstance(v, list):
                entry[key] = np.array([_num(e, f"{at}.{key}[{i}]") for i, e in enumerate(v)])
            else:
                entry[key] = _num(v, f"{at}.{key}")
        if entry["weight"] is not None and entry["weight"] < 0:
            raise DataError(f"{at}.weight should be >= 0, but got {c['weight']!r}")
        out.append(entry)
    return out


def _num(v, where, positive=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise DataError(f"{where} should be a finite number, but got {v!r}")
    if positive and v <= 0:
        raise DataError(f"{where} should be > 0, but got {v!r}")
    return float(v)


def parse_init_components(raw: Any, dim: int, where: str = "init") -> list[dict]:
    comps = _components(raw, where)
    out = []
    for k, c in enumerate(comps):
        at = f"{where}: components[{k}]"
        if not isinstance(c, dict):
            raise DataError(f"{at} should be a mapping with weight, mean, variance, but got {c!r}")
        for key in c:
            if key not in _INIT_KEYS:
                raise DataError(f"{at}: unknown key {key!r}{suggest(key, _INIT_KEYS)} (valid: {', '.join(_INIT_KEYS)})")
        entry: dict = {"weight": None, "mean": None, "variance": None}
        if c.get("weight") is not None:
            entry["weight"] = _num(c["weight"], f"{at}.weight")
            if entry["weight"] < 0:
                raise DataError(f"{at}.weight should be >= 0, but got {c['weight']!r}")
        if c.get("mean") is not None:
            m = c["mean"]
            if dim == 1 and isinstance(m, list) and len(m) == 1:
                m = m[0]
            if dim == 1:
                entry["mean"] = np.array([_num(m, f"{at}.mean")])
            else:
                if not isinstance(m, list) or len(m) != dim:
                    raise DataError(f"{at}.mean should be a list of {dim} numbers, but got {m!r}")
                entry["mean"] = np.array([_num(v, f"{at}.mean[{i}]") for i, v in enumerate(m)])
        if c.get("variance") is not None and c.get("covariance") is not None:
            raise DataError(f"{at}: give either variance or covariance, not both")
        if c.get("variance") is not None:
            v = c["variance"]
            if isinstance(v, list) and v and all(isinstance(row, list) for row in v):
                entry["variance"] = _diagonal(v, dim, f"{at}.variance")  # a matrix under 'variance'
            elif isinstance(v, list) and dim > 1:
                if len(v) != dim:
                    raise DataError(
                        f"{at}.variance should be one number or a list of {dim} (a diagonal), but got {v!r}"
                    )
                entry["variance"] = np.array([_num(e, f"{at}.variance[{i}]", positive=True) for i, e in enumerate(v)])
            else:
                entry["variance"] = _num(v, f"{at}.variance", positive=True)
        elif c.get("covariance") is not None:
            entry["variance"] = _diagonal(c["covariance"], dim, f"{at}.covariance")
        out.append(entry)
    return out


def _diagonal(cov, dim, where):
    """sigma^2 from sigma^2 I, the diagonal of a diagonal matrix, or else the whole matrix (full covariance)."""
    try:
        a = np.array(cov, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{where} should be a {dim}x{dim} list of lists, but got {cov!r}") from None
    if a.ndim == 0 and dim == 1:
        a = a.reshape(1, 1)
    if a.shape != (dim, dim):
        raise DataError(f"{where} should be {dim}x{dim}, but got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise DataError(f"{where} should hold finite numbers, but got {cov!r}")
    if not np.allclose(a, a.T, rtol=1e-12, atol=0):
        raise DataError(f"{where} should be symmetric, but got {cov!r}")
    if float(np.linalg.eigvalsh(a)[0]) <= 0:
        raise DataError(
            f"{where} should be positive definite (a covariance), but it is singular or indefinite: {cov!r}"
        )
    diag = np.diag(a).copy()
    if not np.allclose(a, np.diag(diag), rtol=1e-12, atol=0):
        return a
    return float(diag[0]) if np.allclose(diag, diag[0], rtol=1e-12, atol=0) else diag
