"""Room on one node, for the operations that add memory to a node (clone, migrate, resize).

Deploy picks among nodes; these kinds know their node already and only ask whether it can
take ``memory_mb`` more (see :mod:`proximity_sdk.proxmox.placement` for what "room" means).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import replace

from proximity_sdk.errors import ConflictError, ValidationError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.placement import NodeCapacity, node_capacities, require_quorum
from proximity_sdk.store import Store

__all__ = ["in_flight", "placing", "require_room"]

# apps whose container may not be listed by Proxmox yet, but whose memory is already promised
_UNBORN = (AppStatus.DEPLOYING, AppStatus.CLONING)


_placement_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)


def placing(host_id: str) -> threading.Lock:
    """Placements on one host run one at a time in this process, so each sees the one before.
    (Between processes a placement may miss one still in flight: Proxmox's own memory check remains.)"""
    return _placement_locks[host_id]


def in_flight(
    store: Store,
    host_id: str,
    present: set[int],
    *,
    exclude_app_id: str | None = None,
    default_memory_mb: int | None = None,
) -> dict[str, int]:
    """MiB per node promised to this host's apps still being deployed or cloned whose container
    Proxmox does not list yet (they must count, or two placements at once both take the room).
    ``default_memory_mb``: the settings' (read here when not given)."""
    default = default_memory_mb if default_memory_mb is not None else store.settings.get().default_memory_mb
    pending: dict[str, int] = defaultdict(int)
    for status in _UNBORN:
        for app in store.apps.list(status=status, host_id=host_id, limit=1000):
            if app.id != exclude_app_id and app.node and app.vmid not in present:
                pending[app.node] += app.resources.memory_mb or default
    return pending


def require_room(
    client: ProxmoxClient, store: Store, *, host_id: str, node: str, memory_mb: int, exclude_app_id: str | None = None
) -> NodeCapacity:
    """The node's figures when it exists, is online and has ``memory_mb`` MiB unpromised
    (``memory_mb`` <= 0 only checks that the node is there and online). Raises
    :class:`ValidationError` for a node not in the cluster, :class:`ConflictError` otherwise."""
    require_quorum(client)
    resources = client.cluster_resources()
    capacities = node_capacities(resources, overcommit=store.settings.get().memory_overcommit)
    extra = in_flight(store, host_id, {r.vmid for r in resources if r.vmid is not None}, exclude_app_id=exclude_app_id)
    found = next((c for c in capacities if c.node == node), None)
    if found is None:
        raise ValidationError(
            f"node {node!r} is not in the cluster",
            field="node",
            hint="Nodes: " + (", ".join(c.node for c in capacities) or "none"),
        )
    found = replace(found, promised_mb=found.promised_mb + extra.get(node, 0))
    if not found.online:
        raise ConflictError(f"node {node!r} is {found.status}", hint="Bring it back online, or choose another node")
    if memory_mb > 0 and not found.fits(memory_mb):
        raise ConflictError(
            f"node {node!r} cannot take {memory_mb} MiB more: {found.describe()}",
            hint="Give less memory, raise memory_overcommit in settings, or choose another node",
        )
    return found
