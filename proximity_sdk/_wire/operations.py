"""``operations.proto``: operations and their events (answers, both directions), and
ListOperations' status filter (requests)."""

from __future__ import annotations

from proximity_sdk._pb.proximity.v1 import operations_pb2
from proximity_sdk._wire._base import (
    enum_from_pb,
    enum_to_pb,
    json_from_pb,
    json_to_pb,
    known_enum_from_pb,
    optional_from_pb,
    required_timestamp_from_pb,
    timestamp_from_pb,
    timestamp_to_pb,
)
from proximity_sdk.models._requests import check_choice
from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus

__all__ = [
    "event_from_pb",
    "event_to_pb",
    "operation_from_pb",
    "operation_status_filter_from_pb",
    "operation_status_filter_to_pb",
    "operation_to_pb",
]

_OP_STATUSES = tuple(s.value for s in OperationStatus)
_LEVELS = ("debug", "info", "warning", "error")


def operation_status_filter_to_pb(status: OperationStatus | str | None) -> operations_pb2.OperationStatus.ValueType:
    """ListOperations' status filter: None (any status) is unspecified; a string must name a status."""
    if status is None:
        return operations_pb2.OPERATION_STATUS_UNSPECIFIED
    value = check_choice(
        str(status.value if isinstance(status, OperationStatus) else status), _OP_STATUSES, field="status"
    )
    return enum_to_pb("OPERATION_STATUS_", operations_pb2.OperationStatus, value)


def operation_status_filter_from_pb(number: int) -> OperationStatus | None:
    """ListOperations' status filter: unspecified is None (any status); an unknown number is refused."""
    value = enum_from_pb("OPERATION_STATUS_", operations_pb2.OperationStatus, number)
    return OperationStatus(value) if value is not None else None


def operation_to_pb(op: Operation) -> operations_pb2.Operation:
    return operations_pb2.Operation(
        id=op.id,
        kind=op.kind,
        status=enum_to_pb("OPERATION_STATUS_", operations_pb2.OperationStatus, op.status.value),
        app_id=op.app_id,
        host_id=op.host_id,
        vmid=op.vmid,
        owner_id=op.owner_id,
        steps=list(op.steps),
        current_step=op.current_step,
        error=op.error,
        result_json=json_to_pb(op.result),
        deadline=timestamp_to_pb(op.deadline),
        cancel_requested=op.cancel_requested,
        created_at=timestamp_to_pb(op.created_at),
        updated_at=timestamp_to_pb(op.updated_at),
        started_at=timestamp_to_pb(op.started_at),
        finished_at=timestamp_to_pb(op.finished_at),
    )


def operation_from_pb(m: operations_pb2.Operation) -> Operation:
    status = known_enum_from_pb(
        "OPERATION_STATUS_", operations_pb2.OperationStatus, m.status, known=_OP_STATUSES, default="pending"
    )
    return Operation(
        id=m.id,
        kind=m.kind,
        status=OperationStatus(status),
        app_id=optional_from_pb(m, "app_id"),
        host_id=optional_from_pb(m, "host_id"),
        vmid=optional_from_pb(m, "vmid"),
        owner_id=optional_from_pb(m, "owner_id"),
        steps=tuple(m.steps),
        current_step=optional_from_pb(m, "current_step"),
        error=optional_from_pb(m, "error"),
        result=json_from_pb(m.result_json, default={}),
        deadline=timestamp_from_pb(m, "deadline"),
        cancel_requested=m.cancel_requested,
        created_at=required_timestamp_from_pb(m, "created_at"),
        updated_at=required_timestamp_from_pb(m, "updated_at"),
        started_at=timestamp_from_pb(m, "started_at"),
        finished_at=timestamp_from_pb(m, "finished_at"),
    )


def event_to_pb(event: OperationEvent) -> operations_pb2.OperationEvent:
    return operations_pb2.OperationEvent(
        operation_id=event.operation_id,
        seq=event.seq,
        time=timestamp_to_pb(event.time),
        step=event.step,
        level=enum_to_pb("OPERATION_EVENT_LEVEL_", operations_pb2.OperationEventLevel, event.level),
        message=event.message,
        progress=event.progress,
    )


def event_from_pb(m: operations_pb2.OperationEvent) -> OperationEvent:
    level = known_enum_from_pb(
        "OPERATION_EVENT_LEVEL_", operations_pb2.OperationEventLevel, m.level, known=_LEVELS, default="info"
    )
    return OperationEvent(
        operation_id=m.operation_id,
        seq=m.seq,
        time=required_timestamp_from_pb(m, "time"),
        step=optional_from_pb(m, "step"),
        level=level,
        message=m.message,
        progress=optional_from_pb(m, "progress"),
    )
