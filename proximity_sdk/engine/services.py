"""What operation kinds work with: the store, Proxmox clients and node shells per host, the catalog."""

from __future__ import annotations

from dataclasses import dataclass

from proximity_sdk._connections import ClientPool, ShellPool
from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.store import Store

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    store: Store
    clients: ClientPool
    shells: ShellPool
    catalog: Catalog
