"""``px.operations``: every long action's record and event log."""

from __future__ import annotations

from collections.abc import Iterator

from proximity_sdk._api.operations import OperationsAPI
from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.engine.handle import OperationHandle
from proximity_sdk.models._listing import Listing
from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus

__all__ = ["Operations"]


class Operations(OperationsAPI):
    def __init__(self, engine: OperationEngine) -> None:
        self._engine = engine

    def get(self, op_id: str) -> Operation:
        return self._engine.store.operations.get(op_id)

    def handle(self, op_id: str) -> OperationHandle:
        self._engine.store.operations.get(op_id)
        return self._engine.handle(op_id)

    def list(
        self, *, app_id: str | None = None, status: OperationStatus | None = None, limit: int = 100
    ) -> Listing[Operation]:
        return Listing(self._engine.store.operations.list(app_id=app_id, status=status, limit=limit))

    def watch(self, op_id: str, *, after: int = 0) -> Iterator[OperationEvent]:
        return self.handle(op_id).events(after=after)

    def cancel(self, op_id: str) -> Operation:
        return self.handle(op_id).cancel()
