"""Cycles in emsym's import graph (module-level and lazy imports; TYPE_CHECKING imports excluded).

python tools/import_cycles.py     # prints each cycle; exit status 1 if there is one
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "emsym"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for sub in ast.walk(node):
                if hasattr(sub, "lineno"):
                    lines.add(sub.lineno)
    return lines


def graph() -> dict[str, set[str]]:
    files = sorted(ROOT.rglob("*.py"))
    mods = {_module(f) for f in files}
    out: dict[str, set[str]] = {}
    for f in files:
        mod = _module(f)
        pkg = mod if f.name == "__init__.py" else mod.rsplit(".", 1)[0]
        tree = ast.parse(f.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        deps: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.level or node.lineno in skip:
                continue
            base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            names = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
            deps |= set(names) if names else {target}
        out[mod] = {d for d in deps if d in mods and d != mod}
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


if __name__ == "__main__":
    g = graph()
    # the package's __init__ re-exports the public API; a module importing `emsym` for __version__ is not a stage cycle
    for deps in g.values():
        deps.discard("emsym")
    found = cycles(g)
    for comp in found:
        print("cycle:", " <-> ".join(comp))
    print(f"{len(g)} modules, {len(found)} cycle(s)")
    sys.exit(1 if found else 0)
