"""The converged EM estimate is a maximum of the log-likelihood itself (not only of Q).

For the variants the core issue names -- shared mean with Bernoulli z and free variances, fixed
variances, equal mixing + shared mean + fixed variances, tied variance with three components,
fixed means, equal mixing, fixed mixing -- a direct maximisation of the log-likelihood with
scipy (an independent optimiser on an unconstrained reparameterisation), started from EM's
answer, must not improve it, and the likelihood's gradient must vanish there.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import norm

from emsym.cache import get_derivation
from emsym.compile import CompiledModel
from emsym.em import run_em
from emsym.spec import load_spec

VARIANTS = [
    "shared-mean-bernoulli",
    "fixed-sigma",
    "equal-shared-fixed",
    "tied-variance",
    {"components": 2, "mean": {"fixed": [-2, 2]}},
    {"components": 2, "mixing": "equal"},
    {"components": 3, "mixing": {"fixed": [0.2, 0.3, 0.5]}},
]


def _pack(model, params):
    """Unconstrained vector: logit/softmax weights, real means, log variances."""
    out, layout = [], []
    for p in model.params:
        v = params[p.name]
        if p.domain == "simplex":
            continue
        if p.domain == "unit":
            out.append(np.log(v / (1 - v)))
        elif p.domain == "positive":
            out.append(np.log(v))
        else:
            out.append(v)
        layout.append(p)
    simplex = [p for p in model.params if p.domain == "simplex"]
    if simplex:
        w = np.array([params[p.name] for p in simplex])
        out.extend(np.log(w[:-1] / w[-1]))
    return np.array(out, dtype=float), layout, simplex


def _unpack(vec, layout, simplex):
    params, i = {}, 0
    for p in layout:
        v = vec[i]
        params[p.name] = 1 / (1 + np.exp(-v)) if p.domain == "unit" else np.exp(v) if p.domain == "positive" else v
        i += 1
    if simplex:
        z = np.append(vec[i:], 0.0)
        w = np.exp(z - logsumexp(z))
        for p, wk in zip(simplex, w):
            params[p.name] = float(wk)
    return params


def _loglik(model, X, params):
    """sum_n log sum_k w_k N(x_n | mu_k, sigma_k^2) with scipy's normal density: written here, sharing
    nothing with emsym's compiled log density (only the mapping of parameters to components)."""
    comps = model.components(params)
    terms = [np.log(c["weight"]) + norm.logpdf(X, c["mean"][0], np.sqrt(c["covariance"][0, 0])) for c in comps]
    return float(np.sum(logsumexp(np.array(terms), axis=0)))


@pytest.mark.parametrize("spec", VARIANTS, ids=str)
def test_converged_estimate_maximises_the_likelihood(rng, spec):
    model = CompiledModel(get_derivation(load_spec(spec)))
    X = np.concatenate([rng.normal(-1.5, 0.8, 70), rng.normal(1.0, 1.6, 60), rng.normal(3.0, 0.6, 40)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_em(model, X, max_iter=20_000, tol=1e-13, exact_m_step=True)
    vec, layout, simplex = _pack(model, res.params)
    f = lambda v: -_loglik(model, X, _unpack(v, layout, simplex))  # noqa: E731
    best = minimize(f, vec, method="BFGS", options={"gtol": 1e-10, "maxiter": 2000})
    assert -best.fun <= res.loglik[-1] + 1e-7 * abs(res.loglik[-1])  # the optimiser finds nothing higher
    h = 1e-6
    grad = [(f(vec + h * e) - f(vec - h * e)) / (2 * h) for e in np.eye(len(vec))]
    assert np.max(np.abs(grad)) < 1e-4 * len(X)
