"""Helpers of the agent tests: stubs by name, waiting for an operation through the API, codes."""

from __future__ import annotations

import json
from typing import Any

import grpc

from proximity_sdk._pb.proximity.v1 import operations_pb2, operations_pb2_grpc
from tests.agent.conftest import Agent


def code_of(call: Any) -> grpc.StatusCode:
    """The status code of a call (a zero-argument function making it)."""
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "DESCRIPTOR"):
            list(result)  # a server stream: its status comes at its end
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def rpc_error(call: Any) -> grpc.RpcError:
    try:
        call()
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("the call succeeded")


def trailing(exc: grpc.RpcError) -> dict[str, str]:
    return {m.key: m.value for m in (exc.trailing_metadata() or ())}  # type: ignore[attr-defined]


def finish(agent: Agent, token: str, op_id: str, timeout: float = 60) -> tuple[operations_pb2.Operation, list[Any]]:
    """Follow the operation with WatchOperation to its end; its final record and every event."""
    ops = agent.stub(operations_pb2_grpc.OperationServiceStub, token)
    events = [
        m.event for m in ops.WatchOperation(operations_pb2.WatchOperationRequest(operation_id=op_id), timeout=timeout)
    ]
    op = ops.GetOperation(operations_pb2.GetOperationRequest(operation_id=op_id)).operation
    return op, events


def succeeded(agent: Agent, token: str, op_id: str) -> dict[str, Any]:
    """Wait for the operation; assert it succeeded; its result."""
    op, _ = finish(agent, token, op_id)
    assert op.status == operations_pb2.OPERATION_STATUS_SUCCEEDED, (op.status, op.error)
    result: dict[str, Any] = json.loads(op.result_json)
    return result
