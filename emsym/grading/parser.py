"""A whitelisted parser for typed answers: student text never reaches eval, exec or sympy.

Grammar (precedence low to high; ``^`` and ``**`` are right-associative; unary minus binds
looser than a power, so ``-x^2`` is ``-(x^2)``)::

    answer  := expr ("=" expr)?            (an equation only where the question asks for one)
    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/" | implicit) unary)*
    unary   := ("+" | "-") unary | BIGOP term | power
    power   := atom (("^" | "**") unary)?
    atom    := NUMBER | NAME | FUNCTION "(" expr ")" | "(" expr ")"
             | ("sum" | "prod") "(" expr "," INDEX ["," LOW "," HIGH] ")"
             | "frac" "(" expr ")" "(" expr ")"          (LaTeX's \\frac{a}{b})
    BIGOP   := ("sum" | "prod" | "Σ" | "∑" | "∏") "_" (INDEX | "{" INDEX ["=" LOW] "}") ["^" HIGH]

A sum or product takes the rest of its term as its body, as in print: ``sum_n gamma_nk x_n / N_k``
is ``sum_n (gamma_nk*x_n/N_k)``, and ``sum_n x_n + 1`` is ``(sum_n x_n) + 1``.

Names are letters and digits with an optional subscript (``x_1``, ``gamma_k1``, ``x_{1}``,
``gamma_{n,k}``, ``hatmu_k``); Greek letters may be typed as Unicode (``π_k``, ``σ²``, ``𝜇``, ``µ``)
or as LaTeX (``\\gamma_{nk}``, ``\\hat{\\mu}_k``, ``\\sigma_k^2``).  ``gamma(z_nk)`` (Bishop's
notation) reads as ``gamma_nk``.  Functions: exp, log (= ln), sqrt, abs.  Constants: ``pi`` and
``e`` unless the question declares them as names.  Implicit multiplication only where it is
unambiguous -- a number before a name or "(", ")" before "(" or a name, a space between two
known names, and a known name, a space and "(" (``N_k(x)`` without the space may mean a
function and is refused) -- and the reading is shown back.

LaTeX is read through a whitelist (Greek letters, ``\\frac``, ``\\sum``, ``\\prod``, ``\\sqrt``,
``\\log``, ``\\ln``, ``\\exp``, ``\\hat``, ``\\left``/``\\right``, ``\\cdot``, ``\\times``,
spacing, ``\\mathbf``-style wrappers); any other command is refused with its column.

Limits (each refusal names the limit): length, nesting depth, number of nodes, the size of
a number literal and of a constant exponent.  Parsing is linear in the input.

>>> parse("2x + pi_k N_k", names={"x", "pi_k", "N_k"}).text
'2*x + pi_k*N_k'
>>> parse(r"\\frac{\\sum_{n=1}^{N} \\gamma_{nk} x_n}{N_k}").text
'(sum_{n=1}^{N} gamma_nk*x_n)/N_k'
>>> parse("(a+b))", names={"a", "b"})
Traceback (most recent call last):
...
emsym.exceptions.InvalidAnswer: column 6: unexpected ')'
  (a+b))
       ^
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from dataclasses import dataclass

from ..exceptions import InvalidAnswer

__all__ = ["BIGOPS", "DIGITS", "FUNCTIONS", "LIMITS", "InvalidAnswer", "Parsed", "parse", "to_text"]

LIMITS = {
    "length": 1000,  # characters
    "depth": 40,  # nested brackets / operators
    "nodes": 400,  # numbers, names and operations
    "number_digits": 30,  # digits in one literal
    "number_value": 1e12,
    "exponent": 64,  # |constant exponent|
    "bigops": 6,  # sums and products nested in one another
}

# ASCII digits only: str.isdigit() is also true for '²', '①' and other digits float() and int() refuse.
DIGITS = frozenset("0123456789")
FUNCTIONS = {"exp": "exp", "log": "log", "ln": "log", "sqrt": "sqrt", "abs": "abs"}
CONSTANTS = {"pi": math.pi, "e": math.e}
BIGOPS = ("sum", "prod")

_GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "θ": "theta",
    "λ": "lambda",
    "μ": "mu",
    "ν": "nu",
    "π": "pi",
    "ρ": "rho",
    "σ": "sigma",
    "τ": "tau",
    "φ": "phi",
    "ϕ": "phi",
    "ψ": "psi",
    "ω": "omega",
    "η": "eta",
    "κ": "kappa",
    "ξ": "xi",
    "ζ": "zeta",
    "χ": "chi",
    "Σ": "SIGMA",  # a sum or the name Sigma, decided by the lexer
    "Π": "Pi",
    "Γ": "Gamma",
    "Λ": "Lambda",
    "Θ": "Theta",
    "Φ": "Phi",
    "Ω": "Omega",
    "Δ": "Delta",
}
_SUPER = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+"))
_SUB = {chr(0x2080 + i): str(i) for i in range(10)} | {
    "ₖ": "k",
    "ₙ": "n",
    "ᵢ": "i",
    "ⱼ": "j",
    "ₗ": "l",
    "ₘ": "m",
}
_OPS = {"·": "*", "×": "*", "∗": "*", "⋅": "*", "−": "-", "–": "-", "÷": "/", "⁄": "/", "∑": "sum", "∏": "prod"}
_OPS["√"] = "sqrt"

# -- LaTeX: a whitelist of commands, each rewritten to the plain grammar ----------------------------
_LATEX_GREEK = {
    name: name
    for name in (
        "alpha beta gamma delta epsilon zeta eta theta kappa lambda mu nu xi pi rho sigma tau phi chi psi omega "
        "Gamma Delta Theta Lambda Pi Sigma Phi Omega"
    ).split()
} | {"varepsilon": "epsilon", "varphi": "phi", "vartheta": "theta"}
_LATEX_WORDS = {
    "frac": "frac",
    "dfrac": "frac",
    "tfrac": "frac",
    "sum": "sum",
    "prod": "prod",
    "sqrt": "sqrt",
    "log": "log",
    "ln": "ln",
    "exp": "exp",
    "cdot": "*",
    "times": "*",
    "ast": "*",
    "div": "/",
    "left": "",
    "right": "",
    "bigl": "",
    "bigr": "",
    "Bigl": "",
    "Bigr": "",
    "big": "",
    "Big": "",
    "quad": " ",
    "qquad": " ",
    "infty": "infty",
}
_LATEX_SPACES = {",": " ", ";": " ", ":": " ", "!": "", " ": " "}
_LATEX_WRAPPERS = ("mathbf", "boldsymbol", "bm", "mathrm", "mathit", "operatorname")
_HAT = re.compile(r"\\(?:hat|widehat)\s*(?:\{\s*\\?([A-Za-z]+)\s*\}|\\([A-Za-z]+)|([A-Za-z]))")
_WRAP = re.compile(r"\\(?:" + "|".join(_LATEX_WRAPPERS) + r")\s*\{\s*(\\?[A-Za-z]+)\s*\}")
# x^2_k (superscript first) is x_k^2
_SUP_SUB = re.compile(r"(\\?[A-Za-z]+)\^(\{[^{}]*\}|[0-9A-Za-z])_(\{[^{}]*\}|[0-9A-Za-z]+)")


@dataclass(frozen=True)
class Parsed:
    """A parsed answer: the tree, its canonical text, its names, and notes on how it was read."""

    tree: tuple
    text: str
    names: frozenset
    implicit: bool


# -- lexing ------------------------------------------------------------------------------
def _rewrite(src: str, cols: list[int], pattern: re.Pattern, fn) -> tuple[str, list[int]]:
    """Regex substitution that keeps, for every output character, the column it came from."""
    out: list[str] = []
    out_cols: list[int] = []
    last = 0
    for m in pattern.finditer(src):
        out.append(src[last : m.start()])
        out_cols.extend(cols[last : m.start()])
        rep = fn(m)
        out.append(rep)
        out_cols.extend([cols[m.start()]] * len(rep))
        last = m.end()
    out.append(src[last:])
    out_cols.extend(cols[last:])
    return "".join(out), out_cols


def _latex(src: str, cols: list[int], original: str) -> tuple[str, list[int]]:
    """Rewrite whitelisted LaTeX commands to the plain grammar; refuse any other command."""
    if "\\" not in src and "$" not in src:
        return src, cols
    src, cols = _rewrite(src, cols, re.compile(r"\$+|\\[()\[\]]"), lambda m: " ")
    src, cols = _rewrite(src, cols, _HAT, lambda m: "hat" + (m.group(1) or m.group(2) or m.group(3)))
    src, cols = _rewrite(src, cols, _WRAP, lambda m: m.group(1))

    def command(m: re.Match) -> str:
        word = m.group(1)
        after = m.string[m.end() : m.end() + 1]
        gap = " " if after.isalpha() else ""  # \mu\sigma, \mu x: two names, not one
        before = m.string[m.start() - 1 : m.start()]
        if word in _LATEX_GREEK:
            return (" " if before.isalnum() else "") + _LATEX_GREEK[word] + gap
        if word in _LATEX_WORDS:
            rep = _LATEX_WORDS[word]
            return f" {rep}{gap}" if rep not in ("", " ", "*", "/") else rep
        if word in _LATEX_SPACES:
            return _LATEX_SPACES[word]
        col = cols[m.start()]
        raise InvalidAnswer(
            f"the LaTeX command \\{word} is not supported (use \\frac, \\sum, \\sqrt, \\log, \\exp, "
            "Greek letters, \\hat, \\cdot)",
            col,
            original,
        )

    return _rewrite(src, cols, re.compile(r"\\([A-Za-z]+|[^A-Za-z])"), command)


def _normalise(text: str) -> tuple[str, list[int]]:
    """Map Unicode and LaTeX spellings to ASCII; keep the original column of every output character.

    Subscript digits and letters become a subscript (π₁₂ -> pi_12, γₙₖ -> gamma_nk), a run of
    superscripts a power (x²³ -> x^(23)), mathematical letters their plain letter (𝜇 -> mu).
    """
    out, cols = [], []
    in_sub = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        col = i + 1
        if 0x1D400 <= ord(ch) <= 0x1D7FF or ch == "µ":  # mathematical alphanumerics, the micro sign
            ch = unicodedata.normalize("NFKC", ch)
        if i + 1 < n and text[i + 1] == "\u0302" and (ch.isalpha()):  # combining circumflex: a hat
            rep = "hat" + _GREEK.get(ch, ch)
            out.append(rep)
            cols.extend([col] * len(rep))
            i += 2
            in_sub = False
            continue
        if ch in _SUB:
            rep = _SUB[ch] if in_sub else "_" + _SUB[ch]
            in_sub = True
        elif ch in _SUPER:
            j = i
            while j < n and text[j] in _SUPER:
                j += 1
            run = "".join(_SUPER[c] for c in text[i:j])
            rep = "^" + run if len(run) == 1 else f"^({run})"
            out.append(rep)
            cols.extend([col] * len(rep))
            i = j
            in_sub = False
            continue
        else:
            in_sub = False
            rep = _GREEK.get(ch) or _OPS.get(ch) or ch
            if ch in ("∑", "∏", "√"):
                rep = f" {rep}"
        out.append(rep)
        cols.extend([col] * len(rep))
        i += 1
    return "".join(out), cols


def _subscript(src: str, j: int, cols: list[int], original: str) -> tuple[str, int]:
    """Read a subscript after '_' at src[j]: {letters and digits} or a run of letters and digits."""
    n = len(src)
    if j < n and src[j] == "{":
        k = src.find("}", j)
        if k < 0:
            raise InvalidAnswer("a subscript '{' is not closed", cols[j], original)
        sub = src[j + 1 : k].replace(",", "").replace(" ", "")
        if not sub or not (sub.isascii() and sub.isalnum()):
            raise InvalidAnswer("a subscript should be letters and digits, e.g. x_{1}", cols[j], original)
        return sub, k + 1
    k = j
    while k < n and src[k].isascii() and src[k].isalnum():
        k += 1
    if k == j:
        raise InvalidAnswer("'_' should be followed by a subscript, e.g. x_1", cols[j - 1], original)
    return src[j:k], k


def _bound(text: str, col: int, original: str, what: str):
    """A sum's bound: a whole number or a name (N, K); anything else is refused."""
    text = text.strip()
    if text and all(c in DIGITS for c in text) and len(text) <= 6:
        return int(text)
    if text.isascii() and text.isalpha() and len(text) <= 8 and text != "infty":
        return text
    if text in ("infty", "inf", "oo"):
        raise InvalidAnswer(f"the {what} bound of a sum must be finite (N, K or a whole number)", col, original)
    raise InvalidAnswer(
        f"the {what} bound of a sum must be a whole number or a size such as N or K, not {text[:20]!r}", col, original
    )


def _bigop_header(src: str, j: int, cols: list[int], original: str, col: int):
    """Read '_n', '_{n}', '_{n=1}' and an optional '^N' / '^{N}' after sum or prod."""
    n = len(src)
    if j < n and src[j] == "{":
        k = src.find("}", j)
        if k < 0:
            raise InvalidAnswer("the '{' after sum_ is not closed", cols[j], original)
        inside = src[j + 1 : k].replace(" ", "")
        j = k + 1
        idx, _, low_text = inside.partition("=")
        low = _bound(low_text, cols[k], original, "lower") if low_text else None
    else:
        k = j
        while k < n and src[k].isascii() and src[k].isalpha():
            k += 1
        idx, low = src[j:k], None
        j = k
    if not (len(idx) == 1 and idx.isascii() and idx.isalpha()):
        raise InvalidAnswer(
            f"a sum's index should be one letter (sum_n, sum_{{n=1}}^{{N}}), not {idx[:20]!r}", col, original
        )
    high = None
    if j < n and src[j] == "^":
        j += 1
        if j < n and src[j] == "{":
            k = src.find("}", j)
            if k < 0:
                raise InvalidAnswer("the '{' after '^' is not closed", cols[j], original)
            high = _bound(src[j + 1 : k], cols[j], original, "upper")
            j = k + 1
        else:
            k = j
            if k < n and src[k] in DIGITS:
                while k < n and src[k] in DIGITS:
                    k += 1
            else:
                while k < n and src[k].isascii() and src[k].isalpha():
                    k += 1
            high = _bound(src[j:k], cols[min(j, n - 1)], original, "upper")
            j = k
    if low is None and high is not None:
        low = 1
    return (idx, low, high), j


def _sigma_is_sum(src: str, j: int, names) -> bool:
    """Σ_n is a sum unless Sigma_n is one of the question's names (a covariance matrix)."""
    rest = src[j + 1 :]
    if rest.startswith("{"):
        inside = rest[1 : rest.find("}")] if "}" in rest else ""
        if "=" in inside:
            return True
        sub = inside.replace(",", "").replace(" ", "")
    else:
        m = re.match(r"[A-Za-z0-9]+", rest)
        sub = m.group(0) if m else ""
    return len(sub) == 1 and sub.isalpha() and (names is None or f"Sigma_{sub}" not in names)


def _tokens(src: str, cols: list[int], original: str, names):
    """Yield (kind, value, column, space_before)."""
    i, n = 0, len(src)
    space = False
    while i < n:
        ch = src[i]
        col = cols[i]
        if ch in " \t\n\r":
            space = True
            i += 1
            continue
        if ch in DIGITS or (ch == "." and i + 1 < n and src[i + 1] in DIGITS):
            j = i
            while j < n and (src[j] in DIGITS or src[j] == "."):
                j += 1
            if (
                j < n
                and src[j] in "eE"
                and j + 1 < n
                and (src[j + 1] in DIGITS or (src[j + 1] in "+-" and j + 2 < n and src[j + 2] in DIGITS))
            ):
                j += 2
                while j < n and src[j] in DIGITS:
                    j += 1
            lit = src[i:j]
            if lit.count(".") > 1:
                raise InvalidAnswer(f"the number {lit!r} has more than one decimal point", col, original)
            if sum(c in DIGITS for c in lit) > LIMITS["number_digits"]:
                raise InvalidAnswer(
                    f"the number is too long (more than {LIMITS['number_digits']} digits)", col, original
                )
            value = float(lit)
            if not math.isfinite(value) or abs(value) > LIMITS["number_value"]:
                raise InvalidAnswer(
                    f"the number {lit} is too large (the limit is {LIMITS['number_value']:g})", col, original
                )
            yield ("num", (value, lit), col, space)
            i = j
            space = False
            continue
        elif ch.isalpha() and ch.isascii():
            j = i
            while j < n and src[j].isascii() and src[j].isalnum():
                j += 1
            name = src[i:j]
            if j < n and src[j] == "_" and (name in BIGOPS or (name == "SIGMA" and _sigma_is_sum(src, j, names))):
                (idx, low, high), j = _bigop_header(src, j + 1, cols, original, col)
                yield ("bigop", ("sum" if name == "SIGMA" else name, idx, low, high), col, space)
                i = j
                space = False
                continue
            if name == "SIGMA":
                name = "Sigma"
            braced = False
            if j < n and src[j] == "_":
                braced = src[j + 1 : j + 2] == "{"
                sub, j = _subscript(src, j + 1, cols, original)
                name = f"{name}_{sub}"
            yield ("name", name, col, space)
            i = j
            # after a braced subscript (LaTeX's \gamma_{nk}x_n, \gamma_{nk}(x_n - \mu_k)) what follows
            # is a new factor, as if a space stood there
            space = braced and j < n and (src[j].isalpha() or src[j] in "({")
            continue
        elif src.startswith("**", i):
            yield ("op", "^", col, space)
            i += 2
            space = False
            continue
        elif ch in "+-*/^":
            yield ("op", ch, col, space)
        elif ch in "([{":
            yield ("(", ch, col, space)
        elif ch in ")]}":
            yield (")", ch, col, space)
        elif ch == "=":
            yield ("=", ch, col, space)
        elif ch == ",":
            yield (",", ch, col, space)
        else:
            shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
            raise InvalidAnswer(f"the character {shown} is not allowed", col, original)
        i += 1
        space = False
    yield ("end", None, (cols[-1] + 1) if cols else 1, space)


# -- parsing -----------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, names, equation: bool):
        self.original = text
        src, cols = _normalise(text)
        src, cols = _latex(src, cols, text)
        # x^2_k (a superscript before the subscript: sigma^2_k, σ²ₖ, \sigma^2_k) is x_k^2
        src, cols = _rewrite(src, cols, _SUP_SUB, lambda m: f"{m.group(1)}_{m.group(3)}^{m.group(2)}")
        self.toks = list(_tokens(src, cols, text, names))
        self.i = 0
        self.names = names
        self.equation = equation
        self.nodes = 0
        self.depth = 0
        self.bigops = 0
        self.implicit = False

    def peek(self):
        return self.toks[self.i]

    def take(self):
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, msg, tok):
        raise InvalidAnswer(msg, tok[2], self.original)

    def node(self, *parts):
        self.nodes += 1
        if self.nodes > LIMITS["nodes"]:
            raise InvalidAnswer(f"the answer is too long (more than {LIMITS['nodes']} numbers, names and operations)")
        return parts

    def enter(self, tok):
        self.depth += 1
        if self.depth > LIMITS["depth"]:
            self.fail(f"the answer is nested too deeply (more than {LIMITS['depth']} levels)", tok)

    def known(self, name: str) -> bool:
        return self.names is not None and name in self.names

    def parse(self):
        if self.peek()[0] == "end":
            raise InvalidAnswer("the answer is empty")
        tree = self.expr()
        tok = self.peek()
        if tok[0] == "=":
            if not self.equation:
                self.fail(
                    "type only the expression, without '=' (e.g. not 'mu_k = ...'); this question does not ask "
                    "for an equation",
                    tok,
                )
            self.take()
            if self.peek()[0] == "end":
                self.fail("the equation has no right-hand side (e.g. '... = 0')", self.peek())
            tree = self.node("=", tree, self.expr())
            tok = self.peek()
            if tok[0] == "=":
                self.fail("an equation has one '='", tok)
        if tok[0] == ",":
            self.fail("unexpected ',' (functions take one argument; use '.' for decimals)", tok)
        if tok[0] != "end":
            self.fail(f"unexpected {tok[1]!r}" if tok[0] != "num" else f"unexpected number {tok[1][1]}", tok)
        return tree

    def expr(self):
        self.enter(self.peek())
        left = self.term()
        while self.peek()[0] == "op" and self.peek()[1] in "+-":
            op = self.take()[1]
            left = self.node(op, left, self.term())
        self.depth -= 1
        return left

    def _starts_atom(self, tok):
        return tok[0] in ("num", "name", "(", "bigop")

    def term(self):
        left = self.unary()
        while True:
            tok = self.peek()
            if tok[0] == "op" and tok[1] in "*/":
                self.take()
                left = self.node(tok[1], left, self.unary())
            elif self._starts_atom(tok):
                prev = self.toks[self.i - 1]
                self.check_implicit(prev, tok)
                self.implicit = True
                left = self.node("*", left, self.unary())
            else:
                return left

    def check_implicit(self, prev, tok):
        p, t = prev[0], tok[0]
        if t == "bigop":
            return  # 2 sum_n x_n, N_k^{-1} sum_n ...
        if t == "name" and tok[1] in FUNCTIONS and not self.known(tok[1]) and tok[3]:
            return  # gamma_nk sqrt(...), 2 log(x)
        if p == "num" and t in ("name", "("):
            return
        if p == ")" and t in ("(", "name"):
            return
        if p == "name" and t == "name" and tok[3]:
            names = self.names
            if names is None or all(n in names or n in CONSTANTS for n in (prev[1], tok[1])):
                return
            unknown = next(n for n in (prev[1], tok[1]) if n not in names and n not in CONSTANTS)
            close = difflib.get_close_matches(unknown, sorted(names), n=1, cutoff=0.6)
            if close:  # a misspelled name, not a missing '*'
                at = prev if unknown == prev[1] else tok
                self.fail(f"unknown name {unknown!r} (did you mean {close[0]!r}?)", at)
            self.fail(f"write '*' between {prev[1]!r} and {tok[1]!r}", tok)
        if p == "name" and t == "(":
            if tok[3] and (self.names is None or prev[1] in self.names):
                return  # "gamma_k1 (x_1 - mu)": a known name, a space, a bracket
            self.fail(f"{prev[1]!r} is not a function; write {prev[1]}*( ... ) to multiply", tok)
        if t == "num":
            self.fail(f"write an operator before the number {tok[1][1]}", tok)
        self.fail("write '*' to multiply here", tok)

    def unary(self):
        tok = self.peek()
        if tok[0] == "op" and tok[1] in "+-":
            self.take()
            self.enter(tok)
            inner = self.unary()
            self.depth -= 1
            return inner if tok[1] == "+" else self.node("neg", inner)
        if tok[0] == "bigop":
            self.take()
            op, idx, low, high = tok[1]
            return self.bigop(tok, op, idx, low, high, lambda: self.term())
        return self.power()

    def bigop(self, tok, op, idx, low, high, body_fn):
        self.bigops += 1
        if self.bigops > LIMITS["bigops"]:
            self.fail(f"too many sums and products inside one another (the limit is {LIMITS['bigops']})", tok)
        if self.peek()[0] in ("end", ")", "=", ","):
            self.fail(f"the {op} over {idx} has nothing to {'add' if op == 'sum' else 'multiply'}", self.peek())
        self.enter(tok)
        body = body_fn()
        self.depth -= 1
        self.bigops -= 1
        return self.node("big", op, idx, low, high, body)

    def power(self):
        base = self.atom()
        tok = self.peek()
        if tok[0] == "op" and tok[1] == "^":
            self.take()
            self.enter(tok)
            ex = self.unary()
            self.depth -= 1
            value = _constant(ex)
            if value is not None and not abs(value) <= LIMITS["exponent"]:
                self.fail(f"the exponent is too large (the limit is {LIMITS['exponent']})", tok)
            return self.node("^", base, ex)
        return base

    def group(self):
        """'(' expr ')' -- also '{' expr '}' -- returned without its brackets."""
        open_tok = self.take()
        if open_tok[0] != "(":
            self.fail("expected '{' or '(' here", open_tok)
        self.enter(open_tok)
        inner = self.expr()
        close = self.take()
        if close[0] != ")":
            self.fail(f"missing ')' for the '{open_tok[1]}' at column {open_tok[2]}", close)
        self.depth -= 1
        return inner

    def call_sum(self, tok, op):
        """sum(body, n) or sum(body, n, 1, N)."""
        open_tok = self.take()
        self.enter(open_tok)
        self.bigops += 1
        if self.bigops > LIMITS["bigops"]:
            self.fail(f"too many sums and products inside one another (the limit is {LIMITS['bigops']})", tok)
        body = self.expr()
        sep = self.take()
        if sep[0] != ",":
            self.fail(f"write the index after a comma: {op}(..., n)", sep)
        idx_tok = self.take()
        if idx_tok[0] != "name" or len(idx_tok[1]) != 1:
            self.fail(f"the index of {op}(..., n) should be one letter", idx_tok)
        low = high = None
        if self.peek()[0] == ",":
            self.take()
            low_tok, sep2, high_tok = self.take(), self.take(), self.take()
            if sep2[0] != ",":
                self.fail(f"write {op}(..., n, 1, N)", sep2)
            for b in (low_tok, high_tok):
                if b[0] == "num" and not float(b[1][0]).is_integer():
                    self.fail(f"the bounds of a {op} must be whole numbers or sizes such as N, not {b[1][1]}", b)
                if b[0] not in ("num", "name"):
                    self.fail(f"the bounds of a {op} must be whole numbers or sizes such as N", b)
            low = int(low_tok[1][0]) if low_tok[0] == "num" else low_tok[1]
            high = int(high_tok[1][0]) if high_tok[0] == "num" else high_tok[1]
        close = self.take()
        if close[0] != ")":
            self.fail(f"missing ')' for the '(' at column {open_tok[2]}", close)
        self.depth -= 1
        self.bigops -= 1
        return self.node("big", op, idx_tok[1], low, high, body)

    def _bishop(self) -> bool:
        """Whether the next tokens are '(' z_SUB ')'."""
        t = self.toks[self.i : self.i + 3]
        return len(t) == 3 and t[1][0] == "name" and t[1][1].startswith("z_") and t[2][0] == ")"

    def atom(self):
        tok = self.take()
        kind = tok[0]
        if kind == "num":
            return self.node("num", tok[1][0], tok[1][1])
        if kind == "name":
            name = tok[1]
            nxt = self.peek()[0]
            if name in BIGOPS and not self.known(name):
                if nxt == "(":
                    return self.call_sum(tok, name)
                self.fail(f"write the index of the {name}: {name}_n ... or {name}(..., n)", tok)
            if name == "frac" and not self.known(name) and nxt == "(":
                num = self.group()
                if self.peek()[0] != "(":
                    self.fail("\\frac needs two groups: \\frac{a}{b}", self.peek())
                return self.node("/", num, self.group())
            if name == "gamma" and not self.known(name) and nxt == "(" and self._bishop():
                # Bishop's gamma(z_nk) is the responsibility gamma_nk
                self.i += 3
                return self.node("var", "gamma_" + self.toks[self.i - 2][1][2:])
            if nxt == "(" and name in FUNCTIONS and not self.known(name):
                return self.node("call", FUNCTIONS[name], self.group())
            if name in FUNCTIONS and not self.known(name):
                self.fail(f"the function {name} needs brackets, e.g. {name}(x)", tok)
            if name in CONSTANTS and not self.known(name):
                return self.node("const", name)
            return self.node("var", name)
        if kind == "(":
            self.i -= 1
            return self.group()
        if kind == "end":
            self.fail("the answer ends too early", tok)
        if kind == ",":
            self.fail("unexpected ',' (functions take one argument; use '.' for decimals)", tok)
        if kind == "=":
            self.fail("unexpected '='", tok)
        self.fail(f"unexpected {tok[1]!r}", tok)


def _constant(tree) -> float | None:
    """The value of a tree without names (for the exponent limit), inf when it overflows."""
    kind = tree[0]
    if kind == "num":
        return tree[1]
    if kind == "const":
        return CONSTANTS[tree[1]]
    if kind == "neg":
        v = _constant(tree[1])
        return None if v is None else -v
    if kind in ("+", "-", "*", "/", "^"):
        a, b = _constant(tree[1]), _constant(tree[2])
        if a is None or b is None:
            return None
        try:
            return {
                "+": a + b,
                "-": a - b,
                "*": a * b,
                "/": a / b if b else math.inf,
                "^": math.pow(a, b) if a > 0 or float(b).is_integer() else math.nan,
            }[kind]
        except (OverflowError, ValueError, ZeroDivisionError):
            return math.inf
    return None


_PREC = {"=": 0, "+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4}


def _bigop_text(tree: tuple) -> str:
    _, op, idx, low, high, body = tree
    head = f"{op}_{{{idx}={low}}}^{{{high}}}" if high is not None else f"{op}_{idx}"
    inner = to_text(body, _PREC["*"], "*")
    return f"{head} {inner}"


def to_text(tree: tuple, parent: int = 0, parent_op: str | None = None, right: bool = False) -> str:
    """Canonical text of a tree, with only the brackets it needs.

    A child needs brackets when it binds looser than its parent, or equally tight on the
    right of '-' or '/' (a - (b - c), a/(b*c)); a negation needs them inside a product or power;
    a sum or product (which takes the rest of its term) inside a product, power or negation.
    """
    kind = tree[0]
    if kind == "num":
        return tree[2]
    if kind in ("var", "const"):
        return tree[1]
    if kind == "call":
        return f"{tree[1]}({to_text(tree[2])})"
    if kind == "big":
        s = _bigop_text(tree)
        return f"({s})" if parent >= _PREC["*"] else s
    if kind == "neg":
        s = "-" + to_text(tree[1], _PREC["neg"], "neg")
        return f"({s})" if parent >= _PREC["^"] or right else s  # -(a)*b equals (-a)*b
    p = _PREC[kind]
    if kind == "=":
        return f"{to_text(tree[1])} = {to_text(tree[2])}"
    if kind == "^":
        s = f"{to_text(tree[1], p + 1, kind)}^{to_text(tree[2], p, kind, True)}"
    else:
        sep = " + " if kind == "+" else " - " if kind == "-" else kind
        s = f"{to_text(tree[1], p, kind)}{sep}{to_text(tree[2], p, kind, True)}"
    needs = p < parent or (p == parent and right and parent_op in ("-", "/", "^"))
    return f"({s})" if needs else s


def children(tree: tuple) -> tuple:
    """The sub-trees of a node (none for numbers, names and constants)."""
    kind = tree[0]
    if kind in ("+", "-", "*", "/", "^", "="):
        return (tree[1], tree[2])
    if kind == "neg":
        return (tree[1],)
    if kind == "call":
        return (tree[2],)
    if kind == "big":
        return (tree[5],)
    return ()


def _names(tree, out: set) -> set:
    if tree[0] == "var":
        out.add(tree[1])
    for c in children(tree):
        _names(c, out)
    return out


def parse(text: str, names=None, equation: bool = False) -> Parsed:
    """Parse typed text into a ``Parsed`` tree; raise ``InvalidAnswer`` with column and caret.

    ``names`` (optional; a set, or any container with ``in`` and iteration) are the names the
    question allows: it decides whether a space between two names is a product and whether
    ``pi``/``e``/``exp`` are variables or built-ins.
    ``equation`` allows one top-level ``=`` (the tree is then ``("=", lhs, rhs)``).
    """
    if not isinstance(text, str):
        raise InvalidAnswer("the answer should be text")
    if len(text) > LIMITS["length"]:
        raise InvalidAnswer(f"the answer is too long ({len(text)} characters; the limit is {LIMITS['length']})")
    if "\x00" in text:
        raise InvalidAnswer("the answer contains a NUL character")
    text = unicodedata.normalize("NFC", text).strip()
    if names is not None and not hasattr(names, "__contains__"):
        names = set(names)
    p = _Parser(text, names, equation)
    tree = p.parse()
    return Parsed(tree, to_text(tree), frozenset(_names(tree, set())), p.implicit)


# -- display -------------------------------------------------------------------------------------
_GREEK_NAMES = set(_LATEX_GREEK) - {"varepsilon", "varphi", "vartheta"}


def _name_latex(name: str) -> str:
    base, _, sub = name.partition("_")
    hat = base.startswith("hat") and len(base) > 3
    if hat:
        base = base[3:]
    square = base.endswith("2") and base[:-1] in _GREEK_NAMES | {"s"}
    if square:
        base = base[:-1]
    core = f"\\{base}" if base in _GREEK_NAMES else (base if len(base) == 1 else f"\\mathrm{{{base}}}")
    if hat:
        core = f"\\hat{{{core}}}"
    if sub:
        core = f"{core}_{{{sub}}}"
    return f"{core}^{{2}}" if square else core


def to_latex(tree: tuple, parent: int = 0, right: bool = False) -> str:
    """LaTeX of a parsed answer, for showing a student how their answer was read."""
    kind = tree[0]
    if kind == "num":
        return tree[2]
    if kind == "var":
        return _name_latex(tree[1])
    if kind == "const":
        return "\\pi" if tree[1] == "pi" else "e"
    if kind == "call":
        inner = to_latex(tree[2])
        if tree[1] == "sqrt":
            return f"\\sqrt{{{inner}}}"
        if tree[1] == "abs":
            return f"\\left|{inner}\\right|"
        return f"\\{tree[1]}\\left({inner}\\right)"
    if kind == "big":
        _, op, idx, low, high, body = tree
        sym = "\\sum" if op == "sum" else "\\prod"
        head = f"{sym}_{{{idx}={low}}}^{{{high}}}" if high is not None else f"{sym}_{{{idx}}}"
        s = f"{head} {to_latex(body, _PREC['*'])}"
        return f"\\left({s}\\right)" if parent >= _PREC["*"] else s
    if kind == "neg":
        s = "-" + to_latex(tree[1], _PREC["neg"])
        return f"\\left({s}\\right)" if parent >= _PREC["^"] or right else s
    if kind == "=":
        return f"{to_latex(tree[1])} = {to_latex(tree[2])}"
    if kind == "/":
        return f"\\frac{{{to_latex(tree[1])}}}{{{to_latex(tree[2])}}}"
    p = _PREC[kind]
    if kind == "^":
        s = f"{to_latex(tree[1], p + 1)}^{{{to_latex(tree[2])}}}"
    else:
        sep = {"+": " + ", "-": " - ", "*": " \\, "}[kind]
        s = f"{to_latex(tree[1], p)}{sep}{to_latex(tree[2], p, True)}"
    needs = p < parent or (p == parent and right and kind in ("+", "-"))
    return f"\\left({s}\\right)" if needs else s
