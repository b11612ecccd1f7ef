"""The numeric face of a family model: what ``emsym.em.run_em`` and ``emsym.check`` run.

A ``FamilyCompiledModel`` runs a plan (``emsym.family_plan``: the derivation lowered to plain
data by ``emsym.family_lower``) -- every component at once, see ``emsym.family_plan`` for the
layout.  It needs no sympy: ``emsym.cache.get_model`` builds one from the plan stored beside a
cached derivation, and reads the derivation itself only when something asks for it
(``derivation``, ``params``).

Parameter values (``params``) are arrays keyed by parameter name: ``pi`` (K,), a per-component
scalar (K,), a per-component vector (K, d), a shared scalar (a float) or a shared vector (d,).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .exceptions import DataError
from .family_plan import Fn, Plan, as3, build
from .family_spec import FamilySpec
from .options import Fixed, Linked

if TYPE_CHECKING:
    from .derive import Derivation

__all__ = ["FamilyCompiledModel"]

# A probability or a rate that reaches 0 (or 1) makes 0 * log 0 appear in the E-step; it is held
# this far inside its domain instead, with a CollapseWarning (a prior avoids it; see the README).
EDGE = 1e-12


class FamilyCompiledModel:
    """Numeric face of a family derivation, with the protocol ``emsym.em.run_em`` and ``emsym.check`` use."""

    full = False
    diag = False

    def __init__(self, spec: FamilySpec, plan: Plan, derivation: Callable[[], Derivation]):
        if not spec.concrete:
            raise ValueError("only a spec with a whole number of components and dimension compiles; use instantiate()")
        self.spec: FamilySpec = spec
        self.plan = plan
        self._source = derivation  # gives the derivation when something asks for it
        self._derivation: Derivation | None = None
        self.family = spec.family
        self.K: int = int(spec.components)
        self.d: int = int(spec.dim)
        self.vector = spec.vector
        self.method = plan.method
        self.update_order = tuple(name for name, _, _ in plan.updates)
        # links: kappa (K,) and one mask per group (each name, then each free component); the update of a
        # group's value a is solved group by group with ell = the mask (see _grouped); fixed entries are
        # known.  Every component linked to one name is one group, whose plan reads theta_k as kappa_k a
        # (``<name>:link``, kept equal to theta_1 / kappa_1: ``self.single``); params always hold theta.
        self.groups: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
        self.single = {p.name for p in self.family.parameters if _single(spec.option(p.name))}
        for p in self.family.parameters:
            if isinstance(o := spec.option(p.name), Linked):
                kappa, masks = np.ones(self.K), []
                for idx, coefs in o.groups():
                    kappa[idx] = [float(c) for c in coefs]
                    masks.append(np.isin(np.arange(self.K), idx))
                self.groups[p.name] = (kappa, masks)
        self._logf = build(plan.logf)
        self._log_prior = build(plan.log_prior) if plan.log_prior is not None else None
        self._updates = []
        for name, numeric, node in plan.updates:
            fn = build(node)
            self._updates.append((name, _numeric_update(fn, self.family.parameter(name), self) if numeric else fn))
        self._data: tuple[Any, dict] = (None, {})
        # known values: fixed weights, and fixed parameter values (all components, or some)
        self.known: dict[str, np.ndarray] = {}
        self.fixed_mask: dict[str, np.ndarray] = {}
        if isinstance(spec.mixing, Fixed):
            self.known["pi"] = np.array([float(v) for v in spec.mixing.values])
        for p in self.family.parameters:
            o = spec.option(p.name)
            values = o.values if isinstance(o, Fixed) else None
            if (
                isinstance(o, Linked)
                and not o.single
                and any(e is not None and not isinstance(e, tuple) for e in o.entries)
            ):
                values = tuple(None if e is None or isinstance(e, tuple) else e for e in o.entries)
            if values is not None:
                mask = np.array([v is not None for v in values])
                fill = [np.asarray(v if v is not None else values[int(np.argmax(mask))], dtype=float) for v in values]
                self.known[p.name] = np.array(fill, dtype=float)
                self.fixed_mask[p.name] = mask

    @classmethod
    def from_derivation(cls, derivation: Derivation) -> FamilyCompiledModel:
        """Lower a concrete family derivation to its plan (imports sympy) and compile that."""
        from .family_lower import lower

        return cls(derivation.spec, lower(derivation), lambda: derivation)  # type: ignore[arg-type]

    @property
    def derivation(self) -> Derivation:
        """The derivation the plan came from (a model built from a stored plan reads it on first use)."""
        if self._derivation is None:
            self._derivation = self._source()
        return self._derivation

    @property
    def params(self):
        """The derivation's parameters (``qfunction.Param``: name, kind, domain), for ``emsym.check``."""
        return self.derivation.model.params

    # -- layout ------------------------------------------------------------------------------
    def _shape(self, name: str) -> tuple[int, ...]:
        if name == "pi":
            return (self.K,)
        p = self.family.parameter(name)
        shared = self.spec.option(name) == "shared"
        if p.per_coordinate:
            return (self.d,) if shared else (self.K, self.d)
        return () if shared else (self.K,)

    def _store(self, name: str, value) -> Any:
        a = np.broadcast_to(as3(value), (self.K, self.d, 1))
        if name != "pi" and self.spec.option(name) == "shared":
            a = a[:1]
        p = None if name == "pi" else self.family.parameter(name)
        out = a[:, :, 0] if p is not None and p.per_coordinate else a[:, 0, 0]
        out = np.array(out, dtype=float).reshape(self._shape(name))
        if name in self.fixed_mask:
            out[self.fixed_mask[name]] = self.known[name][self.fixed_mask[name]]
        return float(out) if out.ndim == 0 else out

    def _env(self, XT: np.ndarray, params: dict, R: np.ndarray | None = None) -> dict:
        if self._data[0] is not XT:
            self._data = (XT, {})
        full = dict(params)
        for name, value in self.known.items():  # fixed weights; a parameter fixed for every component
            if name not in self.fixed_mask or name not in full:
                full[name] = value
        if self.spec.mixing == "equal":
            full["pi"] = np.full(self.K, 1.0 / self.K)
        for name, (kappa, _) in self.groups.items():
            full[f"{name}:kappa"] = kappa
            if name in self.single and name in full:
                full[f"{name}:link"] = float(np.asarray(full[name])[0] / kappa[0])
        return {
            "X": XT[None],
            "R": None if R is None else R[:, None, :],
            "params": full,
            "memo": {},
            "data": self._data[1],
        }

    # -- E-step pieces -----------------------------------------------------------------------
    def weights(self, params: dict) -> np.ndarray:
        if self.spec.mixing == "equal":
            return np.full(self.K, 1.0 / self.K)
        if "pi" in self.known:
            return self.known["pi"]
        return np.asarray(params["pi"], dtype=float)

    def log_joint(self, X: np.ndarray, params: dict, out: np.ndarray | None = None) -> np.ndarray:
        env = self._env(X, params)
        logf = np.broadcast_to(as3(self._logf(env)), (self.K, 1, X.shape[1]))[:, 0, :]
        if out is None:
            out = np.empty((self.K, X.shape[1]))
        with np.errstate(divide="ignore"):
            np.add(logf, np.log(self.weights(params))[:, None], out=out)
        return out

    def log_prior(self, params: dict) -> float:
        if self._log_prior is None:
            return 0.0
        return float(np.sum(self._log_prior(self._env(np.zeros((self.d, 1)), params))))

    # -- M-step ------------------------------------------------------------------------------
    def m_step(self, X: np.ndarray, R: np.ndarray, params: dict, exact: bool = False) -> dict:
        new = dict(params)
        cycles = 1000 if exact and self.method == "ECM" else 1
        for _ in range(cycles):
            before = dict(new)
            env = self._env(X, new, R)
            for name, fn in self._updates:
                value = self._grouped(name, fn, env) if name in self.groups else fn(env)
                new[name] = self._store(name, value)
                env["params"][name] = new[name]
            if cycles > 1 and all(np.allclose(new[k], before[k], rtol=1e-14, atol=0) for k in self.update_order):
                break
        return new

    def update_one(self, name: str, X: np.ndarray, R: np.ndarray, params: dict) -> Any:
        env = self._env(X, params, R)
        fn = dict(self._updates)[name]
        value = self._grouped(name, fn, env) if name in self.groups else fn(env)
        return self._store(name, value)

    def _grouped(self, name: str, fn: Fn, env: dict) -> np.ndarray:
        """A parameter linked in groups: the derived update of one group's value a, solved for each group
        with ell = its mask (a free component is a group of its own); fixed components keep their values."""
        kappa, masks = self.groups[name]
        params = env["params"]
        theta = np.array(params[name], dtype=float)
        for mask in masks:
            params[f"{name}:ell"] = mask.astype(float)
            params[f"{name}:link"] = float(np.mean(theta[mask] / kappa[mask]))  # the numeric update's start
            env["memo"] = {}  # the plan's memo holds sums that hold ell
            theta[mask] = kappa[mask] * float(np.asarray(fn(env)).item())
        env["memo"] = {}
        if name in self.single:  # the plan reads theta_k as kappa_k a: the new a
            params[f"{name}:link"] = float(theta[0] / kappa[0])
        return theta[:, None, None]  # components on axis 0

    def Q(self, X: np.ndarray, R: np.ndarray, params: dict) -> float:
        """Q (plus the log prior for MAP-EM) at ``params`` with responsibilities R."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(R * self.log_joint(X, params))) + self.log_prior(params)

    @property
    def n_free(self) -> int:
        count = self.K - 1 if self.spec.mixing == "free" else 0
        for p in self.family.parameters:
            o = self.spec.option(p.name)
            size = self.d - (p.shape == "simplex") if p.per_coordinate else 1
            if p.name in self.groups:
                count += len(self.groups[p.name][1])
            elif o == "shared" or isinstance(o, Linked):
                count += size
            elif isinstance(o, Fixed):
                count += size * int(np.sum(~self.fixed_mask[p.name]))
            else:
                count += size * self.K
        return count

    # -- views -------------------------------------------------------------------------------
    def _full(self, params: dict) -> dict:
        """Every parameter with one row per component (shared ones repeated, fixed ones filled in)."""
        out = {}
        for p in self.family.parameters:
            if p.name in params:
                v = np.asarray(params[p.name], dtype=float)
            else:
                v = self.known[p.name]
            if self.spec.option(p.name) == "shared":
                v = np.broadcast_to(v, (self.K, *v.shape)).copy()
            out[p.name] = v
        return out

    def components(self, params: dict) -> list[dict]:
        """The per-component view: {weight, <parameter>: value} (a float, or an array per coordinate)."""
        w = self.weights(params)
        full = self._full(params)
        return [
            {"weight": float(w[k]), **{name: (float(v[k]) if v.ndim == 1 else v[k].copy()) for name, v in full.items()}}
            for k in range(self.K)
        ]

    def params_from_components(self, comps: list[dict], where: str = "init") -> dict:
        """Map per-component values ({weight, rate} or {weight, p}) to the parameters, checking each."""
        if len(comps) != self.K:
            raise DataError(f"{where}: the model has {self.K} components, but the file gives {len(comps)}")
        params: dict = {}
        if self.spec.mixing == "free":
            w = np.array([_need(c, "weight", f"{where}: components[{k}].weight") for k, c in enumerate(comps)])
            params["pi"] = w
        for p in self.family.parameters:
            option = self.spec.option(p.name)
            mask = self.fixed_mask.get(p.name, np.zeros(self.K, dtype=bool))
            if mask.all():
                continue
            values = []
            for k, c in enumerate(comps):
                at = f"{where}: components[{k}].{p.name}"
                if mask[k]:
                    values.append(self.known[p.name][k])
                    continue
                if option == "shared" and k > 0 and c.get(p.name) is None:
                    values.append(values[0])
                    continue
                follows = self._group_leader(p.name, k)
                if follows is not None and c.get(p.name) is None:  # follows the first component of its group
                    kappa = self.groups[p.name][0]
                    values.append(values[follows] * kappa[k] / kappa[follows])
                    continue
                values.append(_check_value(_need(c, p.name, at), p, self.d, at))
            arr = np.array(values, dtype=float)
            if option == "shared":
                if any(not np.allclose(v, arr[0], rtol=1e-12, atol=0) for v in arr[1:]):
                    raise DataError(
                        f"{where}: the model's {p.name} is shared, so every component needs the same {p.name}, "
                        f"but got {[_show(v) for v in arr]}"
                    )
                params[p.name] = float(arr[0]) if arr.ndim == 1 else arr[0]
            elif p.name in self.groups:
                params[p.name] = self._grouped_values(p.name, arr, where)
            else:
                params[p.name] = arr
        view = self.components(params)
        for k, (given, model) in enumerate(zip(comps, view)):
            for field, value in model.items():
                g = given.get(field)
                if g is not None and not np.allclose(g, value, rtol=1e-9, atol=1e-12):
                    raise DataError(
                        f"{where}: components[{k}].{field} is {_show(g)}, but the model fixes it at {_show(value)}; "
                        "leave it out or make it match"
                    )
        w = np.array([c["weight"] for c in view])
        if np.any(w < 0) or not math.isclose(float(w.sum()), 1.0, rel_tol=0, abs_tol=1e-9):
            raise DataError(
                f"{where}: the weights should be >= 0 and sum to 1, but they are {[_show(x) for x in w]} "
                f"(sum {float(w.sum()):g})"
            )
        return params

    def _group_leader(self, name: str, k: int) -> int | None:
        """The first component of k's linked group, when that is another component (None otherwise)."""
        if name not in self.groups:
            return None
        mask = next((m for m in self.groups[name][1] if m[k]), None)
        first = None if mask is None else int(np.argmax(mask))
        return first if first is not None and first < k else None

    def _grouped_values(self, name: str, values: np.ndarray, where: str) -> np.ndarray:
        """Values of a parameter linked in groups, checked against the links group by group."""
        kappa, masks = self.groups[name]
        out = values.copy()
        for mask in masks:
            a = values[mask] / kappa[mask]
            if not np.allclose(a, a[0], rtol=1e-9, atol=0):
                links = ", ".join("null" if e is None else str(e) for e in self.spec.option(name).as_list())  # type: ignore[union-attr]
                raise DataError(
                    f"{where}: the model links {name} as [{links}], so the "
                    f"components linked to one name should have {name} in those ratios, but got "
                    f"{[_show(v) for v in values]}; give the first component of each name alone, or values in "
                    "the model's ratios"
                )
            out[mask] = kappa[mask] * a[0]
        return out

    def default_init(self, X: np.ndarray, seed: int = 0, labels: np.ndarray | None = None) -> dict:
        """The family's own start (``Family.start``) with equal weights; fixed values stay fixed."""
        rng = np.random.default_rng(seed)
        start = self.family.start(X, self.K, rng)
        params: dict = {}
        if self.spec.mixing == "free":
            params["pi"] = np.full(self.K, 1.0 / self.K)
        for p in self.family.parameters:
            v = np.asarray(start[p.name], dtype=float)
            mask = self.fixed_mask.get(p.name)
            if mask is not None and mask.all():
                continue
            if self.spec.option(p.name) == "shared":
                params[p.name] = float(v.mean()) if v.ndim == 1 else v.mean(axis=0)
                continue
            if p.name in self.groups:  # each group's a: the mean of theta_k / kappa_k over its components
                kappa, masks = self.groups[p.name]
                v = v.copy()
                for m in masks:
                    v[m] = kappa[m] * float(np.mean(v[m] / kappa[m]))
            if mask is not None:
                v = v.copy()
                v[mask] = self.known[p.name][mask]
            params[p.name] = v
        return params

    # -- for emsym check ---------------------------------------------------------------------
    def random_truth(self, rng: np.random.Generator) -> dict:
        truth = self.family.truth(self.K, self.d, rng)
        comps: list[dict] = []
        w = rng.dirichlet(np.full(self.K, 4.0)) if self.spec.mixing == "free" else self.weights({})
        for k in range(self.K):
            entry: dict = {"weight": float(w[k])}
            for p in self.family.parameters:
                v = np.asarray(truth[p.name], dtype=float)
                entry[p.name] = v[0] if self.spec.option(p.name) == "shared" else v[k]
                leader = self._group_leader(p.name, k)
                if leader is not None:  # in a group: its first component's value times the ratio
                    kappa = self.groups[p.name][0]
                    entry[p.name] = comps[leader][p.name] * kappa[k] / kappa[leader]
            comps.append(entry)
        for p in self.family.parameters:  # fixed values win
            if p.name in self.known:
                for k in range(self.K):
                    if self.fixed_mask[p.name][k]:
                        comps[k][p.name] = self.known[p.name][k]
        return self.params_from_components(comps, where="check truth")

    def sample(self, params: dict, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.choice(self.K, size=n, p=self.weights(params))
        return self.family.sample(self._full(params), z, rng)

    def directions(self, names: list[str], params: dict):
        """Feasible unit perturbations of the named parameters: (label, {name: delta})."""
        for name in names:
            v = np.asarray(params[name], dtype=float)
            mask = self.fixed_mask.get(name, np.zeros(self.K, dtype=bool))
            simplex = name == "pi" or (name != "pi" and self.family.parameter(name).shape == "simplex")
            if name == "pi":
                for a in range(1, self.K):
                    e = np.zeros(self.K)
                    e[0], e[a] = 1.0, -1.0
                    yield f"pi_1 - pi_{a + 1}", {name: e}
                continue
            if name in self.groups:  # each group's a moves, its components' values with it
                kappa, masks = self.groups[name]
                for g, m in enumerate(masks):
                    yield f"{name} (group {g + 1})", {name: np.where(m, kappa, 0.0)}
                continue
            shared = self.spec.option(name) == "shared"
            rows = [None] if shared else [k for k in range(self.K) if not mask[k]]
            for k in rows:
                if v.ndim == 0:
                    yield name, {name: 1.0}
                    continue
                cols = range(1, self.d) if simplex else range(self.d) if v.ndim == 2 or shared else [None]
                for col in cols:
                    e = np.zeros_like(v)
                    idx = (col,) if k is None else (k,) if col is None else (k, col)
                    e[idx] = 1.0
                    if simplex:
                        e[(0,) if k is None else (k, 0)] = -1.0
                    label = (
                        f"{name}[{k}]" if col is None else f"{name}[{k},{col}]" if k is not None else f"{name}[{col}]"
                    )
                    yield label, {name: e}

    def moved(self, old: dict, new: dict, spread: float) -> float:
        """The largest parameter change of one iteration (relative for rates, absolute for probabilities)."""
        if old is new:
            return 0.0
        worst = 0.0
        for name in self.update_order:
            a, b = np.asarray(old[name], dtype=float), np.asarray(new[name], dtype=float)
            positive = name != "pi" and self.family.parameter(name).domain == "positive"
            change = np.abs(a - b) / (np.abs(a) if positive else 1.0)
            worst = max(worst, float(np.max(change)))
        return worst

    def data_scale(self, X: np.ndarray) -> float:
        return 1.0  # the stopping rule measures rates relatively and probabilities absolutely

    def floor(self, spread: float, variance_floor: float | None) -> float | None:
        return None  # no variance to floor; guard() keeps rates and probabilities inside their domains

    def guard(self, old: dict, new: dict, floor, warn) -> dict:
        for name in self.update_order:
            v = new[name]
            if not np.all(np.isfinite(v)):
                new[name] = old[name]
                warn(f"{name}: the update is not finite (a component with no points, N_k = 0); kept the previous value")
                continue
            domain = "simplex" if name == "pi" else self.family.parameter(name).domain
            a = np.asarray(v, dtype=float)
            if domain in ("unit", "simplex") and name != "pi" and (np.any(a < EDGE) or np.any(a > 1 - EDGE)):
                fixed = np.clip(a, EDGE, 1 - EDGE)
                if self.family.parameter(name).shape == "simplex":
                    fixed = fixed / fixed.sum(axis=-1, keepdims=True)
                new[name] = float(fixed) if fixed.ndim == 0 else fixed
                warn(
                    f"{name}: a probability reached {'0' if np.any(a < EDGE) else '1'} (no point of a component "
                    f"shows that value); held at {EDGE:g} from the edge -- the maximum-likelihood value is on the "
                    "boundary; a prior (prior: {" + name + ": {beta: [2, 2]}}) keeps it inside"
                )
            elif domain == "positive" and np.any(a <= 0):
                new[name] = np.maximum(a, EDGE) if a.ndim else EDGE
                warn(f"{name}: a rate reached 0; held at {EDGE:g} (a prior, e.g. gamma: [2, 1], keeps it positive)")
        return new

    def check_data(self, X: np.ndarray, where: str = "data") -> None:
        """Refuse values outside the family's support, naming the first one (row numbers are file lines)."""
        bad = self.family.support.check(X)
        if np.any(bad):
            r, c = map(int, np.argwhere(bad)[0])
            raise DataError(
                f"{where}: line {r + 2}, column {c + 1}: the {self.family.name} family needs "
                f"{self.family.support.text}, but got {_show(X[r, c])}"
            )
        if self.family.support.row is not None:
            rows = self.family.support.row(X)
            if np.any(rows):
                r = int(np.argmax(rows))
                raise DataError(
                    f"{where}: line {r + 2}: the {self.family.name} family needs each row to have "
                    f"{self.family.support.row_text}, but got {X[r].tolist()}"
                )


def _single(option) -> bool:
    """Every component linked to one name (the plan reads theta_k as kappa_k a)."""
    return isinstance(option, Linked) and option.single


def _need(comp: dict, field: str, where: str):
    value = comp.get(field)
    if value is None:
        raise DataError(f"{where} is missing; the model estimates it, so give a starting value")
    return value


def _check_value(value, param, d: int, at: str):
    a = np.asarray(value, dtype=float)
    if param.per_coordinate:
        if a.shape != (d,):
            raise DataError(f"{at} should be a list of {d} numbers (one per coordinate), but got {_show(value)}")
    elif a.ndim != 0:
        raise DataError(f"{at} should be one number, but got {_show(value)}")
    if param.domain == "positive" and np.any(a <= 0):
        raise DataError(f"{at} should be > 0, but got {_show(value)}")
    if param.domain == "unit" and np.any((a <= 0) | (a >= 1)):
        raise DataError(f"{at} should be strictly between 0 and 1, but got {_show(value)}")
    if param.shape == "simplex":
        if abs(float(a.sum()) - 1) > 1e-6:
            raise DataError(f"{at} should sum to 1 (probabilities), but sums to {float(a.sum()):.10g}")
        a = a / a.sum()
    return a


def _show(v):
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a.tolist()


def _numeric_update(derivative: Fn, param, model: FamilyCompiledModel) -> Fn:
    """No closed form: the root of dQ/dtheta_k for every component at once, on the parameter's natural scale.

    Q is concave in the parameter along each component, so the root is the maximiser.  Bracketing
    by doubling steps from the current value, then bisection; a component with no sign change
    keeps its value.  A linked parameter has one unknown, a (``<name>:link`` in the environment).
    """
    linked = param.name in model.groups
    name, domain = (f"{param.name}:link" if linked else param.name), param.domain
    rows = 1 if linked else model.K
    maps: dict[str, tuple[Callable, Callable]] = {
        "positive": (np.exp, np.log),
        "unit": (lambda t: 1 / (1 + np.exp(-t)), lambda p: np.log(p / (1 - p))),
    }
    to_p, to_t = maps.get(domain, (lambda t: t, lambda p: p))

    def update(env):
        params = env["params"]
        old = np.asarray(params[name], dtype=float).copy()

        def g(t):
            params[name] = to_p(t)
            env["memo"] = {}
            with np.errstate(all="ignore"):
                return np.broadcast_to(as3(derivative(env)), (rows, 1, 1))[:, 0, 0].copy()

        try:
            a = to_t(old)
            fa = g(a)
            b, fb = a.copy(), fa.copy()
            step = np.ones_like(a)
            open_ = np.ones(a.shape, dtype=bool)
            for _ in range(60):
                trial = np.where(open_, a + np.where(fa > 0, step, -step), b)
                ft = g(trial)
                crossed = open_ & ((np.sign(ft) != np.sign(fa)) | (ft == 0))
                b = np.where(open_, trial, b)
                fb = np.where(open_, ft, fb)
                moving = open_ & ~crossed
                a = np.where(moving, trial, a)
                fa = np.where(moving, ft, fa)
                step = np.where(moving, 2 * step, step)
                open_ = moving
                if not open_.any():
                    break
            ok = ~open_ & np.isfinite(fa) & np.isfinite(fb)
            for _ in range(200):
                c = (a + b) / 2
                fc = g(c)
                same = np.sign(fc) == np.sign(fa)
                a, fa = np.where(same, c, a), np.where(same, fc, fa)
                b, fb = np.where(same, b, c), np.where(same, fb, fc)
                if np.all(np.abs(b - a) <= 1e-13 * np.maximum(1.0, np.abs(c))):
                    break
            return np.reshape(np.where(ok, to_p((a + b) / 2), old), (-1, 1, 1))  # components on axis 0
        finally:
            params[name] = old

    return update
