"""What operation kinds work with: the store, Proxmox clients and node shells per host, the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from proximity_sdk._connections import ClientPool, ShellPool
from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.proxmox.progress import Emit, EventLevel
from proximity_sdk.store import Store

if TYPE_CHECKING:
    from proximity_sdk.operations.context import OperationContext

__all__ = ["Runtime", "emitter"]


@dataclass(frozen=True)
class Runtime:
    store: Store
    clients: ClientPool
    shells: ShellPool
    catalog: Catalog


def emitter(ctx: OperationContext) -> Emit:
    """The operation's event log as the ``emit`` callback the Proxmox building blocks take."""

    def emit(message: str, /, level: EventLevel = "info") -> None:
        ctx.event(message, level=level)

    return emit
