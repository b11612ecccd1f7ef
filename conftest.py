"""Root pytest configuration: shared by the tests, the module doctests and the README."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's derivation cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EMSYM_CACHE_DIR", str(tmp_path_factory.mktemp("emsym-cache")))
    yield
    mp.undo()
