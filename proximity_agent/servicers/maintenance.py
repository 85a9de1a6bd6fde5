"""MaintenanceService (admin-only, see auth.POLICY): the periodic jobs on demand. Each answers
with its report; an unreachable host is in the report, not an error."""

from __future__ import annotations

from proximity_agent.servicers._base import Backend
from proximity_sdk._pb.proximity.v1 import maintenance_pb2, maintenance_pb2_grpc
from proximity_sdk._wire.maintenance import janitor_report_to_pb, node_sync_report_to_pb, reconcile_report_to_pb

__all__ = ["MaintenanceServicer"]

_Ctx = object


class MaintenanceServicer(maintenance_pb2_grpc.MaintenanceServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def Reconcile(
        self,
        request: maintenance_pb2.ReconcileRequest,
        context: _Ctx,
    ) -> maintenance_pb2.ReconcileResponse:
        report = await self._b.run_long(self._b.px.maintenance.reconcile, request.host or None)
        return maintenance_pb2.ReconcileResponse(report=reconcile_report_to_pb(report))

    async def RunJanitor(
        self,
        request: maintenance_pb2.RunJanitorRequest,
        context: _Ctx,
    ) -> maintenance_pb2.RunJanitorResponse:
        grace = request.hard_grace_seconds if request.HasField("hard_grace_seconds") else None
        report = await self._b.run_long(self._b.px.maintenance.janitor, hard_grace_seconds=grace)
        return maintenance_pb2.RunJanitorResponse(report=janitor_report_to_pb(report))

    async def RunNodeSync(
        self,
        request: maintenance_pb2.RunNodeSyncRequest,
        context: _Ctx,
    ) -> maintenance_pb2.RunNodeSyncResponse:
        report = await self._b.run_long(self._b.px.maintenance.sync_nodes, request.host or None)
        return maintenance_pb2.RunNodeSyncResponse(report=node_sync_report_to_pb(report))
