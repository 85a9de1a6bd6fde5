"""Reconcile: keep app records true to what Proxmox holds, one ``/cluster/resources`` call per host.

Not an Operation: it is a periodic read-and-update that owns nothing in Proxmox and writes each
host's records in one transaction. For every app of a reachable host:

- its container is listed → status ``running``/``stopped`` as Proxmox says, the node it is on now
  (containers moved between nodes are followed), its usage in ``config["usage"]``;
- its container is not listed → ``vanished`` (the record is kept; it comes back when the
  container does);
- it is in an active state (deploying, cloning, ...), has an unfinished operation, or was written
  after the listing was asked for → left alone (the operation knows better).

A host that cannot be reached changes nothing and is reported. A row's status is taken only when
Proxmox can know it (pve-manager ``PVE::API2Tools``: ``/cluster/resources`` builds guest rows from the
RRD cache): a guest listed with status ``unknown`` (no RRD entry yet, e.g. just after a start or a
migrate) and every guest of a node whose own row is not ``online`` (a departed node's guests keep
the status it last broadcast, often ``running``) keep their recorded status; only their node is
followed. The listing is asked for once, all types, so the node rows come with the guests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ProximityError
from proximity_sdk.models.host import Host
from proximity_sdk.models.maintenance import AppChange, HostReconcile, ReconcileReport
from proximity_sdk.models.proxmox import ClusterResource
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.maintenance_repo import Observed, apply_observations

__all__ = ["containers_by_vmid", "node_states", "reconcile"]

log = logging.getLogger(__name__)


def containers_by_vmid(resources: Sequence[ClusterResource]) -> dict[int, ClusterResource]:
    """The LXC containers (templates excluded) of a ``/cluster/resources`` listing, by VMID."""
    return {r.vmid: r for r in resources if r.type == "lxc" and r.vmid is not None and r.node and not r.template}


def node_states(resources: Sequence[ClusterResource]) -> dict[str, str]:
    """The status of every node row of a ``/cluster/resources`` listing (``online``, ``offline``, ``unknown``)."""
    return {r.node: r.status or "unknown" for r in resources if r.type == "node" and r.node}


def _observed(resource: ClusterResource, sampled_at: str, nodes: dict[str, str]) -> Observed:
    assert resource.node is not None
    usage = {
        "cpu": resource.cpu,
        "mem": resource.mem,
        "maxmem": resource.maxmem,
        "disk": resource.disk,
        "maxdisk": resource.maxdisk,
        "uptime": resource.uptime,
        "sampled_at": sampled_at,
    }
    status = resource.status or "unknown"
    if nodes and nodes.get(resource.node) != "online":  # (PVE always lists the node rows)
        status = "unknown"  # the node is not there to say: the row holds what it last broadcast
    return Observed(node=resource.node, status=status, usage=usage)


def _reconcile_host(services: Services, host: Host) -> tuple[HostReconcile, list[AppChange]]:
    began = time.perf_counter()
    requests = 0
    # taken before the request: a record written after it was written by someone who knows better
    since = utcnow()
    try:
        client = services.clients.get(host.id)
        before = client.request_count
        try:
            listing = client.cluster_resources()
        finally:
            requests = client.request_count - before
    except ProximityError as exc:
        log.warning("reconcile: host %s cannot be reached: %s", host.name, exc)
        return HostReconcile(
            host_id=host.id,
            host=host.name,
            reachable=False,
            error=str(exc),
            error_kind=type(exc).__name__,
            requests=requests,
            elapsed_ms=(time.perf_counter() - began) * 1000,
        ), []
    sampled_at = utcnow().isoformat()
    nodes = node_states(listing)
    observed = {vmid: _observed(r, sampled_at, nodes) for vmid, r in containers_by_vmid(listing).items()}
    outcome = apply_observations(services.store, host.id, observed, since=since)
    summary = HostReconcile(
        host_id=host.id,
        host=host.name,
        reachable=True,
        requests=requests,
        containers=len(observed),
        apps=outcome.apps,
        updated=outcome.updated,
        skipped_busy=outcome.skipped_busy,
        unknown=outcome.unknown,
        elapsed_ms=(time.perf_counter() - began) * 1000,
    )
    return summary, outcome.changes


def reconcile(services: Services, host: str | None = None) -> ReconcileReport:
    """Reconcile every host (``host=None``) or one (id or name). Never raises for a host that
    cannot be reached: it is reported in ``ReconcileReport.unreachable``."""
    started = utcnow()
    began = time.perf_counter()
    store = services.store
    hosts = [store.hosts.get(host)] if host is not None else store.hosts.list()
    summaries: list[HostReconcile] = []
    changes: list[AppChange] = []
    for current in hosts:
        summary, changed = _reconcile_host(services, current)
        summaries.append(summary)
        changes.extend(changed)
    return ReconcileReport(
        started_at=started, elapsed_ms=(time.perf_counter() - began) * 1000, hosts=summaries, changes=changes
    )
