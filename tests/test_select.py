"""emsym select: every covariance model and K, ranked by BIC -- against R's mclust and scikit-learn.

R's mclust 6 (Debian's r-cran-mclust, installed by `make test` where apt is available) fits the
same data with ``mclustBIC``; emsym's most likely fit of every (model, K) must be at least as
likely, and the free-parameter counts must agree with ``nMclustParams``.  Without R the
comparison is skipped with its reason; scikit-learn's GaussianMixture (best of 10 starts) is the
reference that always runs.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest

from emsym.cli import main
from emsym.exceptions import EmsymError
from emsym.select import parse_components, select

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1]))
G <- eval(parse(text = args[2]))
models <- strsplit(args[3], ",")[[1]]
b <- mclustBIC(X, G = G, modelNames = models, verbose = FALSE)
n <- nrow(X); d <- ncol(X)
for (m in models) for (g in G) {
  v <- b[as.character(g), m]
  p <- nMclustParams(m, d, g)
  cat(m, g, if (is.na(v)) "NA" else format((v + p * log(n)) / 2, digits = 15), p, "\n")
}
"""


def _two_d():
    rng = np.random.default_rng(3)
    return np.vstack(
        [
            rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], 90),
            rng.multivariate_normal([4, 1], [[0.5, 0], [0, 0.5]], 70),
            rng.multivariate_normal([1, 5], [[1.5, -0.5], [-0.5, 0.6]], 60),
        ]
    )


def _four_d():
    rng = np.random.default_rng(7)
    return np.vstack(
        [
            rng.multivariate_normal([0, 0, 0, 0], np.diag([1, 0.5, 0.8, 1.2]), 120),
            rng.multivariate_normal(
                [3, 3, 0, 1], [[1, 0.4, 0, 0], [0.4, 1, 0, 0], [0, 0, 0.5, 0.1], [0, 0, 0.1, 0.5]], 100
            ),
            rng.multivariate_normal([0, 4, 3, -2], 0.6 * np.eye(4), 80),
        ]
    )


def _csv(path, X):
    cols = [f"c{j}" for j in range(X.shape[1])]
    path.write_text(",".join(cols) + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in X) + "\n")
    return str(path)


def _mclust(path, ks, models):
    if shutil.which("Rscript") is None:
        pytest.skip("R is not installed (make test installs r-cran-mclust where apt is available)")
    proc = subprocess.run(
        ["Rscript", "-e", R_SCRIPT, path, f"c({','.join(map(str, ks))})", ",".join(models)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0 and "mclust" in proc.stderr:
        pytest.skip(f"R's mclust is not installed: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        m, g, ll, p = line.split()
        out[(m, int(g))] = (None if ll == "NA" else float(ll), int(p))
    return out


CASES = {
    "2-d, all 14 models": (_two_d, [1, 2, 3], None),
    "4-d, six models": (_four_d, [1, 2, 3], ["EII", "VVI", "EEE", "EVV", "VEV", "VVV"]),
}


@pytest.fixture(scope="module")
def selections():
    return {name: select(make(), ks, models) for name, (make, ks, models) in CASES.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_at_least_as_likely_as_r_mclust(case, selections, tmp_path):
    make, ks, _ = CASES[case]
    sel = selections[case]
    ref = _mclust(_csv(tmp_path / "x.csv", make()), ks, sorted({f.model for f in sel.fits}))
    ours = {(f.model, f.K): f for f in sel.fits}
    assert set(ours) == set(ref)
    for key, (ll, p) in ref.items():
        assert ours[key].n_params == p, key  # emsym's count of free parameters is mclust's
        if ll is not None:
            assert ours[key].loglik >= ll - 1e-6 * abs(ll), (key, ours[key].loglik, ll)


@pytest.mark.parametrize("case", list(CASES))
def test_at_least_as_likely_as_scikit_learn(case, selections):
    from sklearn.mixture import GaussianMixture

    X = CASES[case][0]()
    ours = {(f.model, f.K): f for f in selections[case].fits}
    sk = {"VVV": "full", "EEE": "tied", "VVI": "diag", "VII": "spherical"}
    for (model, K), fit in ours.items():
        if model not in sk:
            continue
        gm = GaussianMixture(K, covariance_type=sk[model], n_init=10, reg_covar=1e-12, tol=1e-10, random_state=0)
        ll = float(gm.fit(X).score(X) * len(X))
        assert fit.loglik >= ll - 1e-6 * abs(ll), (model, K, fit.loglik, ll)


def test_bic_icl_and_the_ranking(selections):
    sel = selections["2-d, all 14 models"]
    n = sel.n
    bics = [f.bic for f in sel.fits]
    assert bics == sorted(bics, reverse=True)
    for f in sel.fits:
        assert f.bic == pytest.approx(2 * f.loglik - f.n_params * math.log(n), rel=1e-12)
        assert f.icl <= f.bic + 1e-9  # the entropy penalty is never negative
        if f.K == 1:
            assert f.icl == pytest.approx(f.bic)
    assert sel.best.K == 3  # three well-separated clusters


def test_one_dimension_uses_e_and_v():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, 150), rng.normal(6, 3, 100)])[:, None]
    sel = select(X, [1, 2, 3])
    assert {f.model for f in sel.fits} == {"E", "V"}
    assert (sel.best.model, sel.best.K) == ("V", 2)


def test_cli_table_json_and_plot(tmp_path, capsys):
    path = _csv(tmp_path / "x.csv", _two_d())
    assert (
        main(
            ["select", "--data", path, "--components", "1..3", "--models", "EII,VVV", "--plot", str(tmp_path / "b.png")]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "best: VVV with 3 component(s)" in out and "higher is better" in out
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["select", "--data", path, "--components", "2,3", "--models", "VVV", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["best"] == {"model": "VVV", "components": 3}
    assert [f["components"] for f in data["fits"]] == [3, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--components", "0..3"], "should lie in 1..20"),
        (["--components", "three"], "a range such as 1..9"),
        (["--models", "VVX"], "did you mean 'VVV'"),
        (["--models", "E"], "not a model for 2-dimensional data"),
        (["--starts", "0"], "--starts should be at least 1"),
    ],
)
def test_bad_arguments_are_one_line(args, message, tmp_path, capsys):
    path = _csv(tmp_path / "x.csv", _two_d())
    assert main(["select", "--data", path, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_parse_components():
    assert parse_components("1..3,5") == [1, 2, 3, 5]
    with pytest.raises(EmsymError):
        parse_components("3..1")
