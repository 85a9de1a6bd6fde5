"""Memory placement for the operations that add memory to a node.

:func:`place` chooses and records the node of a new container (deploy, clone), counting what is
still in flight; :func:`require_room` asks whether a known node can take ``memory_mb`` more
(migrate, resize, clone's check at submit). See :mod:`proximity_sdk.proxmox.placement` for what
"room" means.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from proximity_sdk.errors import ConflictError, ValidationError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.placement import (
    NodeCapacity,
    PlacementDecision,
    node_capacities,
    place_in,
    require_quorum,
)
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow

__all__ = ["ProcessLoad", "in_flight", "place", "placing", "require_room"]

_CLOCK_MARGIN = timedelta(seconds=1)

_placement_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)


class ProcessLoad(Protocol):
    """Where this process's operations are headed (an :class:`~proximity_sdk.engine.context.OperationContext`)."""

    def crowded_nodes(self, host_id: str) -> Collection[str]: ...

    def heading_to(self, host_id: str, node: str) -> None: ...


def placing(host_id: str) -> threading.Lock:
    """Placements on one host run one at a time in this process, so each sees the one before.
    (Between processes a placement may miss one still in flight: Proxmox's own memory check remains.)
    Held from the in-flight query to the app's node being stored, and no longer (see :func:`place`)."""
    return _placement_locks[host_id]


def in_flight(
    store: Store,
    host_id: str,
    present: set[int],
    *,
    exclude_app_id: str | None = None,
    default_memory_mb: int | None = None,
    changed_since: datetime | None = None,
) -> dict[str, int]:
    """MiB per node promised to this host's apps still being deployed or cloned whose container
    Proxmox does not list yet (they must count, or two placements at once both take the room).
    ``default_memory_mb``: the settings' (read here when not given, and only if an app needs it).
    ``changed_since``: when ``present`` was read, if before now: an app whose deploy ended since
    then has a container that ``present`` does not list, and counts too."""
    default = default_memory_mb
    pending: dict[str, int] = defaultdict(int)
    for app in store.apps.unborn(host_id, changed_since=changed_since):
        if app.id == exclude_app_id or app.vmid in present:
            continue
        memory = app.memory_mb
        if not memory:
            if default is None:
                default = store.settings.get().default_memory_mb
            memory = default
        pending[app.node] += memory
    return pending


def place(
    client: ProxmoxClient,
    store: Store,
    *,
    host_id: str,
    app_id: str,
    memory_mb: int,
    overcommit: float,
    default_memory_mb: int,
    node: str | None = None,
    load: ProcessLoad | None = None,
) -> PlacementDecision:
    """Choose the node of a new container (:func:`~proximity_sdk.proxmox.placement.place_in`,
    counting what is in flight) and store it as the app's node, which the next placement counts.

    ``load`` (the operation's context): the choice passes over the nodes where this process's
    operations already take every mutation slot, unless only such nodes fit, and counts this
    operation as headed to the node chosen (the next placement of the process sees it).

    Only the choice and the store write hold :func:`placing`: the quorum check and the
    ``/cluster/resources`` read come before it (every placement of the process waits for the
    lock; the read was most of its time). A deploy that ended between that read and the lock
    has a container the read missed: ``changed_since`` counts it (a second early, for clocks
    that tick coarsely; a deploy that failed in that second is counted too, on the safe side)."""
    require_quorum(client)
    read_at = utcnow() - _CLOCK_MARGIN
    resources = client.cluster_resources()
    with placing(host_id):
        decision = place_in(
            resources,
            memory_mb=memory_mb,
            overcommit=overcommit,
            node=node,
            avoid=load.crowded_nodes(host_id) if load is not None else (),
            pending=lambda present: in_flight(
                store,
                host_id,
                present,
                exclude_app_id=app_id,
                default_memory_mb=default_memory_mb,
                changed_since=read_at,
            ),
        )
        store.apps.patch(app_id, node=decision.node)
        if load is not None:
            load.heading_to(host_id, decision.node)
    return decision


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
