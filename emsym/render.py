"""Rendering through the jinja2 templates in ``templates/``.

Templates are looked up in the installed package (``emsym/_data/templates``, put there by
the wheel build) and, for a source checkout or an editable install, in the repository's
``templates/`` folder.  ``$EMSYM_TEMPLATES`` names a folder searched first, so a teacher
can restyle output without touching Python.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from markupsafe import Markup

from .printing import latex
from .safeio import write_atomic
from .texsafe import clean_mathml, math_problem

if TYPE_CHECKING:  # solve imports render and plots at run time
    from .derive import Derivation
    from .solve import Solution

__all__ = [
    "FORMATS",
    "compile_pdf",
    "data_dir",
    "render_derivation",
    "render_questions",
    "render_sheet",
    "template_dirs",
    "write_atomic",
]

FORMATS = {"md": "md", "html": "html", "tex": "tex"}  # sheet format -> template suffix

_HERE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """A bundled folder (``templates`` or ``models``): installed copy first, then the checkout."""
    for base in (_HERE / "_data" / name, _HERE.parent / name):
        if base.is_dir():
            return base
    raise FileNotFoundError(f"emsym's bundled folder {name!r} is missing from the installation")


def template_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("EMSYM_TEMPLATES"):
        dirs.append(Path(os.environ["EMSYM_TEMPLATES"]))
    dirs += [_HERE / "_data" / "templates", _HERE.parent / "templates"]
    return [d for d in dirs if d.is_dir()]


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    # in LaTeX's default OT1 text font these print as an em-dash and inverted punctuation
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "^": r"\textasciicircum{}",
}


# Where a line may break inside typed formulas such as (gamma_k1*x_1 + ...)/(...) or log|Sigma_k|.
_BREAK_AFTER = frozenset("*/=,|")


def tex_escape(value) -> str:
    """Plain text made safe for LaTeX; long formulas in it may break after * / = , |."""
    if isinstance(value, dict):
        value = ", ".join(f"{k}: {v}" for k, v in value.items())
    return "".join(_TEX.get(ch, ch) + ("\\allowbreak{}" if ch in _BREAK_AFTER else "") for ch in str(value))


_ENVS: dict = {}


def _env(autoescape: bool = False, strict: bool = True) -> jinja2.Environment:
    """The jinja2 environment of one kind of output, made once per process (templates compile once)."""
    key = (autoescape, strict, tuple(template_dirs()))
    if key not in _ENVS:
        _ENVS[key] = _new_env(autoescape, strict)
    return _ENVS[key]


def _new_env(autoescape: bool = False, strict: bool = True) -> jinja2.Environment:
    # Sheets are lenient (a missing optional key renders as nothing), so restyled templates
    # may test any key; the derivation templates are strict.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in template_dirs()]),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined if strict else jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["tex"] = tex_escape
    env.filters["latex"] = latex
    # sheet filters: author text with $...$ math for HTML (MathML, sanitised) and for LaTeX (whitelisted)
    env.filters["mathml"] = lambda tex, display=False: Markup(_mathml(tex, display))
    env.filters["mathrows"] = lambda rows: Markup(_mathml_rows(rows))
    env.filters["texrows"] = _tex_rows
    env.filters["inline"] = lambda text: Markup(_inline_html(text))
    env.filters["texmath"] = _tex_keep_math
    env.filters["startvalues"] = _start_values
    env.filters["param"] = _param_tex
    env.filters["number"] = _number_text
    env.filters["point"] = _point_text
    env.filters["markdown"] = lambda text: Markup(markdown_html(text))
    env.filters["markdown_tex"] = markdown_tex
    return env


def page_env() -> jinja2.Environment:
    """The HTML environment of the sheets (escaping on, the same filters), for the practice app's pages."""
    return _env(autoescape=True, strict=False)


def render_part_html(result) -> str:
    """One part's worked solution as an HTML fragment, as the sheet shows it."""
    env = page_env()
    return env.get_template(f"sheet/parts/{result.part.kind}.html.j2").render(r=result, fig=None)


def sheet_fragment(solution) -> str:
    """The worked sheet's body with its style, for a notebook (``Solution._repr_html_``)."""
    page = render_sheet(solution, "html")
    style = re.search(r"<style>.*?</style>", page, re.S)
    body = re.search(r"<body>(.*)</body>", page, re.S)
    return (style.group(0) if style else "") + (body.group(1) if body else page)


def mathml(tex: str, display: bool = False) -> str:
    """Sanitised MathML for LaTeX (the sheets' conversion)."""
    return _mathml(tex, display)


def _model_view(spec) -> dict:
    """The spec's options as a reader writes them: 'fixed [1, 4]', 'gamma(2, 1)', not a Python dict.

    In file order; ``family`` is left out for the Gaussian (the default), ``covariance`` in one
    dimension (where it means nothing) and ``name`` always (the title shows it).
    """
    out = {}
    for key, value in spec.to_dict().items():
        if key == "name" or (key == "family" and value == "gaussian") or (key == "covariance" and not spec.vector):
            continue
        if key == "family" and isinstance(value, dict):
            value = f"density {value.get('density')}"
        elif key == "prior":
            value = "; ".join(
                f"{target} ~ {kind}({', '.join(map(str, h if isinstance(h, list) else [h]))})"
                for target, p in value.items()
                for kind, h in p.items()
            )
        elif isinstance(value, dict) and ("fixed" in value or "linked" in value):  # null entries: free
            ((how, entries),) = value.items()  # linked in mixtools' form: linked [a, 4a]
            value = f"{how} [{', '.join('free' if e is None else str(e) for e in entries)}]"
        out[key] = value
    return out


def render_derivation(d: Derivation, fmt: str = "text") -> str:
    """The derivation as plain text or as a standalone LaTeX document."""
    name = {"text": "derivation.txt.j2", "latex": "derivation.tex.j2"}[fmt]
    spec = d.spec
    return _env().get_template(name).render(d=d, spec=spec, model=_model_view(spec))


# -- worked solution sheets ------------------------------------------------------------------
_CAPTIONS = {
    "densities": "The data (ticks) with the component densities at convergence; dashed: the mixture at the start.",
    "responsibilities": "Each point coloured by its responsibility for component 1.",
    "iterations": "The first EM iterations side by side.",
    "loglik": "The log-likelihood after each iteration.",
    "prototypes": "Each component's probabilities at convergence, one row per component: its prototype.",
}


def _mathml(tex: str, display: bool = False) -> str:
    """MathML for a page: latex2mathml's output rebuilt from allowed elements (``texsafe``)."""
    import latex2mathml.converter

    return clean_mathml(latex2mathml.converter.convert(tex, display="block" if display else "inline"))


def _mathml_rows(rows) -> str:
    """Display rows (``Step.rows``) as one block of MathML displays, the continuation rows indented."""
    if len(rows) == 1:
        return _mathml(rows[0], True)
    return '<div class="rows">' + "".join(_mathml(r, True) for r in rows) + "</div>"


def _tex_rows(rows) -> str:
    """Display rows as one ``aligned`` block (amsmath), the continuation rows indented."""
    if len(rows) == 1:
        return rows[0]
    return r"\begin{aligned}&" + r" \\ &\qquad ".join(rows) + r"\end{aligned}"


def _inline_html(text: str) -> str:
    """Plain text with $...$ math: HTML-escaped, the math as MathML."""
    import html
    import re

    parts = re.split(r"(\$[^$]+\$)", text or "")
    out = []
    for part in parts:
        if part.startswith("$") and part.endswith("$") and len(part) > 2:
            out.append(_mathml(part[1:-1]))
        else:
            out.append(html.escape(part).replace("\n\n", "</p><p>"))
    return "".join(out)


# -- Markdown in exercise statements ------------------------------------------------------------
# CommonMark through markdown-it-py with raw HTML off (it is escaped) and images off (a sheet loads
# nothing from the network); $...$ math is set aside before parsing, so Markdown never sees its
# underscores and stars, and put back as sanitised MathML (HTML) or whitelisted LaTeX (TeX).
_MATH = re.compile(r"\$[^$]+\$")


def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).disable("image")


def _set_math_aside(text: str) -> tuple[str, list[str]]:
    maths: list[str] = []

    def keep(m: re.Match) -> str:
        maths.append(m.group(0)[1:-1])
        return f"EMSYMMATH{len(maths) - 1}X"

    return _MATH.sub(keep, text or ""), maths


_PLACEHOLDER = re.compile(r"EMSYMMATH(\d+)X")


def markdown_html(text: str) -> str:
    """A statement's Markdown as HTML, its math as sanitised MathML."""
    protected, maths = _set_math_aside(text)
    html = _markdown().render(protected)
    return _PLACEHOLDER.sub(lambda m: _mathml(maths[int(m.group(1))]), html)


def markdown_tex(text: str) -> str:
    """A statement's Markdown as LaTeX (paragraphs, bold, italics, lists, code), math whitelisted."""
    protected, maths = _set_math_aside(text)
    out: list[str] = []
    blocks = {
        "bullet_list_open": "\\begin{itemize}\n",
        "bullet_list_close": "\\end{itemize}\n",
        "ordered_list_open": "\\begin{enumerate}\n",
        "ordered_list_close": "\\end{enumerate}\n",
        "list_item_open": "\\item ",
        "heading_open": "\\paragraph{",
        "heading_close": "}\n",
    }
    for tok in _markdown().parse(protected):
        if tok.type in blocks:
            out.append(blocks[tok.type])
        elif tok.type == "paragraph_close":
            out.append("\n" if tok.hidden else "\n\n")
        elif tok.type == "inline":
            out.append(_inline_tex(tok.children or []))
        elif tok.type in ("code_block", "fence"):
            out.append("".join(f"\\texttt{{{tex_escape(line)}}}\\\\\n" for line in tok.content.splitlines()))
    text_out = "".join(out).strip()

    def put_back(m: re.Match) -> str:
        tex = maths[int(m.group(1))]
        return f"${tex}$" if math_problem(tex) is None else tex_escape(f"${tex}$")

    return _PLACEHOLDER.sub(put_back, text_out)


_INLINE_TEX = {
    "strong_open": "\\textbf{",
    "strong_close": "}",
    "em_open": "\\emph{",
    "em_close": "}",
    "softbreak": "\n",
    "hardbreak": "\\\\\n",
}


def _inline_tex(children) -> str:
    parts = []
    for child in children:
        if child.type in _INLINE_TEX:
            parts.append(_INLINE_TEX[child.type])
        elif child.type == "text":
            parts.append(tex_escape(child.content))
        elif child.type == "code_inline":
            parts.append(f"\\texttt{{{tex_escape(child.content)}}}")
    return "".join(parts)  # link_open/close drop the target and keep the link text


def _tex_keep_math(text) -> str:
    """Plain text for LaTeX, escaping everything but $...$ math whose commands are all allowed.

    Exercises are checked when they are loaded; math that slipped past (a Solution built in
    Python) is printed as text here, never handed to TeX as commands.
    """
    import re

    parts = re.split(r"(\$[^$]+\$)", str(text or ""))
    return "".join(
        p if p.startswith("$") and p.endswith("$") and len(p) > 2 and math_problem(p[1:-1]) is None else tex_escape(p)
        for p in parts
    )


def _number_text(v) -> str:
    """A data value as the author wrote it: 3 not 3.0, 0.25 as 0.25 (repr keeps every digit)."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _point_text(p) -> str:
    """A data point: a number, or a vector in brackets."""
    if isinstance(p, (tuple, list)):
        return "(" + ", ".join(_number_text(v) for v in p) + ")"
    return _number_text(p)


def _param_tex(name: str) -> str:
    """LaTeX of one of emsym's parameter names (sigma2_2 -> sigma^2_2), for headings in math."""
    import sympy as sp

    return latex(sp.Symbol(name))


def _update_label(u, d) -> str:
    """The heading of an update: its name in LaTeX (sigma2_2 -> sigma^2_2), or for a family, whose
    parameters are named in words, its symbol (rate -> lambda_k, p -> p_kl)."""
    if d.spec.family == "gaussian":
        return _param_tex(u.name)
    return latex(u.param.symbol)


def _how_to_answer(part) -> str:
    """What a student types for a part, as a question sheet says it."""
    if part.kind == "choice":
        return (
            "Answer with the letters of every correct option (e.g. a, c)."
            if part.spec.get("multiple")
            else "Answer with the letter of the correct option (e.g. b)."
        )
    if part.kind == "formula":
        return f"Answer with a formula in the names {', '.join(part.spec['names'])}."
    if part.kind == "numeric":
        return "Answer with a number."
    if part.kind == "assignment":
        return "Answer with one component number per point, in order (e.g. 2, 2, 1)."
    return "Answer in words and formulas; this part is marked by hand."


def _start_values(component: dict) -> str:
    """One component's starting values in file order: weight, mean, variance, or a family's own (rate, p)."""
    return ", ".join(f"{key} {_plain_number(v)}" for key, v in component.items() if v is not None)


def _plain_number(v) -> str:
    import numpy as np

    a = np.asarray(v, dtype=float)
    if a.size == 1:  # a 1-d mean is a one-element vector
        return f"{float(a.reshape(-1)[0]):g}"
    return "[" + ", ".join(_plain_number(e) for e in a) + "]"


def render_questions(exercise, fmt: str = "md") -> str:
    """A question sheet for an exercise: the problem and every part's prompt, without answers.

    It needs no solving, so it is quick; hand it out before the worked sheet (``render_sheet``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"sheet format should be one of {', '.join(FORMATS)}, not {fmt!r}")
    env = _env(autoescape=(fmt == "html"), strict=False)
    from .exercise import SOURCE_KEYS

    source = {k: exercise.source.get(k) for k in SOURCE_KEYS}
    return env.get_template(f"sheet/questions.{FORMATS[fmt]}.j2").render(
        ex=exercise, source=source, model=_model_view(exercise.model), how=_how_to_answer
    )


def compile_pdf(tex: str, files: dict[str, bytes] | None = None, name: str = "sheet") -> bytes:
    """PDF bytes from a LaTeX document through pdflatex, in a scratch folder (``files``: figures by name).

    Raises ``EmsymError`` with what to install when pdflatex is missing, and with the end of
    pdflatex's log when the document does not compile.
    """
    import shutil
    import subprocess

    from .exceptions import EmsymError

    if shutil.which("pdflatex") is None:
        raise EmsymError(
            "--format pdf needs pdflatex, which is not installed (Debian: apt-get install "
            "texlive-latex-base texlive-latex-recommended); or write --format tex and compile it yourself"
        )
    with tempfile.TemporaryDirectory(prefix="emsym-pdf-") as tmp:
        folder = Path(tmp)
        for rel, blob in (files or {}).items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
        (folder / f"{name}.tex").write_text(tex, encoding="utf-8")
        try:
            proc = subprocess.run(
                ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", f"{name}.tex"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            raise EmsymError(f"{name}: pdflatex took more than 300 s") from None
        pdf = folder / f"{name}.pdf"
        if proc.returncode != 0 or not pdf.is_file():
            tail = "\n".join(line for line in proc.stdout.splitlines()[-12:] if line.strip())
            raise EmsymError(f"{name}: pdflatex failed:\n{tail}")
        return pdf.read_bytes()


def render_sheet(
    solution: Solution, fmt: str = "md", figures: dict | None = None, figure_links: dict | None = None
) -> str:
    """A worked solution sheet: fmt 'md', 'html' (self-contained) or 'tex'.

    ``figures`` maps a figure name to PNG bytes (embedded in HTML); ``figure_links`` maps it
    to a relative file name (Markdown and LaTeX reference the files).
    """
    import base64

    if fmt not in FORMATS:
        raise ValueError(f"sheet format should be one of {', '.join(FORMATS)}, not {fmt!r}")
    env = _env(autoescape=(fmt == "html"), strict=False)
    figs = []
    for name, png in (figures or {}).items():
        src = (
            f"data:image/png;base64,{base64.b64encode(png).decode()}"
            if fmt == "html"
            else (figure_links or {}).get(name)
        )
        if src:
            figs.append({"name": name, "src": src, "caption": _CAPTIONS.get(name, name)})
    ex = solution.exercise
    d = solution.derivation
    shown = (
        "Mixture density",
        "Log-likelihood",
        "E-step",
        "Q function",
        "Objective with labelled points",
        "E-step with labelled points",
        "Log density of a component",
        "Log prior (MAP-EM)",
        "MAP objective",
    )
    model_steps = [s for s in d.steps if s.param is None and s.title in shown]
    # The M-step as the engine derived it: the Lagrangian and multiplier steps, then each update.
    lagrange = [s for s in d.steps if s.param is None and s.title not in shown + ("Complete-data log-likelihood",)]
    mstep = [
        {
            "upd": u,
            "label": _update_label(u, d),
            "steps": [s for s in d.steps_for(u.name) if not s.title.startswith("M-step update")],
        }
        for u in d.updates
    ]
    tpl = env.get_template(f"sheet/base.{FORMATS[fmt]}.j2")
    from .exercise import SOURCE_KEYS

    source = {k: ex.source.get(k) for k in SOURCE_KEYS}  # every key present: templates test them plainly
    return tpl.render(
        sol=solution,
        ex=ex,
        source=source,
        d=d,
        model=_model_view(ex.model),
        model_steps=model_steps,
        lagrange=lagrange,
        mstep=mstep,
        parts=solution.parts,
        tables=solution.tables,
        errata=solution.errata,
        figures=figs,
        kind_template=lambda kind: f"sheet/parts/{kind}.{FORMATS[fmt]}.j2",
    )
