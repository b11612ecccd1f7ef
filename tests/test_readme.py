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
