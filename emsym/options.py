"""Shared readers for model files: exact numbers, counts, fixed values, suggestions.

Used by ``emsym.spec`` (the Gaussian) and ``emsym.family_spec`` (every other family).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Union

from .exceptions import SpecError

__all__ = [
    "GENERAL_D",
    "GENERAL_K",
    "LIMITS",
    "Fixed",
    "Linked",
    "Option",
    "SpecViews",
    "linked_entry",
    "number",
    "option_dict",
    "short",
    "suggest",
    "whole_count",
]

_LINKED = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)?)\s*\*?\s*([A-Za-z][A-Za-z0-9]{0,15})\s*", re.ASCII)
RESERVED = frozenset(
    {"pi", "mu", "sigma2", "theta", "x", "gamma", "N", "K", "d", "n", "j", "k", "i", "l", "e", "lambda"}
)

GENERAL_K = "K"
GENERAL_D = "d"


@dataclass(frozen=True)
class Fixed:
    """Known values of one parameter kind, one entry per component (k = 1..K).

    Entries are exact fractions; a vector mean is a tuple of fractions.
    """

    values: tuple

    def as_list(self) -> list:
        return [_plain(v) for v in self.values]


@dataclass(frozen=True)
class Linked:
    """Linear constraints between components, as mixtools' ``mean.constr``: one entry per component.

    An entry is None (the component's own free parameter), an exact number (fixed), or
    (coefficient, name): the value is coefficient * name, and every entry with the same name
    shares that one free parameter (``[-a, a]``: equal and opposite means).
    """

    entries: tuple

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e[1] for e in self.entries if isinstance(e, tuple)))

    @property
    def single(self) -> bool:
        """Every component linked to one name: theta_k = kappa_k a."""
        return all(isinstance(e, tuple) for e in self.entries) and len(self.names) == 1

    def groups(self) -> list[tuple[list[int], list]]:
        """The components sharing one unknown: (indices, coefficients) per name, then each free component
        as a group of its own with coefficient 1; fixed components belong to none."""
        out = [
            (
                [k for k, e in enumerate(self.entries) if isinstance(e, tuple) and e[1] == name],
                [e[0] for e in self.entries if isinstance(e, tuple) and e[1] == name],
            )
            for name in self.names
        ]
        return out + [([k], [1]) for k, e in enumerate(self.entries) if e is None]

    def as_list(self) -> list:
        out = []
        for e in self.entries:
            if isinstance(e, tuple):
                coef, name = e
                out.append(name if coef == 1 else f"-{name}" if coef == -1 else f"{_plain(coef)}{name}")
            else:
                out.append(None if e is None else _plain(e))
        return out


Option = Union[str, Fixed, Linked]  # noqa: UP007 - a runtime alias: `str | Fixed` needs Python 3.10 types at import


def option_dict(o: Any) -> Any:
    """An option as a model file writes it: free, {fixed: [...]} or {linked: [...]} (a link list without
    names is a partial fix, {fixed: [null, 80]}, and is written so)."""
    if isinstance(o, Linked):
        return {"linked": o.as_list()} if o.names else {"fixed": o.as_list()}
    return {"fixed": o.as_list()} if isinstance(o, Fixed) else o


class SpecViews:
    """What every spec (``ModelSpec``, ``FamilySpec``) answers the same way; the dataclass supplies
    ``components``, ``dim`` and ``to_dict``."""

    components: Any
    dim: Any

    def to_dict(self) -> dict:  # pragma: no cover - every spec defines it
        raise NotImplementedError

    @property
    def general_k(self) -> bool:
        return self.components == GENERAL_K

    @property
    def general_d(self) -> bool:
        return self.dim == GENERAL_D

    @property
    def concrete(self) -> bool:
        return not (self.general_k or self.general_d)

    def key(self) -> str:
        """Canonical text of everything that changes the derivation (for caching)."""
        d = self.to_dict()
        d.pop("name", None)
        return json.dumps(d, sort_keys=True, default=str)

    def instantiate(self, components: int = 3, dim: int = 2):
        """The same variant with concrete K and d where they are general."""
        return dataclasses.replace(
            self,  # type: ignore[type-var]
            components=components if self.general_k else self.components,
            dim=dim if self.general_d else self.dim,
        )


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(e) for e in v]
    if isinstance(v, Fraction):
        return int(v) if v.denominator == 1 else float(v)
    return v


def suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# Bounds on what a model file may ask for.  A variant is derived once for a generic component and
# written out for its K (about 1 s of CPU at K = 50; variants pinned per component -- fixed or
# linked values -- still derive per component); an exact number in a fixed list must stay a
# number a float can hold, so '1e999999999' cannot build a huge integer.
# The default variance floor of a Gaussian run: this fraction of the data's overall variance.
VARIANCE_FLOOR_FACTOR = 1e-6

LIMITS = {"components": 50, "dim": 100, "number_digits": 40, "number_exponent": 300}
_EXACT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:/[+-]?\d+)?", re.ASCII)


def _number(value: Any, where: str) -> Fraction:
    """An exact finite number from YAML: int, float or a string such as '1/3' (|value| < 1e300)."""
    if isinstance(value, bool):
        raise SpecError(f"{where} should be a number, but got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(f"{where} should be a finite number, but got {value!r}")
        out = Fraction(repr(value))
    elif isinstance(value, int):
        out = Fraction(value)
    elif isinstance(value, str) and len(value) <= 100 and _EXACT.fullmatch(value.strip()):
        text = value.strip()
        mantissa, _, exponent = text.split("/")[0].lower().partition("e")
        digits = sum(c.isdigit() for c in mantissa) + sum(c.isdigit() for c in text.partition("/")[2])
        if digits > LIMITS["number_digits"] or (exponent and abs(int(exponent)) > LIMITS["number_exponent"]):
            raise SpecError(
                f"{where} should be a number of at most {LIMITS['number_digits']} digits with an "
                f"exponent within +-{LIMITS['number_exponent']}, but got {value[:40]!r}"
            )
        try:
            out = Fraction(text)
        except ZeroDivisionError:
            raise SpecError(f"{where} should be a number, but got {value!r} (a division by zero)") from None
    else:
        raise SpecError(f"{where} should be a number (e.g. 0.5 or '1/3'), but got {_short(value)}")
    if abs(out) >= Fraction(10) ** LIMITS["number_exponent"]:
        raise SpecError(
            f"{where} should be smaller than 1e{LIMITS['number_exponent']} in size, but got {_short(value)}"
        )
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count(value: Any, key: str, general: str, where: str, limit: int | None = None) -> int | str:
    if value == general:
        return general
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(
            f"{where}: '{key}' should be a whole number >= 1 or '{general}' (general), but got {_short(value)}"
        )
    limit = LIMITS[key] if limit is None else limit
    if value > limit:
        raise SpecError(f"{where}: '{key}' should be at most {limit} (emsym's limit), but got {_short(value)}")
    return value


number = _number
short = _short
whole_count = _count
plain = _plain


def linked_entry(raw: Any, at: str):
    """One entry of a ``linked`` list: None (free), a number (fixed), or 'coef name' such as -a, 0.5b, 2*c."""
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return _number(raw, at)
    if isinstance(raw, str):
        m = _LINKED.fullmatch(raw)
        if m:
            text, name = m.group(1), m.group(2)
            if name in RESERVED:
                raise SpecError(f"{at}: {name!r} is one of emsym's own names; call the linked parameter e.g. 'a'")
            coef = Fraction(-1 if text == "-" else 1 if text in ("", "+") else Fraction(text))
            if coef == 0:
                raise SpecError(f"{at} should have a nonzero coefficient, but got {raw!r}")
            return (coef, name)
    raise SpecError(
        f"{at} should be null (free), a number (fixed) or a coefficient and a name such as a, -a or 0.5b "
        f"(mixtools' constraint form), but got {_short(raw)}"
    )
