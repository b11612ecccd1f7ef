"""Author text in sheets: a whitelist of LaTeX commands, and MathML cleaned before it reaches a page.

Exercise text (statement, prompts, options, notes) may hold math between ``$ … $``; everything
outside the dollars is escaped by the renderers.  The math itself is where a hostile or careless
file could do harm, so it passes two gates:

- ``math_problem(tex)`` (checked when an exercise is loaded, and again when a LaTeX sheet is
  rendered) accepts only the commands in ``ALLOWED_COMMANDS`` -- Greek letters, operators,
  accents, fonts and spacing -- and refuses TeX's ``^^`` character codes, so ``\\input``,
  ``\\write``, ``\\def``, ``\\catcode``, ``\\href`` and the like never reach pdflatex.
- ``clean_mathml(markup)`` rebuilds the MathML that latex2mathml produced from an allow-list of
  MathML elements and presentation attributes, escaping all text: a ``<script>`` inside
  ``\\text{…}`` is dropped (its text stays, escaped), and no ``href`` or event attribute survives.

>>> math_problem(r"\\hat{\\mu}_k = \\frac{1}{N_k}\\sum_n \\gamma_{nk} x_n") is None
True
>>> print(math_problem(r"\\input{/etc/passwd}"))
the LaTeX command \\input is not allowed in exercise text (allowed: Greek letters, \\frac, \\sum, \\hat, \\text, ...)
>>> clean_mathml('<math><mtext><script>alert(1)</script><b onclick="x()">y</b></mtext></math>')
'<math><mtext>alert(1)y</mtext></math>'
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

__all__ = ["ALLOWED_COMMANDS", "clean_mathml", "math_problem", "math_segments"]

_GREEK = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi varpi "
    "rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma "
    "Upsilon Phi Psi Omega"
)
_MATH = (
    "frac dfrac tfrac sqrt sum prod int log ln exp det max min arg sin cos lim sup inf infty partial nabla "
    "cdot cdots ldots dots vdots ddots times div pm mp le leq ge geq ne neq approx sim propto equiv in notin "
    "subset subseteq cup cap to rightarrow leftarrow Rightarrow Leftrightarrow mapsto mid left right big Big "
    "bigl bigr Bigl Bigr hat bar tilde vec dot ddot widehat widetilde overline underline mathbf mathrm "
    "mathit mathcal mathbb mathsf boldsymbol text textrm textit textbf operatorname quad qquad top "
    "intercal lbrace rbrace langle rangle lvert rvert lVert rVert vert Vert ell ast star circ forall exists "
    "neg land lor prime emptyset setminus ldots cdotp colon displaystyle limits nolimits begin end"
)
ALLOWED_COMMANDS = frozenset((_GREEK + " " + _MATH).split())
_ENVIRONMENTS = frozenset({"matrix", "pmatrix", "bmatrix", "aligned", "cases", "array"})

_COMMAND = re.compile(r"\\([A-Za-z]+|.)", re.DOTALL)
_SEGMENT = re.compile(r"(\$[^$]+\$)")


def math_segments(text: str) -> list[str]:
    """The ``$ … $`` math segments of a text, without their dollars."""
    return [part[1:-1] for part in _SEGMENT.split(text or "") if part.startswith("$") and len(part) > 2]


def math_problem(tex: str) -> str | None:
    """Why this math may not be used in a sheet, or None when every command is allowed."""
    if "^^" in tex:
        return "'^^' (a TeX character code) is not allowed in exercise text"
    for m in _COMMAND.finditer(tex):
        name = m.group(1)
        if len(name) == 1 and not name.isalpha():
            continue  # \, \; \! \{ \} \| \\ and friends: spacing and escaped symbols
        if name not in ALLOWED_COMMANDS:
            return (
                f"the LaTeX command \\{name} is not allowed in exercise text (allowed: Greek letters, \\frac, "
                "\\sum, \\hat, \\text, ...)"
            )
        if name in ("begin", "end"):
            env = re.match(r"\s*\{([A-Za-z*]+)\}", tex[m.end() :])
            if not env or env.group(1) not in _ENVIRONMENTS:
                return f"only the environments {', '.join(sorted(_ENVIRONMENTS))} may follow \\{name}"
    return None


# -- MathML ------------------------------------------------------------------------------------
_ELEMENTS = frozenset(
    """math semantics annotation mrow mi mn mo ms mtext mspace msup msub msubsup mfrac msqrt mroot mstyle
    merror mpadded mphantom mfenced menclose mtable mtr mtd mlabeledtr munder mover munderover mmultiscripts
    mprescripts none maligngroup malignmark""".split()
)
_ATTRIBUTES = frozenset(
    """display xmlns mathvariant mathsize mathcolor stretchy fence separator separators lspace rspace form
    largeop movablelimits accent accentunder symmetric minsize maxsize linethickness columnalign rowalign
    columnspacing rowspacing columnlines rowlines frame framespacing equalrows equalcolumns displaystyle
    scriptlevel width height depth notation align open close encoding""".split()
)
_SAFE_VALUE = re.compile(r"[A-Za-z0-9 .#%,:;/+-]*")  # no url(), no javascript:, no quotes or brackets


class _Cleaner(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in _ELEMENTS:
            return
        kept = "".join(
            f' {k}="{html.escape(v or "")}"'
            for k, v in attrs
            if k in _ATTRIBUTES and _SAFE_VALUE.fullmatch(v or "") and "javascript" not in (v or "").lower()
        )
        self.out.append(f"<{tag}{kept}>")
        self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in _ELEMENTS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in self.open:
            while self.open:
                top = self.open.pop()
                self.out.append(f"</{top}>")
                if top == tag:
                    break

    def handle_data(self, data):
        self.out.append(html.escape(data, quote=False))


def clean_mathml(markup: str) -> str:
    """MathML rebuilt from allowed elements and attributes, all text escaped (see the module docstring)."""
    cleaner = _Cleaner()
    cleaner.feed(markup)
    cleaner.close()
    cleaner.out.extend(f"</{tag}>" for tag in reversed(cleaner.open))
    return "".join(cleaner.out)
