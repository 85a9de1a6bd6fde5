"""``maintenance.proto``: the reports of reconcile, janitor and node sync, both directions
(MaintenanceService takes no request that needs converting)."""

from __future__ import annotations

from proximity_sdk._pb.proximity.v1 import maintenance_pb2
from proximity_sdk._wire._base import optional_from_pb, required_timestamp_from_pb, timestamp_to_pb
from proximity_sdk._wire.apps import app_status_from_pb, app_status_to_pb
from proximity_sdk.models.maintenance import (
    AppChange,
    HostNodeSync,
    HostReconcile,
    JanitorReport,
    NodeSyncReport,
    ReconcileReport,
    RetiredContainer,
    RetiredDestroyed,
)

__all__ = [
    "janitor_report_from_pb",
    "janitor_report_to_pb",
    "node_sync_report_from_pb",
    "node_sync_report_to_pb",
    "reconcile_report_from_pb",
    "reconcile_report_to_pb",
]


def reconcile_report_to_pb(report: ReconcileReport) -> maintenance_pb2.ReconcileReport:
    return maintenance_pb2.ReconcileReport(
        started_at=timestamp_to_pb(report.started_at),
        elapsed_ms=report.elapsed_ms,
        hosts=[maintenance_pb2.HostReconcile(**h.model_dump()) for h in report.hosts],
        changes=[
            maintenance_pb2.AppChange(
                app_id=c.app_id,
                hostname=c.hostname,
                host_id=c.host_id,
                vmid=c.vmid,
                status_before=app_status_to_pb(c.status_before),
                status_after=app_status_to_pb(c.status_after),
                node_before=c.node_before,
                node_after=c.node_after,
            )
            for c in report.changes
        ],
    )


def reconcile_report_from_pb(m: maintenance_pb2.ReconcileReport) -> ReconcileReport:
    hosts = [
        HostReconcile(
            host_id=h.host_id,
            host=h.host,
            reachable=h.reachable,
            error=optional_from_pb(h, "error"),
            error_kind=optional_from_pb(h, "error_kind"),
            requests=h.requests,
            containers=h.containers,
            apps=h.apps,
            updated=h.updated,
            skipped_busy=h.skipped_busy,
            unknown=h.unknown,
            elapsed_ms=h.elapsed_ms,
        )
        for h in m.hosts
    ]
    changes = [
        AppChange(
            app_id=c.app_id,
            hostname=c.hostname,
            host_id=c.host_id,
            vmid=c.vmid,
            status_before=app_status_from_pb(c.status_before),
            status_after=app_status_from_pb(c.status_after),
            node_before=optional_from_pb(c, "node_before"),
            node_after=optional_from_pb(c, "node_after"),
        )
        for c in m.changes
    ]
    return ReconcileReport(
        started_at=required_timestamp_from_pb(m, "started_at"), elapsed_ms=m.elapsed_ms, hosts=hosts, changes=changes
    )


def janitor_report_to_pb(report: JanitorReport) -> maintenance_pb2.JanitorReport:
    return maintenance_pb2.JanitorReport(
        started_at=timestamp_to_pb(report.started_at),
        elapsed_ms=report.elapsed_ms,
        failed_operation_ids=report.failed,
        asked_to_stop_operation_ids=report.asked_to_stop,
        resumed_operation_ids=report.resumed,
        retired_destroyed=[
            maintenance_pb2.RetiredDestroyed(
                app_id=r.app_id,
                gone=r.gone,
                container=maintenance_pb2.RetiredContainer(
                    host_id=r.container.host_id,
                    node=r.container.node,
                    vmid=r.container.vmid,
                    hostname=r.container.hostname,
                    until=timestamp_to_pb(r.container.until),
                ),
            )
            for r in report.retired_destroyed
        ],
        errors=report.errors,
    )


def janitor_report_from_pb(m: maintenance_pb2.JanitorReport) -> JanitorReport:
    retired = [
        RetiredDestroyed(
            app_id=r.app_id,
            gone=r.gone,
            container=RetiredContainer(
                host_id=r.container.host_id,
                node=r.container.node,
                vmid=r.container.vmid,
                hostname=r.container.hostname,
                until=required_timestamp_from_pb(r.container, "until"),
            ),
        )
        for r in m.retired_destroyed
    ]
    return JanitorReport(
        started_at=required_timestamp_from_pb(m, "started_at"),
        elapsed_ms=m.elapsed_ms,
        failed=list(m.failed_operation_ids),
        asked_to_stop=list(m.asked_to_stop_operation_ids),
        resumed=list(m.resumed_operation_ids),
        retired_destroyed=retired,
        errors=list(m.errors),
    )


def node_sync_report_to_pb(report: NodeSyncReport) -> maintenance_pb2.NodeSyncReport:
    return maintenance_pb2.NodeSyncReport(hosts=[maintenance_pb2.HostNodeSync(**h.model_dump()) for h in report.hosts])


def node_sync_report_from_pb(m: maintenance_pb2.NodeSyncReport) -> NodeSyncReport:
    return NodeSyncReport(
        hosts=[
            HostNodeSync(
                host_id=h.host_id,
                host=h.host,
                ok=h.ok,
                nodes=list(h.nodes),
                online=list(h.online),
                error=optional_from_pb(h, "error"),
                error_kind=optional_from_pb(h, "error_kind"),
            )
            for h in m.hosts
        ]
    )
