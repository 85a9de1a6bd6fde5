"""`OperationHandle`: what every long action returns at once: follow its events, wait, cancel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, cast

from proximity_sdk._api.handle import OperationHandleAPI, T
from proximity_sdk.errors import OperationTimeout
from proximity_sdk.models._requests import check_after, check_wait_timeout
from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus, raise_unless_succeeded

if TYPE_CHECKING:
    from proximity_sdk.engine.kinds import OperationKind
    from proximity_sdk.store import Store

__all__ = ["HandleEngine", "OperationHandle"]

# Watchers in other processes see new events by polling; in this process a notification wakes them.
_POLL = 0.2


class HandleEngine(Protocol):
    """What a handle needs of the engine that runs its operation (``OperationEngine`` is one): the
    handle names this, not the engine, so the engine may import the handle and not the reverse."""

    @property
    def store(self) -> Store: ...

    def kind(self, name: str) -> OperationKind: ...

    def notify(self, op_id: str) -> None: ...

    def wait_change(self, timeout: float) -> None: ...


class OperationHandle(OperationHandleAPI[T]):
    """A running (or finished) operation. ``events()`` streams its log, ``wait()`` returns its result
    (typed: ``px.apps.deploy(...)`` is an ``OperationHandle[App]``, so ``.wait()`` is an ``App``)."""

    def __init__(self, engine: HandleEngine, op_id: str) -> None:
        self._engine = engine
        self.id = op_id

    def __repr__(self) -> str:
        op = self.get()
        return f"<Operation {op.kind} {op.id} {op.status.value}>"

    def _repr_html_(self) -> str:
        """A static progress card (status, steps, last events, error): for HTML exports and
        frontends that ask for HTML only. Jupyter uses ``_ipython_display_``."""
        from proximity_sdk._notebook import render_operation_html

        return render_operation_html(self)

    def _ipython_display_(self) -> None:
        """Jupyter: a finished operation shows a static card; a running one a card that follows it
        live until it ends (interrupting the cell stops watching, not the operation). Never raises
        for a failed operation: the card shows it; ``display_live`` returns/raises like ``wait()``."""
        from proximity_sdk._notebook import show_operation

        show_operation(self)

    def get(self) -> Operation:
        return self._engine.store.operations.get(self.id)

    @property
    def status(self) -> OperationStatus:
        return self.get().status

    def events(self, after: int = 0, *, follow: bool = True, timeout: float | None = None) -> Iterator[OperationEvent]:
        check_after(after)
        ops = self._engine.store.operations
        deadline = None if timeout is None else time.monotonic() + timeout
        seq = after
        while True:
            finished = ops.get(self.id).finished  # read before draining, so no late event is missed
            batch = ops.events(self.id, after=seq)
            for event in batch:
                seq = event.seq
                yield event
            if batch:
                continue
            if finished or not follow:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise OperationTimeout(f"no end of operation {self.id} within {timeout} s", operation_id=self.id)
            self._engine.wait_change(_POLL)

    def wait(self, timeout: float | None = None) -> T:
        check_wait_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            op = self.get()
            if op.finished:
                return cast(T, self._outcome(op))
            if deadline is not None and time.monotonic() >= deadline:
                raise OperationTimeout(
                    f"{op.kind} operation {op.id} still {op.status.value} after {timeout} s"
                    f" (step {op.current_step or '-'})",
                    operation_id=op.id,
                )
            remaining = _POLL if deadline is None else max(0.0, min(_POLL, deadline - time.monotonic()))
            self._engine.wait_change(remaining)

    def _outcome(self, op: Operation) -> Any:
        raise_unless_succeeded(op)
        return self._engine.kind(op.kind).result(self._engine.store, op)

    def cancel(self) -> Operation:
        op = self._engine.store.operations.request_cancel(self.id)
        self._engine.notify(self.id)
        return op
