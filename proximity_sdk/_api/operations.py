"""`OperationsAPI`: ``px.operations``, every long action's record and event log."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from proximity_sdk._api.handle import OperationHandleAPI
    from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus

__all__ = ["OperationsAPI"]


class OperationsAPI(Protocol):
    """``px.operations``: every long action's record and event log (through an agent, a member sees
    its own)."""

    def get(self, op_id: str) -> Operation:
        """The operation's record as it is now."""
        ...

    def handle(self, op_id: str) -> OperationHandleAPI[Any]:
        """A handle on an existing operation (to wait for it or cancel it from another script)."""
        ...

    def list(
        self, *, app_id: str | None = None, status: OperationStatus | None = None, limit: int = 100
    ) -> builtins.list[Operation]:
        """Newest first."""
        ...

    def watch(self, op_id: str, *, after: int = 0) -> Iterator[OperationEvent]:
        """The operation's events from ``after`` on, live until it ends (through an agent, resumed
        if the stream drops)."""
        ...

    def cancel(self, op_id: str) -> Operation:
        """Ask the operation to stop at its next step; returns its record (see ``OperationHandleAPI.cancel``)."""
        ...
