"""OperationService. Members reach their own operations only; WatchOperation streams from the
shared per-operation feeds (``_feed.py``, on the backend) without holding a thread per watcher."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from proximity_agent.auth import current_caller, hidden
from proximity_agent.servicers._base import Backend
from proximity_agent.servicers._keyset import keyset_request
from proximity_sdk._pb.proximity.v1 import operations_pb2, operations_pb2_grpc
from proximity_sdk._wire.operations import event_to_pb, operation_status_filter_from_pb, operation_to_pb
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.operation import Operation

__all__ = ["OperationServicer"]

_Ctx = object


class OperationServicer(operations_pb2_grpc.OperationServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self._b = backend

    def _own(self, op_id: str) -> Operation:
        if not op_id:
            raise ValidationError("operation_id is required", field="operation_id")
        with hidden("operation", op_id):
            op = self._b.px.operations.get(op_id)
        current_caller().check_owner(op.owner_id, what="operation", ident=op_id)
        return op

    async def GetOperation(
        self,
        request: operations_pb2.GetOperationRequest,
        context: _Ctx,
    ) -> operations_pb2.GetOperationResponse:
        op = await self._b.read(self._own, request.operation_id)
        return operations_pb2.GetOperationResponse(operation=operation_to_pb(op))

    async def ListOperations(
        self,
        request: operations_pb2.ListOperationsRequest,
        context: _Ctx,
    ) -> operations_pb2.ListOperationsResponse:
        owner = current_caller().owner_filter()
        status = operation_status_filter_from_pb(request.status)
        page = keyset_request(
            request.page_size, request.page_token, method="ListOperations", filters=(request.app_id, status, owner)
        )
        ops = await self._b.run(
            self._b.px.store.operations.list,
            app_id=request.app_id or None,
            owner_id=owner,
            status=status,
            after=page.after,
            limit=page.size + 1,
        )
        shown = ops[: page.size]
        return operations_pb2.ListOperationsResponse(
            operations=[operation_to_pb(o) for o in shown],
            next_page_token=page.next_token((shown[-1].created_at, shown[-1].id) if len(ops) > page.size else None),
        )

    async def CancelOperation(
        self,
        request: operations_pb2.CancelOperationRequest,
        context: _Ctx,
    ) -> operations_pb2.CancelOperationResponse:
        def cancel() -> Operation:
            self._own(request.operation_id)
            return self._b.px.operations.cancel(request.operation_id)

        op = await self._b.run(cancel)
        return operations_pb2.CancelOperationResponse(operation=operation_to_pb(op))

    async def WatchOperation(
        self, request: operations_pb2.WatchOperationRequest, context: _Ctx
    ) -> AsyncIterator[operations_pb2.WatchOperationResponse]:
        if request.after_seq < 0:
            raise ValidationError("after_seq must be 0 or a sequence number already received", field="after_seq")
        await self._b.run(self._own, request.operation_id)
        if request.no_follow:
            operations = self._b.px.operations
            for event in await self._b.run(
                lambda: list(operations.handle(request.operation_id).events(after=request.after_seq, follow=False))
            ):
                yield operations_pb2.WatchOperationResponse(event=event_to_pb(event))
            return
        async with contextlib.aclosing(self._b.feeds.watch(request.operation_id, after=request.after_seq)) as events:
            async for event in events:
                yield operations_pb2.WatchOperationResponse(event=event_to_pb(event))
