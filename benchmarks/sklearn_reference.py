"""The reference side of bench_run.py: load the same CSV and fit scikit-learn's GaussianMixture.

Usage: python sklearn_reference.py DATA.csv INIT.json ITERATIONS COVARIANCE_TYPE
Prints the fitted weights, means and covariances as JSON (per component, like `emsym run`), and the
number of iterations it ran (tol 0: the benchmarks check that both sides did the same work).
"""

import json
import sys
import warnings

import numpy as np
from sklearn.mixture import GaussianMixture

path, init_path, iters, cov_type = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
X = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
init = json.load(open(init_path))["components"]
K, d = len(init), X.shape[1]
w = np.array([c["weight"] for c in init])
means = np.array([np.atleast_1d(c["mean"]) for c in init], dtype=float)
if cov_type == "full":
    covs = np.array([np.array(c["covariance"]) if "covariance" in c else np.eye(d) * c["variance"] for c in init])
    prec = np.linalg.inv(covs)
else:
    prec = np.array([1.0 / c["variance"] for c in init])
gm = GaussianMixture(
    K,
    covariance_type=cov_type,
    reg_covar=0.0,
    max_iter=iters,
    tol=0.0,
    weights_init=w,
    means_init=means,
    precisions_init=prec,
    init_params="random_from_data",  # the start is given: no K-means to run and discard
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    gm.fit(X)
covs = gm.covariances_ if cov_type == "full" else np.array([np.eye(d) * v for v in gm.covariances_])
print(
    json.dumps(
        {
            "components": [
                {"weight": float(gm.weights_[k]), "mean": gm.means_[k].tolist(), "covariance": covs[k].tolist()}
                for k in range(K)
            ],
            "iterations": int(gm.n_iter_),
        }
    )
)
