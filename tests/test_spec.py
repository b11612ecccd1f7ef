from __future__ import annotations

import pytest

from emsym.exceptions import SpecError
from emsym.spec import Fixed, load_spec, preset_names


@pytest.mark.parametrize("name", preset_names())
def test_presets_load(name):
    spec = load_spec(name)
    assert spec.name == name


def test_yaml_file_and_defaults(tmp_path):
    f = tmp_path / "tied3.yaml"
    f.write_text("components: 3\nvariance: tied\n")
    spec = load_spec(str(f))
    assert (spec.components, spec.dim, spec.mixing, spec.mean, spec.variance) == (3, 1, "free", "free", "tied")
    assert spec.name == "tied3"


def test_fixed_values_are_exact():
    spec = load_spec({"components": 3, "mixing": {"fixed": [0.1, 0.2, 0.7]}, "mean": "free"})
    assert isinstance(spec.mixing, Fixed) and sum(spec.mixing.values) == 1


@pytest.mark.parametrize(
    "data, message",
    [
        ({"varience": "tied"}, r"unknown key 'varience'; did you mean 'variance'\?"),
        ({"mixing": "bernouli"}, r"'mixing' should be one of free, equal, bernoulli .* did you mean 'bernoulli'\?"),
        ({"components": 3, "mixing": "bernoulli"}, r"'bernoulli' needs exactly 2 components"),
        (
            {"components": 2, "variance": {"fixed": [1, 2, 3]}},
            r"'variance.fixed' should have 2 values \(one per component\), but got 3",
        ),
        ({"variance": {"fixed": [1, 0]}}, r"'variance.fixed\[1\]' should be a variance > 0, but got 0"),
        ({"mixing": {"fixed": [0.5, 0.6]}}, r"weights should sum to 1, but they sum to 1.1"),
        ({"mixing": {"fixed": [1.5, -0.5]}}, r"'mixing.fixed\[1\]' should be a weight > 0"),
        ({"variance": [1, 4]}, r"bare list .* write variance: \{fixed: \[1, 4\]\}"),
        ({"components": 0}, r"'components' should be a whole number >= 1 or 'K'"),
        ({"components": "K", "mean": {"fixed": [1, 2]}}, r"needs a whole number of components"),
        (
            {"dim": 2, "variance": {"fixed": [[[1, 2], [2, 1]], [[1, 0], [0, 1]]]}},
            r"'variance.fixed\[0\]' should be positive definite, but its leading 2x2 minor is -3",
        ),
        (
            {"dim": 2, "variance": {"fixed": [[[1, 0], [0, 1]], [[1, 1], [1, 1]]]}},
            r"fixed\[1\]' should be positive definite",
        ),
        ({"dim": 2, "variance": {"fixed": [[[1, 0.5], [0.4, 1]], [[1, 0], [0, 1]]]}}, r"should be symmetric"),
        ({"dim": 2, "variance": {"fixed": [[1, 0], [[1, 0], [0, 1]]]}}, r"should be a 2x2 covariance matrix"),
        ({"dim": "d", "variance": {"fixed": [[[1]], [[1]]]}}, r"need a whole number for 'dim'"),
        ({"mixing": "equal", "mean": {"fixed": [0, 1]}, "variance": {"fixed": [1, 1]}}, r"nothing to estimate"),
        ({"dim": 2, "covariance": "spherical", "mean": {"fixed": [1, 2]}}, r"should be a list of 2 numbers"),
        ({"variance": {"fixd": [1, 2]}}, r"'fixed' or 'linked', but got 'fixd'; did you mean 'fixed'\?"),
        ("not a mapping", r"neither a preset"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(data, message):
    with pytest.raises(SpecError, match=message):
        load_spec(data)


def test_misspelled_preset_suggests():
    with pytest.raises(SpecError, match=r"did you mean 'standard'\?"):
        load_spec("standrad")


def test_invalid_yaml_names_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("components: [1,\n")
    with pytest.raises(SpecError, match=r"bad.yaml:\d+:\d+: not valid YAML"):
        load_spec(str(f))


def test_yaml_is_loaded_safely(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("components: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match=r"python/object/apply:os\.system' is not allowed"):
        load_spec(str(f))


def test_diagonal_covariance_specs():
    spec = load_spec({"components": 2, "dim": 2, "covariance": "diag", "variance": {"fixed": [[1, 2], [3, 4]]}})
    assert spec.variance.values[1] == (3, 4)
    with pytest.raises(SpecError, match=r"'variance.fixed\[0\]' should be a list of 2 variances"):
        load_spec({"components": 2, "dim": 2, "covariance": "diag", "variance": {"fixed": [1, 2]}})
    with pytest.raises(SpecError, match=r"should hold variances > 0"):
        load_spec({"components": 2, "dim": 2, "covariance": "diag", "variance": {"fixed": [[1, 0], [1, 1]]}})
