"""Helpers shared by the benchmark scripts: timing whole processes side by side."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "_data"


def wall(cmd: list[str], env=None) -> tuple[float, str]:
    """Wall time of one whole process and its stdout; fail loudly if it fails."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{proc.stderr}")
    return elapsed, proc.stdout


def alternate(cmds: dict[str, list[str]], repeats: int, env=None) -> dict[str, tuple[float, str]]:
    """Run the commands in turn, `repeats` rounds; the median wall time of each and its last output."""
    times: dict[str, list[float]] = {k: [] for k in cmds}
    outs: dict[str, str] = {}
    for _ in range(repeats):
        for name, cmd in cmds.items():
            t, out = wall(cmd, env)
            times[name].append(t)
            outs[name] = out
    return {k: (statistics.median(v), outs[k]) for k, v in times.items()}
