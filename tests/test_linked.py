"""Linked parameters (mixtools' mean.constr / sd.constr form): derived, run, and against a direct optimiser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emsym.cache import get_derivation
from emsym.check import check
from emsym.cli import main
from emsym.exceptions import SpecError
from emsym.spec import load_spec

stats = pytest.importorskip("scipy.stats")
optimize = pytest.importorskip("scipy.optimize")
special = pytest.importorskip("scipy.special")


def test_equal_and_opposite_means_derive_the_weighted_closed_form():
    d = get_derivation(load_spec({"components": 2, "mean": {"linked": ["-a", "a"]}}))
    assert d.method == "ECM"  # a uses the variances, the variances use a
    assert d.update("a").text == (
        "(sigma2_1*sum_{n=1}^{N} (x_n*gamma_n2) - sigma2_2*sum_{n=1}^{N} (x_n*gamma_n1))/(N_1*sigma2_2 + N_2*sigma2_1)"
    )


@pytest.mark.parametrize(
    "model",
    [
        {"components": 2, "mean": {"linked": ["-a", "a"]}},
        {"components": 3, "mean": {"linked": ["-a", None, "2a"]}, "variance": {"linked": ["s", "s", "2s"]}},
        {"components": 3, "mean": {"linked": [0, "b", "b"]}},
    ],
)
def test_linked_models_pass_check(model):
    assert check(load_spec(model), n=400).passed


def test_em_reaches_the_constrained_maximum_of_a_direct_optimiser(tmp_path, capsys):
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(-2.0, 1.0, 150), rng.normal(2.0, 1.5, 100)])
    model = {"components": 2, "mean": {"linked": ["-a", "a"]}}
    (tmp_path / "m.yaml").write_text(json.dumps(model))
    (tmp_path / "d.csv").write_text("x\n" + "\n".join(repr(float(v)) for v in x) + "\n")
    init = {"components": [{"weight": 0.5, "mean": -1, "variance": 1}, {"weight": 0.5, "mean": 1, "variance": 1}]}
    (tmp_path / "i.json").write_text(json.dumps(init))
    args = ["run", str(tmp_path / "m.yaml"), "--data", str(tmp_path / "d.csv"), "--init", str(tmp_path / "i.json")]
    assert main([*args, "--format", "json", "--tol", "1e-12"]) == 0
    out = json.loads(capsys.readouterr().out)
    means = [c["mean"][0] for c in out["components"]]
    assert means[0] == pytest.approx(-means[1], rel=1e-12)

    def nll(t):  # t = (logit of weight 2, a, log variance 1, log variance 2)
        w = special.expit(t[0])
        a, v1, v2 = t[1], np.exp(t[2]), np.exp(t[3])
        return -np.sum(
            np.logaddexp(
                np.log1p(-w) + stats.norm.logpdf(x, -a, np.sqrt(v1)), np.log(w) + stats.norm.logpdf(x, a, np.sqrt(v2))
            )
        )

    res = optimize.minimize(nll, [0.0, 1.0, 0.0, 0.0], method="BFGS", options={"gtol": 1e-9})
    assert out["loglik"][-1] >= -res.fun - 1e-6
    assert means[1] == pytest.approx(res.x[1], abs=1e-4)
    # inconsistent starting means are refused
    init["components"][1]["mean"] = 2
    (tmp_path / "i.json").write_text(json.dumps(init))
    assert main(args) == 2
    assert "components[1].mean is 2.0, but the model links the means as [-a, a]" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"components": 2, "mean": {"linked": ["-a", "a", "a"]}}, "one entry per component"),
        ({"components": 2, "dim": 2, "mean": {"linked": ["-a", "a"]}}, "one-dimensional"),
        ({"components": 2, "mean": {"linked": [1, 2]}}, "links nothing"),
        ({"components": 2, "variance": {"linked": ["-s", "s"]}}, "positive multiple"),
        ({"components": 2, "mean": {"linked": ["a+1", "a"]}}, "coefficient and a name"),
        ({"components": 2, "mean": {"linked": ["-mu", "mu"]}}, "emsym's own names"),
        ({"components": 2, "mean": {"linked": ["a", "a"]}, "variance": {"linked": ["a", "a"]}}, "both the means"),
        ({"components": 2, "mean": {"linkd": ["a", "a"]}}, "did you mean 'linked'"),
    ],
)
def test_bad_links_are_one_clear_line(model, message):
    with pytest.raises(SpecError, match=message):
        load_spec(model)


@pytest.mark.parametrize(
    ("model", "shown"),
    [
        ({"components": 3, "mean": {"linked": ["-a", None, "a"]}}, "mean: linked [-a, free, a]"),
        ({"family": "poisson", "components": 2, "rate": {"linked": ["a", "4a"]}}, "rate: linked [a, 4a]"),
    ],
)
def test_sheets_and_derivations_state_links_as_the_model_file_writes_them(model, shown, tmp_path, capsys):
    """The model line reads like the file (was a Python dict: "{'linked': ['a', '4a']}")."""
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model))
    assert main(["derive", str(path)]) == 0
    out = capsys.readouterr().out
    assert shown in out and "{'linked'" not in out


def test_a_partial_fix_is_one_free_and_one_fixed_mean(tmp_path, capsys):
    """mean: {fixed: [null, 80]} (the issue's form): mu_2 = 80 throughout, mu_1 free.  Reference: one EM
    step by hand from scipy's normal density (mu_1 = sum_n gamma_n1 x_n / N_1, the variances about the new
    means, 80 for the second)."""
    spec = load_spec({"components": 2, "mean": {"fixed": [None, 80]}})
    assert spec.to_dict()["mean"] == {"fixed": [None, 80]}
    assert load_spec(spec.to_dict()) == spec
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.normal(60, 5, 120), rng.normal(80, 8, 80)])
    (tmp_path / "m.yaml").write_text("components: 2\nmean: {fixed: [null, 80]}\n")
    (tmp_path / "x.csv").write_text("x\n" + "\n".join(f"{v:.17g}" for v in x) + "\n")
    init = [{"weight": 0.5, "mean": 55.0, "variance": 30.0}, {"weight": 0.5, "mean": 80.0, "variance": 50.0}]
    (tmp_path / "init.json").write_text(json.dumps({"components": init}))
    args = ["run", str(tmp_path / "m.yaml"), "--data", str(tmp_path / "x.csv"), "--init", str(tmp_path / "init.json")]
    assert main([*args, "--iterations", "1", "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)["components"]
    logp = np.log(0.5) + stats.norm.logpdf(x[:, None], [55.0, 80.0], np.sqrt([30.0, 50.0]))
    R = np.exp(logp - special.logsumexp(logp, axis=1, keepdims=True))
    N = R.sum(axis=0)
    mu = np.array([R[:, 0] @ x / N[0], 80.0])
    var = (R * (x[:, None] - mu) ** 2).sum(axis=0) / N
    assert [np.ravel(c["mean"])[0] for c in got] == pytest.approx(list(mu), rel=1e-12)
    assert [np.ravel(c["covariance"])[0] for c in got] == pytest.approx(list(var), rel=1e-12)
    assert [c["weight"] for c in got] == pytest.approx(list(N / len(x)), rel=1e-12)
    assert check(spec, n=300).passed
    init[1]["mean"] = 70.0
    (tmp_path / "init.json").write_text(json.dumps({"components": init}))
    assert main(args) == 2
    assert "components[1].mean is 70.0, but the model fixes it at 80.0" in capsys.readouterr().err
    d = get_derivation(spec)
    assert [u.name for u in d.updates] == ["pi_1", "pi_2", "mu_1", "sigma2_1", "sigma2_2"]
    assert d.update("sigma2_2").text == "sum_{n=1}^{N} ((x_n - 80)**2*gamma_n2)/N_2"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"components": 2, "mean": {"fixed": [None, None]}}, "every entry is null"),
        ({"components": 2, "variance": {"fixed": [None, 0]}}, r"'variance.fixed\[1\]' should be a variance > 0"),
        ({"components": 2, "dim": 2, "mean": {"fixed": [[0, 0], None]}}, "partial fix.*one-dimensional"),
    ],
)
def test_bad_partial_fixes_are_one_clear_line(model, message):
    with pytest.raises(SpecError, match=message):
        load_spec(model)
