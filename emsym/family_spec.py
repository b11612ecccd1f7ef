"""Model files for the non-Gaussian families: ``FamilySpec``.

::

    family: poisson            # or exponential, bernoulli, multinomial, categorical, or {density: ...}
    components: 3              # a whole number, or K (derivation only)
    dim: 6                     # vector families only; leave it out to take it from the data
    mixing: free               # free | equal | {fixed: [...]}
    rate: free                 # each family parameter: free | shared | {fixed: [...]}
                               #   a partial fix: {fixed: [null, 4]} keeps component 1 free
    prior: {weights: {dirichlet: 2}, rate: {gamma: [2, 1]}}    # MAP-EM (emsym.priors)

Validation refuses what is provably wrong with one line naming the file, the key, what was
expected and what came in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .exceptions import SpecError
from .families import FAMILIES, Family, family_names
from .options import (
    GENERAL_D,
    GENERAL_K,
    Fixed,
    Linked,
    Option,
    SpecViews,
    linked_entry,
    number,
    option_dict,
    plain,
    short,
    suggest,
    whole_count,
)
from .priors import parse_priors

__all__ = ["MAX_COMPONENTS", "FamilySpec", "Prior", "family_spec_from_dict"]

# The family engine derives once for a generic component, so K costs nothing symbolically.
MAX_COMPONENTS = 50


@dataclass(frozen=True)
class Prior:
    """A prior on ``target`` (``weights`` or a parameter name): kind and exact hyperparameters."""

    target: str
    kind: str
    hyper: tuple[Fraction, ...]

    def to_dict(self) -> dict:
        values = [plain(h) for h in self.hyper]
        return {self.kind: values[0] if len(values) == 1 else values}


@dataclass(frozen=True)
class FamilySpec(SpecViews):
    """A mixture of one non-Gaussian family (see the module docstring)."""

    family: Family
    components: int | str = 2
    dim: int | str = 1
    mixing: Option = "free"
    options: tuple[tuple[str, Option], ...] = ()
    priors: tuple[Prior, ...] = ()
    labelled: bool = False
    source: Any = None  # how the family was written (a name, or the density mapping) -- for to_dict
    name: str | None = dataclasses.field(default=None, compare=False)
    description: str | None = dataclasses.field(default=None, compare=False)

    @property
    def vector(self) -> bool:
        return not self.family.univariate

    @property
    def map(self) -> bool:
        return bool(self.priors)

    def option(self, param: str) -> Option:
        return dict(self.options).get(param, "free")

    def prior(self, target: str) -> Prior | None:
        return next((p for p in self.priors if p.target == target), None)

    def to_dict(self) -> dict:
        opt = option_dict

        out: dict[str, Any] = {
            "family": self.source if self.source is not None else self.family.name,
            "components": self.components,
        }
        if self.vector:
            out["dim"] = self.dim
        out["mixing"] = opt(self.mixing)
        for name, o in self.options:
            out[name] = opt(o)
        if self.priors:
            out["prior"] = {p.target: p.to_dict() for p in self.priors}
        if self.labelled:
            out["labelled"] = True
        if self.name:
            out["name"] = self.name
        return out

    def general(self) -> FamilySpec | None:
        """The same variant for a general K (None where fixed values pin K)."""
        if self.general_k:
            return self
        if isinstance(self.mixing, Fixed) or any(isinstance(o, (Fixed, Linked)) for _, o in self.options):
            return None
        return dataclasses.replace(self, components=GENERAL_K)

    def label(self) -> str:
        return self.name or f"{self.family.name} mixture"

    @property
    def init_fields(self) -> tuple[str, ...]:
        """What an init file gives per component besides its weight: the family's parameters."""
        return self.family.parameter_names

    def view_names(self) -> set[str]:
        """The names an exercise may ask for: weight_k and <parameter>_k, and <parameter>_k_l for
        coordinate l of a per-coordinate parameter (``emsym.solve``'s view)."""
        if not self.concrete:
            return set()
        K, d = range(1, int(self.components) + 1), range(1, int(self.dim) + 1)
        out = {f"{f}_{k}" for f in ("weight", *self.family.parameter_names) for k in K}
        return out | {f"{p.name}_{k}_{l}" for p in self.family.parameters if p.per_coordinate for k in K for l in d}


_COMMON = ("family", "components", "dim", "mixing", "prior", "labelled", "name", "description")


def _family(value: Any, where: str) -> tuple[Family, Any]:
    if isinstance(value, dict):
        from .families.density import family_from_density

        return family_from_density(value, f"{where}: 'family'"), value
    if not isinstance(value, str) or value not in FAMILIES:
        names = family_names()
        raise SpecError(
            f"{where}: 'family' should be one of {', '.join(names)} or {{density: ..., parameters: ...}}, "
            f"but got {short(value)}{suggest(str(value), names)}"
        )
    return FAMILIES[value], value


def _param_option(value: Any, param, family: Family, K, dim, where: str) -> Option:
    at = f"{where}: '{param.name}'"
    if isinstance(value, str):
        if value not in ("free", "shared"):
            raise SpecError(
                f"{at} should be free, shared or {{fixed: [...]}}, but got {value!r}"
                f"{suggest(value, ['free', 'shared'])}"
            )
        return value
    if isinstance(value, list):
        raise SpecError(f"{at} got a bare list; write {param.name}: {{fixed: {short(value)}}}")
    if isinstance(value, dict) and list(value) == ["linked"]:
        return _linked(value["linked"], param, family, K, where)
    if not isinstance(value, dict) or list(value) != ["fixed"]:
        bad = next((k for k in value if k not in ("fixed", "linked")), "(nothing)") if isinstance(value, dict) else None
        raise SpecError(
            f"{at} should be free, shared, {{fixed: [...]}} or {{linked: [...]}}, but got "
            + (f"the key {bad!r}{suggest(str(bad), ['fixed', 'linked'])}" if bad is not None else short(value))
        )
    values = value["fixed"]
    if K == GENERAL_K:
        raise SpecError(f"{where}: '{param.name}.fixed' needs a whole number of components, but components is 'K'")
    if not isinstance(values, list) or len(values) != K:
        raise SpecError(
            f"{where}: '{param.name}.fixed' should be a list of {K} values (one per component, null = free), "
            f"but got {short(values)}"
        )
    out: list = []
    for k, raw in enumerate(values):
        if raw is None:
            out.append(None)
            continue
        out.append(_value(raw, param, dim, f"{where}: '{param.name}.fixed[{k}]'"))
    if all(v is None for v in out):
        raise SpecError(f"{where}: '{param.name}.fixed' has no value (every entry is null); write {param.name}: free")
    return Fixed(tuple(out))


def _linked(entries: Any, param, family: Family, K, where: str) -> Linked:
    """Known ratios between the components' values of a scalar parameter, in mixtools' form: each entry
    a multiple of a name ([a, 2a, 3a]; [a, a, b, b]: two groups), null (the component's own free value)
    or a number (fixed).

    Every component linked to one name is derived with theta_k = kappa_k a in Q.  Anything else -- several
    names, free or fixed entries beside linked ones -- is derived once for a group: a maximises the
    terms of Q of the components linked to it (ell_j = 1 for them), and the runner solves it for each
    name, and for each free component as a group of its own (kappa = 1).
    """
    at = f"{where}: '{param.name}.linked'"
    if param.per_coordinate or param.domain == "unit":
        kind = "a probability" if param.domain == "unit" else "one value per coordinate"
        raise SpecError(
            f"{at}: linked values are for a scalar real or positive parameter, but {param.name} is {kind}; "
            f"write {param.name}: shared or {{fixed: [...]}}"
        )
    if K == GENERAL_K:
        raise SpecError(f"{at} needs a whole number of components, but components is 'K'")
    if not isinstance(entries, list) or len(entries) != K:
        raise SpecError(f"{at} should be a list with one entry per component ({K}), but got {short(entries)}")
    item = [f"{where}: '{param.name}.linked[{i}]'" for i in range(K)]
    out = tuple(linked_entry(e, item[i]) for i, e in enumerate(entries))
    for i, e in enumerate(out):
        if param.domain != "positive" or e is None:
            continue
        value = e[0] if isinstance(e, tuple) else e
        if value <= 0:
            what = "a positive multiple" if isinstance(e, tuple) else "a positive number"
            raise SpecError(f"{item[i]} should be {what} ({param.name} is positive), but got {short(entries[i])}")
    names = {e[1] for e in out if isinstance(e, tuple)}
    if not names:
        raise SpecError(
            f"{at} links no component (no entry is a multiple of a name such as a or 2a); "
            f"write {param.name}: {{fixed: [...]}} or free"
        )
    taken = {"kappa", "ell", "eta", "nu", "w", "z", "L", "Q"}
    taken |= {p.sym for p in family.parameters if p.name != param.name}
    if names & taken:
        raise SpecError(
            f"{at}: {sorted(names & taken)[0]!r} is a name the derivation uses; call the linked value e.g. 'a'"
        )
    return Linked(out)


def _value(raw: Any, param, dim, at: str):
    """One component's fixed value: a number, or a list of d numbers for a per-coordinate parameter."""
    if param.per_coordinate:
        if dim == GENERAL_D:
            raise SpecError(f"{at}: a fixed {param.name} needs a whole number for 'dim', but dim is 'd'")
        if not isinstance(raw, list) or len(raw) != dim:
            raise SpecError(f"{at} should be a list of {dim} numbers (one per coordinate), but got {short(raw)}")
        vec = tuple(number(e, f"{at}[{i}]") for i, e in enumerate(raw))
        for i, v in enumerate(vec):
            _in_domain(v, param, f"{at}[{i}]", raw[i])
        if param.shape == "simplex" and sum(vec) != 1:
            if abs(float(sum(vec)) - 1) > 1e-9:
                raise SpecError(f"{at} should sum to 1 (probabilities), but sums to {float(sum(vec)):g}")
            vec = (*vec[:-1], Fraction(1) - sum(vec[:-1], Fraction(0)))
        return vec
    v = number(raw, at)
    _in_domain(v, param, at, raw)
    return v


def _in_domain(v: Fraction, param, at: str, raw: Any) -> None:
    if param.domain == "positive" and v <= 0:
        raise SpecError(f"{at} should be > 0 ({param.name} is positive), but got {short(raw)}")
    if param.domain == "unit" and not 0 < v < 1:
        raise SpecError(
            f"{at} should be strictly between 0 and 1 ({param.name} is a probability), but got {short(raw)}"
        )


def _mixing(value: Any, K, where: str) -> Option:
    if isinstance(value, str):
        if value not in ("free", "equal"):
            hint = (
                "; z ~ Bernoulli(theta) is two free weights: write mixing: free with components: 2"
                if value == "bernoulli"
                else suggest(value, ["free", "equal"])
            )
            raise SpecError(f"{where}: 'mixing' should be free, equal or {{fixed: [...]}}, but got {value!r}{hint}")
        return "equal" if value == "free" and K == 1 else value
    if not isinstance(value, dict) or list(value) != ["fixed"] or not isinstance(value["fixed"], list):
        raise SpecError(f"{where}: 'mixing' should be free, equal or {{fixed: [...]}}, but got {short(value)}")
    if K == GENERAL_K:
        raise SpecError(f"{where}: 'mixing.fixed' needs a whole number of components, but components is 'K'")
    values = value["fixed"]
    if len(values) != K:
        raise SpecError(f"{where}: 'mixing.fixed' should have {K} values (one per component), but got {len(values)}")
    ws = [number(v, f"{where}: 'mixing.fixed[{k}]'") for k, v in enumerate(values)]
    for k, w in enumerate(ws):
        if w <= 0:
            raise SpecError(
                f"{where}: 'mixing.fixed[{k}]' should be a weight > 0, but got {values[k]!r}; a component of weight "
                "0 is not part of the mixture: remove it and lower 'components'"
            )
    if abs(float(sum(ws)) - 1) > 1e-9:
        raise SpecError(f"{where}: 'mixing.fixed' weights should sum to 1, but they sum to {float(sum(ws)):g}")
    ws[-1] = Fraction(1) - sum(ws[:-1], Fraction(0))
    return Fixed(tuple(ws))


def _priors(value: Any, family: Family, mixing, where: str) -> tuple[Prior, ...]:
    targets = {"weights": "simplex", **{p.name: _prior_domain(p) for p in family.parameters}}
    out = []
    for target, kind, hyper in parse_priors(value, targets, where, SpecError, family.conjugate):
        if target == "weights" and mixing != "free":
            raise SpecError(
                f"{where}: 'prior.weights': a prior on the weights needs mixing: free, but mixing is {short(mixing)}"
            )
        out.append(Prior(target, kind, hyper))
    return tuple(out)


def _prior_domain(param) -> str:
    return "simplex" if param.shape == "simplex" else param.domain


def family_spec_from_dict(data: dict, where: str = "model") -> FamilySpec:
    family, source = _family(data.get("family"), where)
    keys = (*_COMMON, *family.parameter_names)
    for key in data:
        if key not in keys:
            hint = ""
            if key in ("mean", "variance", "covariance"):
                hint = (
                    f" ({key!r} is a Gaussian option; the {family.name} family's parameters are "
                    f"{', '.join(family.parameter_names)})"
                )
            raise SpecError(
                f"{where}: unknown key {key!r}{suggest(str(key), keys)}{hint} (valid keys: {', '.join(keys)})"
            )
    K = whole_count(data.get("components", 2), "components", GENERAL_K, where, MAX_COMPONENTS)
    if family.univariate:
        if data.get("dim", 1) != 1:
            raise SpecError(
                f"{where}: the {family.name} family is for one data column; 'dim' should be 1 or left "
                f"out, but got {short(data.get('dim'))}"
            )
        dim: int | str = 1
    else:
        dim = whole_count(data.get("dim", GENERAL_D), "dim", GENERAL_D, where)
        if isinstance(dim, int) and any(p.shape == "simplex" for p in family.parameters) and dim < 2:
            raise SpecError(f"{where}: 'dim' is the number of categories, at least 2, but got {dim}")
    mixing = _mixing(data.get("mixing", "free"), K, where)
    options = []
    for p in family.parameters:
        if p.name in data:
            options.append((p.name, _param_option(data[p.name], p, family, K, dim, where)))
    owner: dict[str, str] = {}  # link name -> the parameter that uses it
    for name, o in options:
        for link in o.names if isinstance(o, Linked) else ():
            first = owner.setdefault(link, name)
            if first != name:
                raise SpecError(
                    f"{where}: '{first}.linked' and '{name}.linked' both use the name {link!r}; "
                    "each linked parameter needs names of its own"
                )
    labelled = data.get("labelled", False)
    if not isinstance(labelled, bool):
        raise SpecError(f"{where}: 'labelled' should be true or false, but got {short(labelled)}")
    for text_key in ("name", "description"):
        if text_key in data and not isinstance(data[text_key], str):
            raise SpecError(f"{where}: '{text_key}' should be text, but got {short(data[text_key])}")
    priors = _priors(data["prior"], family, mixing, where) if "prior" in data else ()
    for prior in priors:  # on linked values: a prior on each component's value kappa_k a
        opt = dict(options).get(prior.target)
        if isinstance(opt, Fixed) and all(v is not None for v in opt.values):
            raise SpecError(
                f"{where}: 'prior.{prior.target}': {prior.target} is fixed, so a prior on it "
                "changes nothing; remove the prior or free the parameter"
            )
    free = mixing == "free" or any(
        not (isinstance(o, Fixed) and all(v is not None for v in o.values))
        for o in [dict(options).get(p.name, "free") for p in family.parameters]
    )
    if not free:
        raise SpecError(f"{where}: nothing to estimate: the weights and every parameter are fixed or equal")
    return FamilySpec(
        family=family,
        components=K,
        dim=dim,
        mixing=mixing,
        options=tuple(options),
        priors=priors,
        labelled=labelled,
        source=source,
        name=data.get("name"),
        description=data.get("description"),
    )
