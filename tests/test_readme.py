"""The README's Quick start runs as written (its files are shipped in examples/)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from emsym.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _quick_start() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quick start\n\n```sh\n(.*?)```", text, re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_quick_start_names_only_shipped_files():
    lines = _quick_start()
    assert len(lines) == 7 and all(argv[0] == "emsym" for argv in lines)
    for argv in lines:
        for arg in argv:
            if arg.startswith("examples/"):
                assert (ROOT / arg).is_file(), arg


@pytest.mark.parametrize("argv", _quick_start(), ids=lambda a: " ".join(a[:3]))
def test_quick_start_line_runs(argv, tmp_path, monkeypatch, capsys):
    for name in ("examples", "exercises"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)  # outputs (sheets/, results/) land in a scratch folder
    status = main(argv[1:])
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "Traceback" not in out.err


def test_the_add_a_family_example_works_without_touching_the_engine(monkeypatch, tmp_path):
    """The README's geometric family, dropped into emsym/families as written, derives, runs and checks."""
    import importlib.util

    import numpy as np

    from emsym import families
    from emsym.cache import get_derivation
    from emsym.check import check
    from emsym.compile import compile_derivation
    from emsym.em import run_em
    from emsym.spec import load_spec

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"### Adding a family\n.*?```python\n(.*?)```", text, re.S).group(1)
    path = tmp_path / "geometric.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("emsym.families.geometric", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(families.FAMILIES, "geometric", module.FAMILY)
    model = load_spec({"family": "geometric", "components": 2})
    d = get_derivation(model, use_cache=False)
    assert d.update("q").text == "N_k/(N_k + sum_{n=1}^{N} (x_n*gamma_nk))"
    assert check(model, n=300).passed
    x = np.concatenate([np.random.default_rng(0).geometric(0.6, 200), np.random.default_rng(1).geometric(0.1, 200)])
    res = run_em(compile_derivation(d), x[:, None] - 1.0, iterations=50)
    assert sorted(c["q"] for c in res.components)[1] > 0.4
