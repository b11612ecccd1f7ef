"""Model variants: the ``ModelSpec`` that every later stage starts from.

A spec is read from a YAML file, a preset name or a dict, validated key by key, and
frozen.  Validation refuses what is provably wrong (unknown keys, impossible
combinations, wrong-length fixed values, non-positive variances, weights that do not
sum to one) with a one-line message naming the key, what was expected and what came in.

>>> spec = load_spec("standard")
>>> spec.components, spec.mixing, spec.mean, spec.variance
(2, 'free', 'free', 'free')
>>> load_spec({"components": 2, "varience": "tied"})
Traceback (most recent call last):
...
emsym.exceptions.SpecError: model: unknown key 'varience'; did you mean 'variance'? (valid keys: ...)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Union

from . import mclust
from .exceptions import SpecError
from .family_spec import FamilySpec, Prior, family_spec_from_dict
from .options import (
    GENERAL_D,
    GENERAL_K,
    LIMITS,
    Fixed,
    Linked,
    Option,
    SpecViews,
    _count,
    _number,
    _plain,
    linked_entry,
    option_dict,
    suggest,
)
from .priors import parse_priors
from .safeio import load_yaml, read_text

__all__ = ["LIMITS", "PRESETS", "FamilySpec", "Fixed", "ModelSpec", "Spec", "load_spec", "preset_names", "suggest"]


@dataclass(frozen=True)
class ModelSpec(SpecViews):
    """A Gaussian mixture variant (see the README's "Model files" section).

    Parameters
    ----------
    components : int or "K"
        Number of components; ``"K"`` derives for a general number (derivation only).
    dim : int or "d"
        Dimension of a data point; ``"d"`` derives for a general dimension.
    mixing : "free", "equal", "bernoulli" or Fixed
        ``bernoulli`` needs two components: z ~ Bernoulli(theta), component 2 is z = 1
        and has weight theta.
    mean : "free", "shared" or Fixed
    variance : "free", "tied" or Fixed
        Variances (sigma squared), not standard deviations; with a full covariance, the
        covariance matrices (a fixed one: symmetric positive definite d x d).
    covariance : "full", "diag", "spherical" or an mclust name
        Shape of a component's covariance when dim > 1.  Six mclust names are read as these
        (EII = spherical tied, ..., VVV = full free); VEI, EVI, VEE, EVE, VVE, EEV, VEV and
        EVV stay as the name (a constrained covariance block, see ``emsym.mclust``).
    labelled : bool
        Some points come with their component (semi-supervised EM): the derivation splits the
        objective into labelled and unlabelled sums.  The updates are the same, with one-hot
        responsibilities for the labelled points.
    """

    family: str = "gaussian"
    components: int | str = 2
    dim: int | str = 1
    mixing: Option = "free"
    mean: Option = "free"
    variance: Option = "free"
    covariance: str = "full"
    labelled: bool = False
    priors: tuple[Prior, ...] = ()  # MAP-EM: Dirichlet on the weights, Normal on means, InvGamma on variances
    name: str | None = dataclasses.field(default=None, compare=False)
    description: str | None = dataclasses.field(default=None, compare=False)

    # -- views -------------------------------------------------------------------------
    @property
    def vector(self) -> bool:
        """True when points are vectors (dim > 1 or a general d)."""
        return self.general_d or int(self.dim) > 1

    def to_dict(self) -> dict:
        opt = option_dict

        out = {
            "family": self.family,
            "components": self.components,
            "dim": self.dim,
            "mixing": opt(self.mixing),
            "mean": opt(self.mean),
            "variance": opt(self.variance),
            "covariance": self.covariance,
        }
        if self.labelled:
            out["labelled"] = True
        if self.priors:
            out["prior"] = {p.target: p.to_dict() for p in self.priors}
        if self.name:
            out["name"] = self.name
        return out

    def general(self) -> ModelSpec | None:
        """The same variant for a general K (k-indexed formulas), or None where K is pinned.

        Fixed values need one entry per component and Bernoulli mixing needs two components,
        so those variants have no general-K form.
        """
        if self.general_k:
            return self
        pinned = (Fixed, Linked)
        if any(isinstance(o, pinned) for o in (self.mixing, self.mean, self.variance)) or self.mixing == "bernoulli":
            return None
        return dataclasses.replace(self, components=GENERAL_K)

    def label(self) -> str:
        return self.name or "model"

    # what init files and exercises call a component's values (a family spec answers the same)
    init_fields = None  # the Gaussian's own reader (emsym.data): a mean of d numbers, a variance or covariance

    def view_names(self) -> set[str]:
        """The names an exercise may ask for: weight_k, mean_k, variance_k, sd_k (``emsym.solve``'s view)."""
        K = int(self.components) if self.concrete else 0
        return {f"{f}_{k}" for f in ("weight", "mean", "variance", "sd") for k in range(1, K + 1)}

    def family_form(self) -> FamilySpec | None:
        """The same variant as a family of the generic engine (``emsym.families.gaussian``), or None
        where it has a covariance matrix (full, tied full, an mclust block).

        Bernoulli mixing is two free weights (theta is component 2's); a tied variance is a shared
        one.  ``emsym check`` derives this form independently and compares the updates.
        """
        from .families.gaussian import FORMS, form

        kind = form(self.vector, self.covariance)
        if kind is None:
            return None
        options = (("mean", self.mean), ("variance", "shared" if self.variance == "tied" else self.variance))
        return FamilySpec(
            family=FORMS[kind],
            components=self.components,
            dim=self.dim,
            mixing="free" if self.mixing == "bernoulli" else self.mixing,
            options=tuple((name, o) for name, o in options if o != "free"),
            priors=self.priors,
            labelled=self.labelled,
            source=f"gaussian ({kind})",
            name=self.name,
            description=self.description,
        )


Spec = Union[ModelSpec, FamilySpec]  # noqa: UP007 - a runtime alias: any model a file describes


# -- parsing ---------------------------------------------------------------------------
_KEYS = (
    "family",
    "components",
    "dim",
    "mixing",
    "mean",
    "variance",
    "covariance",
    "labelled",
    "prior",
    "name",
    "description",
)
_CHOICES = {
    "mixing": ("free", "equal", "bernoulli"),
    "mean": ("free", "shared"),
    "variance": ("free", "tied"),
    "covariance": ("full", "diag", "spherical"),
}


def _option(data: dict, key: str, where: str) -> Option:
    value = data.get(key, "free")
    choices = _CHOICES[key]
    if isinstance(value, str):
        if value not in choices:
            raise SpecError(
                f"{where}: '{key}' should be one of {', '.join(choices)} or {{fixed: [...]}}, "
                f"but got {value!r}{suggest(value, choices)}"
            )
        return value
    if isinstance(value, list):
        raise SpecError(f"{where}: '{key}' got a bare list {value!r}; write {key}: {{fixed: {value!r}}}")
    if isinstance(value, dict) and key in ("mean", "variance") and list(value) == ["linked"]:
        entries = value["linked"]
        if not isinstance(entries, list) or not entries:
            raise SpecError(
                f"{where}: '{key}.linked' should be a list with one entry per component, but got {entries!r}"
            )
        return Linked(tuple(linked_entry(e, f"{where}: '{key}.linked[{i}]'") for i, e in enumerate(entries)))
    if isinstance(value, dict):
        extra = [k for k in value if k != "fixed"]
        if extra or "fixed" not in value:
            bad = extra[0] if extra else "(nothing)"
            raise SpecError(
                f"{where}: '{key}' as a mapping takes only the key 'fixed'"
                + (" or 'linked'" if key in ("mean", "variance") else "")
                + f", but got {bad!r}{suggest(bad, ['fixed', 'linked'])}"
            )
        values = value["fixed"]
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: '{key}.fixed' should be a list with one value per component, but got {values!r}")
        return Fixed(tuple(values))  # checked against K and dim in _check_fixed
    raise SpecError(f"{where}: '{key}' should be one of {', '.join(choices)} or {{fixed: [...]}}, but got {value!r}")


def _check_linked(kw: dict, where: str) -> None:
    """Linked means or variances (mixtools' constraints): one dimension, one entry per component."""
    names: dict[str, str] = {}
    for key in ("mean", "variance"):
        opt = kw[key]
        if not isinstance(opt, Linked):
            continue
        if kw["dim"] != 1:
            raise SpecError(
                f"{where}: '{key}.linked' is for one-dimensional data (as mixtools), but dim is {kw['dim']!r}"
            )
        if kw["components"] == GENERAL_K or len(opt.entries) != kw["components"]:
            raise SpecError(
                f"{where}: '{key}.linked' should have one entry per component ({kw['components']}), "
                f"but got {len(opt.entries)}"
            )
        if not opt.names:
            raise SpecError(
                f"{where}: '{key}.linked' links nothing (no entry names a parameter); "
                f"use {key}: free or {{fixed: [...]}}"
            )
        for i, e in enumerate(opt.entries):
            if key == "variance" and e is not None and (e[0] if isinstance(e, tuple) else e) <= 0:
                raise SpecError(
                    f"{where}: 'variance.linked[{i}]' should be a positive multiple of a name or a variance > 0, "
                    f"but got {opt.as_list()[i]!r}"
                )
        for name in opt.names:
            if names.setdefault(name, key) != key:
                raise SpecError(f"{where}: the linked name {name!r} is used by both the means and the variances")


def _partial_fix(key: str, opt: Fixed, dim: Any, where: str) -> Linked:
    """``{fixed: [null, 80]}``: component 2's value fixed, component 1's free.  In one dimension this is
    a link list without names (each null its own free parameter, each number fixed), derived and run
    as ``linked`` is."""
    if all(raw is None for raw in opt.values):
        raise SpecError(f"{where}: '{key}.fixed' has no value (every entry is null); write {key}: free")
    if dim != 1:
        raise SpecError(
            f"{where}: '{key}.fixed' with null entries (a partial fix) is for one-dimensional data, but dim is "
            f"{dim!r}; in several dimensions fix every component's {key} or none"
        )
    entries = []
    for i, raw in enumerate(opt.values):
        v = None if raw is None else _number(raw, f"{where}: '{key}.fixed[{i}]'")
        if key == "variance" and v is not None and v <= 0:
            raise SpecError(f"{where}: 'variance.fixed[{i}]' should be a variance > 0, but got {raw!r}")
        entries.append(v)
    return Linked(tuple(entries))


def _check_fixed(spec_kw: dict, where: str) -> None:
    K, dim = spec_kw["components"], spec_kw["dim"]
    for key in ("mixing", "mean", "variance"):
        opt = spec_kw[key]
        if not isinstance(opt, Fixed):
            continue
        if K == GENERAL_K:
            raise SpecError(
                f"{where}: '{key}.fixed' needs a whole number of components, but components is 'K'; "
                f"set components to {len(opt.values)}"
            )
        if len(opt.values) != K:
            raise SpecError(
                f"{where}: '{key}.fixed' should have {K} values (one per component), but got {len(opt.values)}"
            )
        if key != "mixing" and any(raw is None for raw in opt.values):
            spec_kw[key] = _partial_fix(key, opt, dim, where)
            continue
        vals: list = []
        for i, raw in enumerate(opt.values):
            at = f"{where}: '{key}.fixed[{i}]'"
            if key == "mean" and (dim == GENERAL_D or dim > 1):
                if dim == GENERAL_D:
                    raise SpecError(f"{where}: fixed vector means need a whole number for 'dim', but dim is 'd'")
                if not isinstance(raw, list) or len(raw) != dim:
                    raise SpecError(
                        f"{at} should be a list of {dim} numbers (a mean in {dim} dimensions), but got {raw!r}"
                    )
                vals.append(tuple(_number(e, f"{at}[{j}]") for j, e in enumerate(raw)))
                continue
            if key == "variance" and spec_kw.get("covariance") == "full" and (dim == GENERAL_D or dim > 1):
                if dim == GENERAL_D:
                    raise SpecError(f"{where}: fixed covariance matrices need a whole number for 'dim', but dim is 'd'")
                vals.append(_covariance_matrix(raw, dim, at))
                continue
            if key == "variance" and spec_kw.get("covariance") == "diag" and (dim == GENERAL_D or dim > 1):
                if dim == GENERAL_D:
                    raise SpecError(f"{where}: fixed diagonal variances need a whole number for 'dim', but dim is 'd'")
                if not isinstance(raw, list) or len(raw) != dim:
                    raise SpecError(f"{at} should be a list of {dim} variances (the diagonal), but got {raw!r}")
                vec = tuple(_number(e, f"{at}[{j}]") for j, e in enumerate(raw))
                if any(v <= 0 for v in vec):
                    raise SpecError(f"{at} should hold variances > 0, but got {raw!r}")
                vals.append(vec)
                continue
            v = _number(raw, at)
            if key == "variance" and v <= 0:
                raise SpecError(f"{at} should be a variance > 0, but got {raw!r}")
            if key == "mixing" and v <= 0:
                # A component of weight 0 generates no point: its other parameters cannot be estimated
                # and its log-weight is -infinity. The model is the one without that component.
                raise SpecError(
                    f"{at} should be a weight > 0, but got {raw!r}; a component of weight 0 is not part of the "
                    "mixture: remove it (and its entries in the other fixed lists) and lower 'components'"
                )
            vals.append(v)
        if key == "mixing" and sum(vals) != 1:
            total = float(sum(vals))
            if abs(total - 1) > 1e-9:
                raise SpecError(f"{where}: 'mixing.fixed' weights should sum to 1, but they sum to {total:g}")
            vals[-1] = 1 - sum(vals[:-1])  # absorb decimal rounding such as 0.1 + 0.2 + 0.7
        spec_kw[key] = Fixed(tuple(vals))


def _mclust_name(name: str, data: dict, kw: dict, where: str) -> str:
    """Read an mclust name: an alias of (covariance, variance), or a decomposed model of its own."""
    if not (kw["dim"] == GENERAL_D or kw["dim"] > 1):
        raise SpecError(
            f"{where}: covariance {name!r} (mclust) is for d > 1 dimensions; in one dimension use "
            f"variance: tied (mclust 'E') or variance: free (mclust 'V')"
        )
    if "variance" in data and (data["variance"] != "free" or name in mclust.ALIASES):
        raise SpecError(
            f"{where}: covariance {name!r} ({mclust.describe(name)}) already says what the variances "
            f"are; leave 'variance' out, but got variance: {data['variance']!r}"
        )
    if name in mclust.ALIASES:
        cov, kw["variance"] = mclust.ALIASES[name]
        return cov
    if kw["mean"] != "free":
        raise SpecError(
            f"{where}: covariance {name!r} (mclust) needs a free mean per component, but got mean: {data.get('mean')!r}"
        )
    return name


def _covariance_matrix(raw: Any, dim: int, at: str) -> tuple:
    """A fixed d x d covariance: symmetric and positive definite, exact entries."""
    if not isinstance(raw, list) or len(raw) != dim or any(not isinstance(row, list) or len(row) != dim for row in raw):
        raise SpecError(
            f"{at} should be a {dim}x{dim} covariance matrix (a list of {dim} rows of {dim} numbers), but got {raw!r}"
        )
    rows = tuple(tuple(_number(e, f"{at}[{i}][{j}]") for j, e in enumerate(row)) for i, row in enumerate(raw))
    _check_spd(rows, at, raw)
    return rows


def _check_spd(rows: tuple, at: str, raw: Any) -> None:
    """A square matrix of exact numbers: symmetric, and positive definite (decided exactly)."""
    dim = len(rows)
    for i in range(dim):
        for j in range(i):
            if rows[i][j] != rows[j][i]:
                raise SpecError(
                    f"{at} should be symmetric, but entry [{i}][{j}] = {_plain(rows[i][j])} "
                    f"differs from [{j}][{i}] = {_plain(rows[j][i])}"
                )
    # positive definite <=> every leading principal minor > 0 (Sylvester), decided exactly
    for m in range(1, dim + 1):
        minor = _det([list(r[:m]) for r in rows[:m]])
        if minor <= 0:
            raise SpecError(
                f"{at} should be positive definite, but its leading {m}x{m} minor is "
                f"{float(minor):g} (a covariance needs all > 0); got {raw!r}"
            )


def _det(a: list) -> Fraction:
    """Exact determinant by fraction-valued Gaussian elimination."""
    a = [list(r) for r in a]
    n, det = len(a), Fraction(1)
    for c in range(n):
        pivot = next((r for r in range(c, n) if a[r][c] != 0), None)
        if pivot is None:
            return Fraction(0)
        if pivot != c:
            a[c], a[pivot] = a[pivot], a[c]
            det = -det
        det *= a[c][c]
        for r in range(c + 1, n):
            f = a[r][c] / a[c][c]
            a[r] = [x - f * y for x, y in zip(a[r], a[c])]
    return det


def spec_from_dict(data: Any, where: str = "model") -> Spec:
    if not isinstance(data, dict):
        raise SpecError(
            f"{where}: a model should be a mapping of keys (components, dim, mixing, ...), "
            f"but got {type(data).__name__}"
        )
    family = data.get("family", "gaussian")
    if family != "gaussian":
        return family_spec_from_dict(data, where)
    for key in data:
        if key not in _KEYS:
            raise SpecError(
                f"{where}: unknown key {key!r}{suggest(key, _KEYS)} (valid keys: {', '.join(sorted(_KEYS))})"
            )
    kw: dict[str, Any] = {
        "family": family,
        "components": _count(data.get("components", 2), "components", GENERAL_K, where),
        "dim": _count(data.get("dim", 1), "dim", GENERAL_D, where),
        "mixing": _option(data, "mixing", where),
        "mean": _option(data, "mean", where),
        "variance": _option(data, "variance", where),
    }
    cov = data.get("covariance", "full")
    if cov not in _CHOICES["covariance"] and cov not in mclust.NAMES:
        raise SpecError(
            f"{where}: 'covariance' should be one of full, diag, spherical or an mclust name "
            f"({', '.join(mclust.NAMES)}), but got {cov!r}"
            f"{suggest(cov, _CHOICES['covariance'] + mclust.NAMES)}"
        )
    if cov in mclust.NAMES:
        cov = _mclust_name(cov, data, kw, where)
    kw["covariance"] = cov
    labelled = data.get("labelled", False)
    if not isinstance(labelled, bool):
        raise SpecError(f"{where}: 'labelled' should be true or false, but got {labelled!r}")
    kw["labelled"] = labelled
    for text_key in ("name", "description"):
        if text_key in data and not isinstance(data[text_key], str):
            raise SpecError(f"{where}: '{text_key}' should be text, but got {data[text_key]!r}")
    _check_linked(kw, where)
    _check_fixed(kw, where)  # after the links: a partial fix becomes a link list without names
    kw.pop("covariance")
    K, dim = kw["components"], kw["dim"]
    vector = dim == GENERAL_D or dim > 1
    if not vector:
        cov = "full"  # in one dimension full, diag and spherical are the same model
    if kw["mixing"] == "bernoulli" and K != 2:
        raise SpecError(
            f"{where}: mixing 'bernoulli' needs exactly 2 components (z ~ Bernoulli(theta)), but components is {K!r}"
        )
    if kw["mixing"] == "free" and K == 1:
        kw["mixing"] = "equal"  # one component: its weight is 1, nothing to estimate
    free = [
        k
        for k in ("mixing", "mean", "variance")
        if (isinstance(kw[k], str) and kw[k] in ("free", "bernoulli", "shared", "tied")) or isinstance(kw[k], Linked)
    ]
    if not free:
        raise SpecError(
            f"{where}: nothing to estimate: mixing, mean and variance are all fixed or equal; "
            f"make at least one of them free, shared or tied"
        )
    priors = _gaussian_priors(data["prior"], kw, cov, where) if "prior" in data else ()
    return ModelSpec(covariance=cov, priors=priors, name=data.get("name"), description=data.get("description"), **kw)


def _gaussian_priors(value: Any, kw: dict, cov: str, where: str) -> tuple[Prior, ...]:
    """Dirichlet on free weights, Normal on free or shared means, InvGamma on free or tied variances,
    InvWishart on free or tied full covariance matrices."""
    vector = kw["dim"] == GENERAL_D or kw["dim"] > 1
    matrix = vector and (cov == "full" or cov in mclust.DECOMPOSED)
    blocked = (
        [t for t in value if t in ("mean", "variance")] if matrix and cov != "full" and isinstance(value, dict) else []
    )
    if blocked:  # before the kinds are read: no kind of prior is derived for a block
        raise SpecError(
            f"{where}: 'prior.{blocked[0]}': priors on an mclust covariance block ({cov}) are not derived; use "
            "covariance: full (an inverse-Wishart prior on the covariances), spherical or diagonal (inverse-gamma "
            "priors on the variances), or no prior"
        )
    out = []
    targets = {"weights": "simplex", "mean": "real", "variance": "covariance" if matrix else "variance"}
    for target, kind, hyper in parse_priors(value, targets, where, SpecError):
        option = kw["mixing" if target == "weights" else target]
        estimated = {"weights": ("free",), "mean": ("free", "shared"), "variance": ("free", "tied")}[target]
        if isinstance(option, Fixed) or (isinstance(option, str) and option not in estimated):
            raise SpecError(
                f"{where}: 'prior.{target}': the {target} is {_plain_option(option)}, so a prior on it changes "
                f"nothing; a prior needs {' or '.join(estimated)} {target}"
            )
        if kind == "inverse-wishart":
            _check_wishart(hyper, kw["dim"], f"{where}: 'prior.{target}.{kind}'")
        out.append(Prior(target, kind, hyper))
    return tuple(out)


def _check_wishart(hyper: tuple, dim: Any, at: str) -> None:
    """nu > d - 1, and a matrix scale d x d, symmetric and positive definite."""
    nu, psi = hyper
    if dim == GENERAL_D:
        if isinstance(psi, tuple):
            raise SpecError(f"{at}: a matrix scale needs a concrete dim (it is d x d); give a number s (Psi = s I)")
        return
    if nu <= dim - 1:
        raise SpecError(f"{at}: nu should be > d - 1 = {dim - 1} (a proper inverse Wishart), but got {_plain(nu)}")
    if isinstance(psi, tuple):
        if len(psi) != dim:
            raise SpecError(f"{at}: Psi should be {dim} x {dim} (the model's dim), but got {len(psi)} x {len(psi)}")
        _check_spd(psi, f"{at}: Psi", _plain(psi))


def _plain_option(option: Any) -> str:
    return "fixed" if isinstance(option, Fixed) else str(option)


# -- presets (the seed variants) -------------------------------------------------------
PRESETS: dict[str, dict] = {
    "standard": {
        "description": "Two 1-d Gaussians with free weights, means and variances (MIT 6.86x EM homework).",
        "components": 2,
    },
    "standard-general": {
        "description": "K 1-d Gaussians, all parameters free, for a general K (Georgia Tech GMM lecture).",
        "components": "K",
    },
    "fixed-sigma": {
        "description": "Two 1-d Gaussians whose standard deviations are fixed at 10 (NYU Q4).",
        "components": 2,
        "variance": {"fixed": [100, 100]},
    },
    "equal-shared-fixed": {
        "description": "Equal weights, one shared mean, standard deviations fixed at 1 and 2 (NYU Q5).",
        "components": 2,
        "mixing": "equal",
        "mean": "shared",
        "variance": {"fixed": [1, 4]},
    },
    "shared-mean-bernoulli": {
        "description": "z ~ Bernoulli(theta), one shared mean, a free variance per component (NYU Q6).",
        "components": 2,
        "mixing": "bernoulli",
        "mean": "shared",
    },
    "spherical": {
        "description": "K spherical Gaussians N(mu_k, sigma_k^2 I) in d dimensions (SUTD 50.007 notes).",
        "components": "K",
        "dim": "d",
        "covariance": "spherical",
    },
    "tied-variance": {
        "description": "Three 1-d Gaussians sharing one variance.",
        "components": 3,
        "variance": "tied",
    },
    "full": {
        "description": "K Gaussians with free full covariance matrices in d dimensions (Georgia Tech notes).",
        "components": "K",
        "dim": "d",
        "covariance": "full",
    },
    "tied-full": {
        "description": "K Gaussians sharing one full covariance matrix in d dimensions.",
        "components": "K",
        "dim": "d",
        "covariance": "full",
        "variance": "tied",
    },
}
for _name in mclust.NAMES:  # emsym derive VEI, ...
    PRESETS[_name] = {
        "description": f"mclust model {_name}: {mclust.describe(_name)}.",
        "components": "K",
        "dim": "d",
        "covariance": _name,
    }


def preset_names() -> list[str]:
    return sorted(PRESETS)


def _preset(name: str) -> Spec:
    data = dict(PRESETS[name])
    data["name"] = name
    return spec_from_dict(data, where=f"preset '{name}'")


def for_data(spec: Spec, dim: int, where: str = "model") -> Spec:
    """``spec`` for data points of ``dim`` coordinates: a general d (with a whole K) becomes the data's.

    The variant is read again with that d, so every rule for it applies: a categorical needs two
    categories or more, an mclust name more than one dimension (a SpecError naming the rule).  The
    model-file limit on dim (``LIMITS``) guards against a file asking for a huge d; a d the data
    has is not capped (a Bernoulli mixture of 28 x 28 binary images has 784), so the rules are
    read at min(d, limit) -- each is a lower bound on d -- and the data's d is put in after.
    """
    if not spec.general_d or spec.general_k:
        return spec
    probe = min(dim, LIMITS["dim"])
    out = spec_from_dict({**spec.to_dict(), "dim": probe}, where=f"{where} (dim {dim}, from the data)")
    return dataclasses.replace(out, dim=dim, name=spec.name, description=spec.description)


def load_spec(source: str | os.PathLike | dict | Spec) -> Spec:
    """A validated ``ModelSpec`` from a preset name, a YAML file path, or a dict."""
    if isinstance(source, (ModelSpec, FamilySpec)):
        return source
    if isinstance(source, dict):
        return spec_from_dict(source)
    text = str(source)
    if text in PRESETS:
        return _preset(text)
    path = Path(text)
    if not path.is_file():
        hint = suggest(text, PRESETS)
        raise SpecError(f"model {text!r} is neither a preset ({', '.join(preset_names())}) nor a file{hint}")
    data, _ = load_yaml(read_text(path, "model file", SpecError), str(path), SpecError)
    spec = spec_from_dict(data, where=str(path))
    if spec.name is None:
        spec = dataclasses.replace(spec, name=path.stem)
    return spec
