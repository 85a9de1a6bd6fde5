"""`MaintenanceAPI`: ``px.maintenance``, the periodic jobs that keep records true, on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from proximity_sdk.models.maintenance import JanitorReport, NodeSyncReport, ReconcileReport

__all__ = ["MaintenanceAPI"]


class MaintenanceAPI(Protocol):
    """``px.maintenance``: the periodic jobs that keep records true, callable on demand (the agent
    schedules them; through an agent they run there, admin only). Each returns a report and never
    raises because a host cannot be reached: that host is in the report."""

    def reconcile(self, host: str | None = None) -> ReconcileReport:
        """Bring every app record of every host (or of one, id or name) in line with Proxmox: app
        status, node and usage from one ``/cluster/resources`` call per host; gone containers make
        their app ``vanished``."""
        ...

    def janitor(self, *, hard_grace_seconds: float | None = None) -> JanitorReport:
        """One janitor pass: operations past their deadline failed and rolled back, dead runners'
        operations taken over, retired containers destroyed after their grace period.
        ``hard_grace_seconds``: how long past its deadline an operation whose runner is alive but
        hangs is left before the janitor takes it from that runner (default: ten operation leases)."""
        ...

    def sync_nodes(self, host: str | None = None) -> NodeSyncReport:
        """Store the nodes (status, CPUs, memory, disk, PVE version) of every host, or of one
        (``px.hosts.sync_nodes`` does one host, raising when it cannot be reached)."""
        ...
