"""Rendering through the jinja2 templates in ``templates/``.

Templates are looked up in the installed package (``emsym/_data/templates``, put there by
the wheel build) and, for a source checkout or an editable install, in the repository's
``templates/`` folder.  ``$EMSYM_TEMPLATES`` names a folder searched first, so a teacher
can restyle output without touching Python.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import jinja2

from .derive import Derivation
from .printing import latex

__all__ = ["data_dir", "render_derivation", "template_dirs", "write_atomic"]

_HERE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """A bundled folder (``templates`` or ``models``): installed copy first, then the checkout."""
    for base in (_HERE / "_data" / name, _HERE.parent / name):
        if base.is_dir():
            return base
    raise FileNotFoundError(f"emsym's bundled folder {name!r} is missing from the installation")


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def template_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("EMSYM_TEMPLATES"):
        dirs.append(Path(os.environ["EMSYM_TEMPLATES"]))
    dirs += [_HERE / "_data" / "templates", _HERE.parent / "templates"]
    return [d for d in dirs if d.is_dir()]


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(value) -> str:
    """Plain text made safe for LaTeX."""
    if isinstance(value, dict):
        value = ", ".join(f"{k}: {v}" for k, v in value.items())
    return "".join(_TEX.get(ch, ch) for ch in str(value))


def _env(autoescape: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in template_dirs()]),
        autoescape=autoescape, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["tex"] = tex_escape
    env.filters["latex"] = latex
    return env


def render_derivation(d: Derivation, fmt: str = "text") -> str:
    """The derivation as plain text or as a standalone LaTeX document."""
    name = {"text": "derivation.txt.j2", "latex": "derivation.tex.j2"}[fmt]
    spec = d.spec
    return _env().get_template(name).render(d=d, spec=spec, model=spec.to_dict())
