"""A whitelisted parser for typed answers: student text never reaches eval, exec or sympy.

Grammar (precedence low to high; ``^`` and ``**`` are right-associative; unary minus binds
looser than a power, so ``-x^2`` is ``-(x^2)``)::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/" | implicit) unary)*
    unary   := ("+" | "-") unary | power
    power   := atom (("^" | "**") unary)?
    atom    := NUMBER | NAME | FUNCTION "(" expr ")" | "(" expr ")"

Names are letters and digits with an optional subscript (``x_1``, ``gamma_k1``, ``x_{1}``,
``hatmu_k``); Greek letters may be typed as Unicode (``π_k``, ``σ²``).  Functions: exp,
log (= ln), sqrt, abs.  Constants: ``pi`` and ``e`` unless the question declares them as names.
Implicit multiplication only where it is unambiguous -- a number before a name or "(",
")" before "(" or a name, a space between two known names, and a known name, a space and
"(" (``N_k(x)`` without the space may mean a function and is refused) -- and the reading is
shown back.

Limits (each refusal names the limit): length, nesting depth, number of nodes, the size of
a number literal and of a constant exponent.  Parsing is linear in the input.

>>> parse("2x + pi_k N_k", names={"x", "pi_k", "N_k"}).text
'2*x + pi_k*N_k'
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
import unicodedata
from dataclasses import dataclass

from ..exceptions import InvalidAnswer

__all__ = ["DIGITS", "FUNCTIONS", "LIMITS", "InvalidAnswer", "Parsed", "parse", "to_text"]

LIMITS = {
    "length": 1000,  # characters
    "depth": 40,  # nested brackets / operators
    "nodes": 400,  # numbers, names and operations
    "number_digits": 30,  # digits in one literal
    "number_value": 1e12,
    "exponent": 64,  # |constant exponent|
}

# ASCII digits only: str.isdigit() is also true for '²', '①' and other digits float() and int() refuse.
DIGITS = frozenset("0123456789")
FUNCTIONS = {"exp": "exp", "log": "log", "ln": "log", "sqrt": "sqrt", "abs": "abs"}
CONSTANTS = {"pi": math.pi, "e": math.e}

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
    "Σ": "Sigma",
    "Π": "Pi",
    "Γ": "Gamma",
    "Λ": "Lambda",
}
_SUPER = {"²": "^2", "³": "^3", "¹": "^1"}
_SUB = {chr(0x2080 + i): str(i) for i in range(10)}
_OPS = {"·": "*", "×": "*", "∗": "*", "−": "-", "–": "-", "÷": "/", "⁄": "/"}


@dataclass(frozen=True)
class Parsed:
    """A parsed answer: the tree, its canonical text, its names, and notes on how it was read."""

    tree: tuple
    text: str
    names: frozenset
    implicit: bool


# -- lexing ------------------------------------------------------------------------------
def _normalise(text: str) -> tuple[str, list[int]]:
    """Map Unicode spellings to ASCII; keep the original column of every output character.

    Subscript digits become a subscript: π₁₂ -> pi_12.
    """
    out, cols = [], []
    in_sub = False
    for col, ch in enumerate(text, start=1):
        if ch in _SUB:
            rep = _SUB[ch] if in_sub else "_" + _SUB[ch]
            in_sub = True
        else:
            in_sub = False
            rep = _GREEK.get(ch) or _SUPER.get(ch) or _OPS.get(ch) or ch
        out.append(rep)
        cols.extend([col] * len(rep))
    return "".join(out), cols


def _tokens(src: str, cols: list[int], original: str):
    """Yield (kind, value, column, space_before)."""
    i, n = 0, len(src)
    space = False
    while i < n:
        ch = src[i]
        col = cols[i]
        if ch in " \t":
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
            if j < n and src[j] == "_":
                j += 1
                if j < n and src[j] == "{":
                    k = src.find("}", j)
                    if k < 0:
                        raise InvalidAnswer("a subscript '{' is not closed", cols[j], original)
                    sub = src[j + 1 : k].replace(",", "").replace(" ", "")
                    if not sub or not (sub.isascii() and sub.isalnum()):
                        raise InvalidAnswer("a subscript should be letters and digits, e.g. x_{1}", cols[j], original)
                    j = k + 1
                else:
                    k = j
                    while k < n and src[k].isascii() and src[k].isalnum():
                        k += 1
                    sub = src[j:k]
                    if not sub:
                        raise InvalidAnswer("'_' should be followed by a subscript, e.g. x_1", cols[j - 1], original)
                    j = k
                name = f"{name}_{sub}"
            yield ("name", name, col, space)
            i = j
            space = False
            continue
        elif src.startswith("**", i):
            yield ("op", "^", col, space)
            i += 2
            space = False
            continue
        elif ch in "+-*/^":
            yield ("op", ch, col, space)
        elif ch in "([":
            yield ("(", ch, col, space)
        elif ch in ")]":
            yield (")", ch, col, space)
        elif ch == "=":
            raise InvalidAnswer("type only the expression, without '=' (e.g. not 'mu_k = ...')", col, original)
        elif ch == ",":
            raise InvalidAnswer("unexpected ',' (functions take one argument; use '.' for decimals)", col, original)
        else:
            shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
            raise InvalidAnswer(f"the character {shown} is not allowed", col, original)
        i += 1
        space = False
    yield ("end", None, (cols[-1] + 1) if cols else 1, space)


# -- parsing -----------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, names: set | None):
        self.original = text
        src, cols = _normalise(text)
        self.toks = list(_tokens(src, cols, text))
        self.i = 0
        self.names = names
        self.nodes = 0
        self.depth = 0
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

    def parse(self):
        if self.peek()[0] == "end":
            raise InvalidAnswer("the answer is empty")
        tree = self.expr()
        tok = self.peek()
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
        return tok[0] in ("num", "name", "(")

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
            if tok[3] and self.names is not None and prev[1] in self.names:
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
        return self.power()

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

    def atom(self):
        tok = self.take()
        kind = tok[0]
        if kind == "num":
            return self.node("num", tok[1][0], tok[1][1])
        if kind == "name":
            name = tok[1]
            if self.peek()[0] == "(" and name in FUNCTIONS and (self.names is None or name not in self.names):
                open_tok = self.take()
                self.enter(open_tok)
                arg = self.expr()
                close = self.take()
                if close[0] != ")":
                    self.fail(f"missing ')' for the '(' at column {open_tok[2]}", close)
                self.depth -= 1
                return self.node("call", FUNCTIONS[name], arg)
            if name in FUNCTIONS and (self.names is None or name not in self.names):
                self.fail(f"the function {name} needs brackets, e.g. {name}(x)", tok)
            if name in CONSTANTS and (self.names is None or name not in self.names):
                return self.node("const", name)
            return self.node("var", name)
        if kind == "(":
            self.enter(tok)
            inner = self.expr()
            close = self.take()
            if close[0] != ")":
                self.fail(f"missing ')' for the '{tok[1]}' at column {tok[2]}", close)
            self.depth -= 1
            return inner
        if kind == "end":
            self.fail("the answer ends too early", tok)
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
    if kind in "+-*/^":
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


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4}


def to_text(tree: tuple, parent: int = 0, parent_op: str | None = None, right: bool = False) -> str:
    """Canonical text of a tree, with only the brackets it needs.

    A child needs brackets when it binds looser than its parent, or equally tight on the
    right of '-' or '/' (a - (b - c), a/(b*c)); a negation needs them inside a product or power.
    """
    kind = tree[0]
    if kind == "num":
        return tree[2]
    if kind in ("var", "const"):
        return tree[1]
    if kind == "call":
        return f"{tree[1]}({to_text(tree[2])})"
    if kind == "neg":
        s = "-" + to_text(tree[1], _PREC["neg"], "neg")
        return f"({s})" if parent >= _PREC["^"] or right else s  # -(a)*b equals (-a)*b
    p = _PREC[kind]
    if kind == "^":
        s = f"{to_text(tree[1], p + 1, kind)}^{to_text(tree[2], p, kind, True)}"
    else:
        sep = " + " if kind == "+" else " - " if kind == "-" else kind
        s = f"{to_text(tree[1], p, kind)}{sep}{to_text(tree[2], p, kind, True)}"
    needs = p < parent or (p == parent and right and parent_op in ("-", "/", "^"))
    return f"({s})" if needs else s


def _names(tree, out: set) -> set:
    kind = tree[0]
    if kind == "var":
        out.add(tree[1])
    elif kind in ("neg",):
        _names(tree[1], out)
    elif kind == "call":
        _names(tree[2], out)
    elif kind in "+-*/^":
        _names(tree[1], out)
        _names(tree[2], out)
    return out


def parse(text: str, names: set | frozenset | None = None) -> Parsed:
    """Parse typed text into a ``Parsed`` tree; raise ``InvalidAnswer`` with column and caret.

    ``names`` (optional) are the names the question allows: it decides whether a space between
    two names is a product and whether ``pi``/``e``/``exp`` are variables or built-ins.
    """
    if not isinstance(text, str):
        raise InvalidAnswer("the answer should be text")
    if len(text) > LIMITS["length"]:
        raise InvalidAnswer(f"the answer is too long ({len(text)} characters; the limit is {LIMITS['length']})")
    if "\x00" in text:
        raise InvalidAnswer("the answer contains a NUL character")
    text = unicodedata.normalize("NFC", text).strip()
    p = _Parser(text, set(names) if names is not None else None)
    tree = p.parse()
    return Parsed(tree, to_text(tree), frozenset(_names(tree, set())), p.implicit)
