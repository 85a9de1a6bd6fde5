"""Which node gets a new container: capacity from one ``/cluster/resources`` read.

A node's capacity is its memory x the overcommit ratio in settings; what is *promised* is the
sum of the configured memory (``maxmem``) of every guest on it, containers and VMs, running or
stopped (a stopped guest may start at any time). Templates are left out: they never run. A node
fits when capacity - promised covers the new container's memory. Live usage (``mem``) is not
used: it swings with load, while promises are what a node must honour once everything runs.

Only a node whose ``/cluster/resources`` row says ``online`` is a candidate: PVE says ``offline``
for a node the cluster lost and ``unknown`` for one with no RRD entry (pve-manager
``PVE::API2Tools::extract_node_stats``). And nothing is placed while the cluster has no quorum:
that shows only as ``quorate: 0`` on the cluster row of ``/cluster/status`` (``get_status``), and
without quorum ``/etc/pve`` is read-only, so every create would fail (:func:`require_quorum`).

The math is pure (:func:`node_capacities`, :func:`choose_node`, :func:`place_in`); :func:`pick_node` fetches.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from proximity_sdk.errors import ConflictError, PermissionDeniedError, ValidationError
from proximity_sdk.models.proxmox import ClusterResource
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.validate import check_node_name

__all__ = [
    "NodeCapacity",
    "PlacementDecision",
    "choose_node",
    "cluster_quorate",
    "node_capacities",
    "pick_node",
    "place_in",
    "require_quorum",
]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """One node's memory figures, in MiB (``capacity_mb`` already includes the overcommit)."""

    node: str
    status: str
    memory_mb: int
    capacity_mb: int
    promised_mb: int
    guests: int

    @property
    def online(self) -> bool:
        return self.status == "online"

    @property
    def free_mb(self) -> int:
        """Memory not yet promised (negative when the node is already overcommitted past the ratio)."""
        return self.capacity_mb - self.promised_mb

    def fits(self, memory_mb: int) -> bool:
        return self.online and self.memory_mb > 0 and self.free_mb >= memory_mb

    def describe(self) -> str:
        if not self.online:
            return f"{self.node}: {self.status}"
        if not self.memory_mb:
            return f"{self.node}: online but reports no memory figures"
        return (
            f"{self.node}: {self.free_mb} MiB free of {self.capacity_mb} MiB "
            f"({self.memory_mb} MiB x overcommit, {self.promised_mb} MiB promised to {self.guests} guests)"
        )


@dataclass(frozen=True, slots=True)
class PlacementDecision:
    """The chosen node, why, and the figures of every node considered."""

    node: str
    reason: str
    memory_mb: int
    free_mb: int
    capacity_mb: int
    candidates: tuple[NodeCapacity, ...]
    #: the VMIDs of every guest the ``/cluster/resources`` answer listed (what a VMID allocation
    #: right after the placement skips without reading it again); empty when not read here
    vmids_in_use: frozenset[int] = frozenset()

    @property
    def free_after_mb(self) -> int:
        return self.free_mb - self.memory_mb


def _check_overcommit(overcommit: float) -> float:
    if isinstance(overcommit, bool) or not isinstance(overcommit, (int, float)) or not 0 < overcommit <= 100:
        raise ValidationError(
            f"overcommit {overcommit!r} must be a number above 0 and at most 100",
            field="overcommit",
            hint="Use settings.memory_overcommit (default 2.0)",
        )
    return float(overcommit)


def _check_memory(memory_mb: int) -> int:
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 16:
        raise ValidationError(f"memory_mb {memory_mb!r} must be an integer of at least 16", field="memory_mb")
    return memory_mb


def node_capacities(resources: Iterable[ClusterResource], *, overcommit: float) -> list[NodeCapacity]:
    """Every node of a ``/cluster/resources`` answer with its capacity and promises, by name."""
    ratio = _check_overcommit(overcommit)
    promised: dict[str, int] = {}
    guests: dict[str, int] = {}
    nodes: dict[str, ClusterResource] = {}
    for item in resources:
        if item.type == "node" and item.node:
            nodes[item.node] = item
        elif item.type in ("lxc", "qemu") and item.node and not item.template:
            promised[item.node] = promised.get(item.node, 0) + (item.maxmem or 0)
            guests[item.node] = guests.get(item.node, 0) + 1
    out = []
    for name in sorted(nodes):
        item = nodes[name]
        memory = (item.maxmem or 0) // MIB
        # an offline node reports no memory; it is listed (for the error message) but never fits
        out.append(
            NodeCapacity(
                node=name,
                status=item.status or "unknown",
                memory_mb=memory,
                capacity_mb=int(memory * ratio),
                promised_mb=promised.get(name, 0) // MIB,
                guests=guests.get(name, 0),
            )
        )
    return out


def choose_node(
    capacities: Iterable[NodeCapacity],
    *,
    memory_mb: int,
    node: str | None = None,
    exclude: Collection[str] = (),
    avoid: Collection[str] = (),
) -> PlacementDecision:
    """The explicit ``node`` if it exists, is online and fits; otherwise the online node with the
    most unpromised memory that fits (ties: by name), skipping ``exclude``, and ``avoid`` too
    unless only such nodes fit (nodes where the caller has all its mutation slots spoken for:
    another operation there would wait for one while another node could start it)."""
    need = _check_memory(memory_mb)
    table = tuple(capacities)
    figures = "; ".join(c.describe() for c in table) or "no nodes"
    if node is not None:
        check_node_name(node)
        found = next((c for c in table if c.node == node), None)
        if found is None:
            raise ValidationError(
                f"node {node!r} is not in the cluster",
                field="node",
                hint="Nodes: " + (", ".join(c.node for c in table) or "none") + "; or leave node unset",
            )
        if not found.online:
            raise ConflictError(
                f"node {node!r} is {found.status}",
                hint="Bring it back online, or leave node unset to pick the best online node",
            )
        if not found.fits(need):
            raise ConflictError(
                f"node {node!r} cannot take {need} MiB more: {found.describe()}",
                hint="Give less memory, raise memory_overcommit in settings, or choose another node",
            )
        return PlacementDecision(
            node=found.node,
            reason=f"node {found.node} was asked for and has room",
            memory_mb=need,
            free_mb=found.free_mb,
            capacity_mb=found.capacity_mb,
            candidates=table,
        )
    fitting = [c for c in table if c.node not in exclude and c.fits(need)]
    if not fitting:
        skipped = f" (excluded: {', '.join(sorted(exclude))})" if exclude else ""
        raise ConflictError(
            f"no online node has {need} MiB of unpromised memory{skipped}: {figures}",
            hint="Give less memory, raise memory_overcommit in settings, free memory, or add a node",
        )
    free = [c for c in fitting if c.node not in avoid]
    chosen = free or fitting
    best = min(chosen, key=lambda c: (-c.free_mb, c.node))
    passed = sorted(c.node for c in fitting if c.node in avoid and (-c.free_mb, c.node) < (-best.free_mb, best.node))
    that_fit = f"{len(fitting)} that fit"
    if passed:
        that_fit = (
            f"{len(chosen)} that fit with a mutation slot free (passed over: {', '.join(passed)}, "
            "where every slot is taken)"
        )
    return PlacementDecision(
        node=best.node,
        # the figures say where a number larger than the node's RAM comes from: the overcommit ratio
        reason=f"node {best.node} has the most unpromised memory ({best.free_mb} MiB: {best.memory_mb} MiB of RAM "
        f"x {best.capacity_mb / best.memory_mb:g} overcommit, {best.promised_mb} MiB promised) of {that_fit}",
        memory_mb=need,
        free_mb=best.free_mb,
        capacity_mb=best.capacity_mb,
        candidates=table,
    )


def cluster_quorate(client: ProxmoxClient) -> bool | None:
    """Whether the cluster has quorum (``quorate`` of the cluster row of ``/cluster/status``).
    A single node that is in no cluster has no such row: True. None when the credentials may not
    read it (``Sys.Audit`` on ``/``; ``px.hosts.test`` names that)."""
    try:
        rows = client.get("/cluster/status") or []
    except PermissionDeniedError:
        return None
    for row in rows:
        if isinstance(row, dict) and row.get("type") == "cluster":
            return str(row.get("quorate", 0)) == "1"
    return True


def require_quorum(client: ProxmoxClient) -> None:
    """A :class:`ConflictError` when the cluster has lost quorum (nothing can be created then)."""
    if cluster_quorate(client) is False:
        raise ConflictError(
            "the cluster has no quorum (/cluster/status: quorate 0): Proxmox refuses to create or change "
            "containers until it is back",
            hint="Bring enough nodes back online (pvecm status on a node shows the votes), then try again",
        )


def pick_node(
    client: ProxmoxClient,
    *,
    memory_mb: int,
    overcommit: float,
    node: str | None = None,
    exclude: Collection[str] = (),
    pending: Callable[[set[int]], Mapping[str, int]] | None = None,
) -> PlacementDecision:
    """Check quorum (:func:`require_quorum`), read ``/cluster/resources`` once and choose (see :func:`choose_node`).

    ``pending`` is given the VMIDs Proxmox already lists and returns the MiB promised per node
    to containers not created yet (deploys in flight), so that concurrent placements count them."""
    _check_memory(memory_mb)
    _check_overcommit(overcommit)
    if node is not None:
        check_node_name(node)
    require_quorum(client)
    return place_in(
        client.cluster_resources(),
        memory_mb=memory_mb,
        overcommit=overcommit,
        node=node,
        exclude=exclude,
        pending=pending,
    )


def place_in(
    resources: Sequence[ClusterResource],
    *,
    memory_mb: int,
    overcommit: float,
    node: str | None = None,
    exclude: Collection[str] = (),
    avoid: Collection[str] = (),
    pending: Callable[[set[int]], Mapping[str, int]] | None = None,
) -> PlacementDecision:
    """:func:`pick_node` on a ``/cluster/resources`` answer read already: for a caller that reads
    it before taking its placement lock (``pending`` must then also count what left flight
    since that read). ``avoid``: see :func:`choose_node`."""
    capacities = node_capacities(resources, overcommit=overcommit)
    listed = {r.vmid for r in resources if r.vmid is not None}
    if pending is not None:
        extra = pending(listed)
        capacities = [replace(c, promised_mb=c.promised_mb + extra.get(c.node, 0)) for c in capacities]
    decision = choose_node(capacities, memory_mb=memory_mb, node=node, exclude=exclude, avoid=avoid)
    return replace(decision, vmids_in_use=frozenset(listed))
