"""Fixtures for catalog tests: the compatibility corpus and catalogs built from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.plugins.manager import PluginManager

# shared/ lies beside the repository, wherever it is cloned (CI clones elsewhere)
_REPO = Path(__file__).resolve().parents[2]
COMPAT_DIR = Path(os.environ.get("PROXIMITY_COMPAT_CATALOG", _REPO.parent / "shared" / "catalog-compat"))
COMPAT_COUNT = 132


@pytest.fixture(scope="session")
def compat_dir() -> Path:
    assert (COMPAT_DIR / "index.json").is_file(), f"the compatibility corpus is missing at {COMPAT_DIR}"
    return COMPAT_DIR


@pytest.fixture
def builtin_only() -> Catalog:
    return Catalog(plugins=PluginManager(entry_points=False))


@pytest.fixture(scope="session")
def compat_catalog(compat_dir: Path) -> Catalog:
    """Only the 132 corpus entries (no built-in, no installed plugins). The original catalog runs
    most apps with ``network_mode: host``: a source an admin must trust (the compose policy)."""
    from proximity_sdk.catalog.directory import DirectorySource

    return Catalog(plugins=_EmptyPlugins(), sources=[DirectorySource(compat_dir, name="compat")],
                   trusted_sources=["compat"])


class _EmptyPlugins(PluginManager):
    """A manager without the built-in catalog, to look at one source alone."""

    def __init__(self) -> None:
        super().__init__(entry_points=False)
        self.unregister("proximity.builtin.catalog")
