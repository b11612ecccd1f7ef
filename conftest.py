"""Root pytest configuration: shared by the tests, the module doctests and the README."""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE = None


def pytest_configure(config):
    """Tests never read or write the user's derivation cache.

    Set before collection (not in a fixture): test modules that derive at import time would
    otherwise write into ~/.cache/emsym while pytest collects them.
    """
    global _CACHE
    _CACHE = tempfile.mkdtemp(prefix="emsym-test-cache-")
    os.environ["EMSYM_CACHE_DIR"] = _CACHE


def pytest_unconfigure(config):
    if _CACHE:
        shutil.rmtree(_CACHE, ignore_errors=True)
