"""Reconcile: keep app records true to what Proxmox holds, one ``/cluster/resources`` call per host,
all hosts asked at once.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ProximityError
from proximity_sdk.models.host import Host
from proximity_sdk.models.maintenance import AppChange, HostReconcile, ReconcileReport
from proximity_sdk.models.proxmox import ClusterResource
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.maintenance_repo import Observed, apply_observations

__all__ = ["MAX_PARALLEL_HOSTS", "containers_by_vmid", "node_states", "reconcile"]

#: hosts whose listing is asked for at the same time
MAX_PARALLEL_HOSTS = 16

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


@dataclass(frozen=True)
class _Listing:
    """One host's ``/cluster/resources`` answer (or why there is none), as fetched."""

    since: datetime  # taken before the request: a record written after it was written by someone who knows better
    fetch_seconds: float  # the request alone (the host's own time is this plus applying its answer)
    requests: int
    resources: list[ClusterResource] | None = None
    error: ProximityError | None = None


def _fetch(services: Services, host: Host) -> _Listing:
    began = time.perf_counter()
    requests = 0
    since = utcnow()
    try:
        client = services.clients.get(host.id)
        before = client.request_count
        try:
            listing = client.cluster_resources()
        finally:
            requests = client.request_count - before
    except ProximityError as exc:
        return _Listing(since=since, fetch_seconds=time.perf_counter() - began, requests=requests, error=exc)
    return _Listing(since=since, fetch_seconds=time.perf_counter() - began, requests=requests, resources=listing)


def _apply(services: Services, host: Host, fetched: _Listing) -> tuple[HostReconcile, list[AppChange]]:
    began = time.perf_counter() - fetched.fetch_seconds
    if fetched.resources is None:
        exc = fetched.error
        log.warning("reconcile: host %s cannot be reached: %s", host.name, exc)
        return HostReconcile(
            host_id=host.id,
            host=host.name,
            reachable=False,
            error=str(exc),
            error_kind=type(exc).__name__,
            requests=fetched.requests,
            elapsed_ms=(time.perf_counter() - began) * 1000,
        ), []
    sampled_at = utcnow().isoformat()
    nodes = node_states(fetched.resources)
    observed = {vmid: _observed(r, sampled_at, nodes) for vmid, r in containers_by_vmid(fetched.resources).items()}
    outcome = apply_observations(services.store, host.id, observed, since=fetched.since)
    summary = HostReconcile(
        host_id=host.id,
        host=host.name,
        reachable=True,
        requests=fetched.requests,
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
    # Each host's one request goes out at once: a fleet of hosts costs its slowest answer, not
    # their sum. The answers are applied one host at a time (one transaction each).
    with ThreadPoolExecutor(
        max_workers=max(1, min(MAX_PARALLEL_HOSTS, len(hosts))), thread_name_prefix="proximity-reconcile"
    ) as pool:
        fetched = list(pool.map(lambda h: _fetch(services, h), hosts))
    summaries: list[HostReconcile] = []
    changes: list[AppChange] = []
    for current, listing in zip(hosts, fetched, strict=True):
        summary, changed = _apply(services, current, listing)
        summaries.append(summary)
        changes.extend(changed)
    return ReconcileReport(
        started_at=started, elapsed_ms=(time.perf_counter() - began) * 1000, hosts=summaries, changes=changes
    )
