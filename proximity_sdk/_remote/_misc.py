"""``px.operations``, ``px.settings`` and ``px.maintenance`` over the agent."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from proximity_sdk._api.maintenance import MaintenanceAPI
from proximity_sdk._api.operations import OperationsAPI
from proximity_sdk._api.settings import SettingsAPI
from proximity_sdk._pb.proximity.v1 import (
    maintenance_pb2,
    maintenance_pb2_grpc,
    operations_pb2,
    operations_pb2_grpc,
    settings_pb2,
    settings_pb2_grpc,
)
from proximity_sdk._remote._channel import Connection
from proximity_sdk._remote._handle import RemoteOperationHandle
from proximity_sdk._wire.maintenance import janitor_report_from_pb, node_sync_report_from_pb, reconcile_report_from_pb
from proximity_sdk._wire.operations import operation_from_pb, operation_status_filter_to_pb
from proximity_sdk._wire.settings import settings_from_pb, settings_update_to_pb
from proximity_sdk.errors import PermissionDeniedError, ValidationError
from proximity_sdk.models._listing import Listing
from proximity_sdk.models._requests import check_grace_seconds
from proximity_sdk.models.maintenance import JanitorReport, NodeSyncReport, ReconcileReport
from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus
from proximity_sdk.models.settings import Settings

__all__ = ["RemoteMaintenance", "RemoteOperations", "RemoteSettings"]


class RemoteOperations(OperationsAPI):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = operations_pb2_grpc.OperationServiceStub(conn.channel)

    def get(self, op_id: str) -> Operation:
        request = operations_pb2.GetOperationRequest(operation_id=op_id)
        return operation_from_pb(self._conn.call(self._stub.GetOperation, request).operation)

    def handle(self, op_id: str) -> RemoteOperationHandle:
        self.get(op_id)
        return RemoteOperationHandle(self._conn, op_id)

    def list(
        self, *, app_id: str | None = None, status: OperationStatus | None = None, limit: int = 100
    ) -> builtins.list[Operation]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit must be a whole number, 1 or more", field="limit")
        request = operations_pb2.ListOperationsRequest(
            app_id=app_id or "", status=operation_status_filter_to_pb(status)
        )
        return Listing(
            operation_from_pb(o)
            for o in self._conn.pages(self._stub.ListOperations, request, "operations", limit=limit)
        )

    def watch(self, op_id: str, *, after: int = 0) -> Iterator[OperationEvent]:
        return self.handle(op_id).events(after=after)

    def cancel(self, op_id: str) -> Operation:
        return RemoteOperationHandle(self._conn, op_id).cancel()


class RemoteSettings(SettingsAPI):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = settings_pb2_grpc.SettingsServiceStub(conn.channel)

    def get(self) -> Settings:
        return settings_from_pb(self._conn.call(self._stub.GetSettings, settings_pb2.GetSettingsRequest()).settings)

    def update(self, **fields: Any) -> Settings:
        message, paths = settings_update_to_pb(fields)
        if not paths:
            return self.get()
        request = settings_pb2.UpdateSettingsRequest(settings=message, update_mask=FieldMask(paths=paths))
        return settings_from_pb(self._conn.call(self._stub.UpdateSettings, request).settings)

    def rotate_secret_key(self, new_key: str | bytes | None = None) -> str:
        raise PermissionDeniedError(
            "rotate_secret_key cannot run through the agent: the secret key belongs to the agent's machine",
            hint="Run it on the agent host, with Proximity.local() over the agent's data (stop the agent first)",
        )


class RemoteMaintenance(MaintenanceAPI):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = maintenance_pb2_grpc.MaintenanceServiceStub(conn.channel)

    def reconcile(self, host: str | None = None) -> ReconcileReport:
        request = maintenance_pb2.ReconcileRequest(host=host or "")
        return reconcile_report_from_pb(self._conn.call(self._stub.Reconcile, request).report)

    def janitor(self, *, hard_grace_seconds: float | None = None) -> JanitorReport:
        check_grace_seconds(hard_grace_seconds)
        request = maintenance_pb2.RunJanitorRequest(hard_grace_seconds=hard_grace_seconds)
        return janitor_report_from_pb(self._conn.call(self._stub.RunJanitor, request).report)

    def sync_nodes(self, host: str | None = None) -> NodeSyncReport:
        request = maintenance_pb2.RunNodeSyncRequest(host=host or "")
        return node_sync_report_from_pb(self._conn.call(self._stub.RunNodeSync, request).report)
