"""Fixtures for catalog tests: the compatibility corpus and catalogs built from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.plugins.manager import PluginManager
from tests.harness.pve_schema import require_shared

COMPAT_COUNT = 132


@pytest.fixture(scope="session")
def compat_dir() -> Path:
    """shared/catalog-compat beside the repository: skipped on a clone without it, required on CI."""
    override = os.environ.get("PROXIMITY_COMPAT_CATALOG")
    if override:
        found = Path(override)
    else:
        found = require_shared("the compatibility catalog (catalog-compat/)") / "catalog-compat"
    assert (found / "index.json").is_file(), f"the compatibility corpus is missing at {found}"
    return found


@pytest.fixture
def builtin_only() -> Catalog:
    return Catalog(plugins=PluginManager(entry_points=False))


@pytest.fixture(scope="session")
def compat_catalog(compat_dir: Path) -> Catalog:
    """Only the 132 corpus entries (no built-in, no installed plugins). The original catalog runs
    most apps with ``network_mode: host``: a source an admin must trust (the compose policy)."""
    from proximity_sdk.catalog.directory import DirectorySource

    return Catalog(
        plugins=_EmptyPlugins(), sources=[DirectorySource(compat_dir, name="compat")], trusted_sources=["compat"]
    )


class _EmptyPlugins(PluginManager):
    """A manager without the built-in catalog, to look at one source alone."""

    def __init__(self) -> None:
        super().__init__(entry_points=False)
        self.unregister("proximity.builtin.catalog")
