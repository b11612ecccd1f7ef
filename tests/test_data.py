from __future__ import annotations

import numpy as np
import pytest

from emsym.data import load_data, load_init_components
from emsym.exceptions import DataError


def write(tmp_path, text, name="d.csv"):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_reads_header_and_points(tmp_path):
    d = load_data(write(tmp_path, "x,y\n1,2\n3,4.5\n"))
    assert d.columns == ("x", "y") and d.labels is None
    assert d.X.tolist() == [[1, 2], [3, 4.5]]


@pytest.mark.parametrize(
    "body",
    [
        "1,2\n3,-4\n0,7\n",  # whole numbers: read as integers, then floats
        "1,2\n3,4.5\n",  # a float after whole numbers: read again as floats
        "1,2\n3,1e3\n",
        " 1, 2\r\n-0,+3\r\n",
        "1,2\n99999999999999999999,3\n",  # beyond int64
        "9007199254740993,1\n",  # 2^53 + 1: rounds as the float parser rounds it
    ],
)
def test_whole_number_files_read_exactly_as_floats(tmp_path, body):
    """Reference: numpy's float parser on the same rows (the fast path must not change a value)."""
    expected = np.loadtxt(write(tmp_path, body, "ref.csv"), delimiter=",", dtype=float, ndmin=2)
    got = load_data(write(tmp_path, "x,y\n" + body)).X
    assert got.dtype == float and np.array_equal(got, expected)


def test_label_column_with_unknowns(tmp_path):
    d = load_data(write(tmp_path, "x,label\n1,1\n2,\n3,2\n"))
    assert d.X[:, 0].tolist() == [1, 2, 3] and d.labels.tolist() == [1, 0, 2]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"the file is empty"),
        ("1,2\n3,4\n", r"line 1 should be a header"),
        ("x\n", r"no data rows"),
        ("x\n1\nnan\n", r"line 3, column 'x': expected a finite number"),
        ("x\n1\ninf\n", r"line 3, column 'x': expected a finite number"),
        ("x,y\n1,2\n3\n", r"line 3 has 1 values, but the header has 2 columns"),
        ("x\n1\nabc\n", r"line 3, column 'x': expected a number, got 'abc'"),
        ("x,label\n1,0\n", r"line 2, column 'label': expected a component number 1..K"),
        ("x,label\n1,1.5\n", r"line 2, column 'label'"),
        ("x,x\n1,2\n", r"repeats a column name"),
    ],
)
def test_bad_data_names_the_row(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_data(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read the data file"):
        load_data(tmp_path / "nope.csv")


def test_init_file_yaml_and_json(tmp_path):
    y = write(
        tmp_path,
        "components:\n  - {weight: 0.5, mean: 6, variance: 1}\n  - {weight: 0.5, mean: 7, variance: 4}\n",
        "i.yaml",
    )
    j = write(tmp_path, '{"components": [{"weight": 0.5, "mean": [1, 2], "covariance": [[2, 0], [0, 2]]}]}', "i.json")
    assert [c["variance"] for c in load_init_components(y, 1)] == [1, 4]
    (c,) = load_init_components(j, 2)
    assert c["variance"] == 2 and np.allclose(c["mean"], [1, 2])


@pytest.mark.parametrize(
    "text, dim, message",
    [
        ("components: []", 1, r"'components' should be a non-empty list"),
        ("comps: []", 1, r"expected a mapping with the key 'components'"),
        (
            "components:\n  - {weight: 0.5, mean: 1, varience: 2}",
            1,
            r"unknown key 'varience'; did you mean 'variance'\?",
        ),
        ("components:\n  - {mean: 1, variance: -2}", 1, r"components\[0\].variance should be > 0"),
        ("components:\n  - {mean: [1], covariance: [[1, 0.5], [0.5, 1]]}", 2, r"mean should be a list of 2 numbers"),
        ("components:\n  - {mean: [1, 2], covariance: [[1, 2], [2, 1]]}", 2, r"should be positive definite"),
        ("components:\n  - {mean: [1, 2], covariance: [[1, 0.5], [0.4, 1]]}", 2, r"should be symmetric"),
        ("components:\n  - {mean: [1, 2], covariance: [[1, 1], [1, 1]]}", 2, r"singular or indefinite"),
        ("components:\n  - {mean: .nan, variance: 1}", 1, r"mean should be a finite number"),
        ("components: [", 1, r"not valid YAML or JSON"),
        (
            "components:\n  - !!python/object/apply:os.system ['echo pwned']",
            1,
            r"python/object/apply:os.system' is not allowed",
        ),
    ],
)
def test_bad_init(tmp_path, text, dim, message):
    with pytest.raises(DataError, match=message):
        load_init_components(write(tmp_path, text, "i.yaml"), dim)


def test_full_covariance_init_under_either_key(tmp_path):
    f = write(
        tmp_path,
        "components:\n  - {mean: [1, 2], covariance: [[2, 0.5], [0.5, 1]]}\n"
        "  - {mean: [0, 0], variance: [[1, -0.3], [-0.3, 2]]}\n",
        "i.yaml",
    )
    a, b = load_init_components(f, 2)
    np.testing.assert_array_equal(a["variance"], [[2, 0.5], [0.5, 1]])
    np.testing.assert_array_equal(b["variance"], [[1, -0.3], [-0.3, 2]])
    with pytest.raises(DataError, match=r"components\[0\].variance should be positive definite"):
        load_init_components(
            write(tmp_path, "components:\n  - {mean: [1, 2], variance: [[1, 2], [2, 1]]}\n", "j.yaml"), 2
        )


def test_diagonal_init(tmp_path):
    f = write(
        tmp_path,
        "components:\n  - {mean: [0, 0], covariance: [[1, 0], [0, 4]]}\n  - {mean: [1, 1], variance: [2, 3]}\n",
        "i.yaml",
    )
    a, b = load_init_components(f, 2)
    assert a["variance"].tolist() == [1, 4] and b["variance"].tolist() == [2, 3]
