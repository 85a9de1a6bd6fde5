"""Built-in behaviour, registered as plugins before any installed one."""

from __future__ import annotations

from pathlib import Path

from proximity_sdk.catalog.directory import DirectorySource
from proximity_sdk.plugins.hookspecs import hookimpl
from proximity_sdk.plugins.sources import CatalogSource

__all__ = ["BUILTIN_CATALOG_DIR", "BuiltinCatalogPlugin", "builtin_plugins"]

BUILTIN_CATALOG_DIR = Path(__file__).resolve().parent.parent / "catalog" / "builtin"


class BuiltinCatalogPlugin:
    """The catalog shipped inside the package (proximity_sdk/catalog/builtin/*.json)."""

    @hookimpl
    def proximity_catalog_sources(self) -> list[CatalogSource]:
        return [DirectorySource(BUILTIN_CATALOG_DIR, name="builtin")]


def builtin_plugins() -> list[tuple[str, object]]:
    """(name, plugin) pairs, in registration order."""
    from proximity_sdk.backup_targets.proxmox_storage import ProxmoxStoragePlugin

    return [
        ("proximity.builtin.catalog", BuiltinCatalogPlugin()),
        ("proximity.builtin.backup_targets", ProxmoxStoragePlugin()),
    ]
