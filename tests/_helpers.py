"""Helpers shared by test modules (not fixtures)."""

from __future__ import annotations


def pdflatex(folder, tex_name: str):
    """Compile FOLDER/TEX_NAME with pdflatex (non-interactive, stop at the first error); the finished process."""
    import subprocess

    return subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex_name],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
