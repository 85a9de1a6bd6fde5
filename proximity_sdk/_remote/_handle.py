"""`RemoteOperationHandle`: the OperationHandle API over the agent.

``events()`` streams WatchOperation. When the stream drops (the agent restarts, the network
blips: UNAVAILABLE and the like), it reconnects and asks again from the last ``seq`` it yielded,
so every event comes exactly once, in order. ``wait()`` follows the stream to the end and
returns what ``Proximity.local()`` returns for that kind of operation (an ``App``, a ``Backup``,
or None), or raises the same OperationFailed / OperationCancelled / OperationTimeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import grpc

from proximity_sdk._api.handle import OperationHandleAPI, T
from proximity_sdk._pb.proximity.v1 import (
    apps_pb2,
    apps_pb2_grpc,
    backups_pb2,
    backups_pb2_grpc,
    operations_pb2,
    operations_pb2_grpc,
)
from proximity_sdk._remote._errors import error_kind, from_rpc_error
from proximity_sdk._wire.apps import app_from_pb
from proximity_sdk._wire.backups import backup_from_pb
from proximity_sdk._wire.operations import event_from_pb, operation_from_pb
from proximity_sdk.errors import (
    OperationTimeout,
    UnavailableError,
)
from proximity_sdk.models._requests import check_after, check_wait_timeout
from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus, raise_unless_succeeded

if TYPE_CHECKING:
    from proximity_sdk._remote._channel import Connection

__all__ = ["RESULTS", "RemoteOperationHandle"]

# how long a dropped stream is retried without a single event getting through
RECONNECT_SECONDS = 30.0
_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0)
# transport failures (no error kind from the agent) after which the same request may work
_RESUMABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN}


def _app(conn: Connection, app_id: object) -> Any:
    stub = apps_pb2_grpc.AppServiceStub(conn.channel)
    return app_from_pb(conn.call(stub.GetApp, apps_pb2.GetAppRequest(app_id=str(app_id))).app)


def _backup(conn: Connection, backup_id: object) -> Any:
    stub = backups_pb2_grpc.BackupServiceStub(conn.channel)
    return backup_from_pb(conn.call(stub.GetBackup, backups_pb2.GetBackupRequest(backup_id=str(backup_id))).backup)


# What wait() returns per kind of operation: the same as each kind's ``result()`` in the SDK
# (tests/remote/test_parity.py checks that every kind the SDK registers is here).
RESULTS: dict[str, Callable[[Connection, Operation], Any]] = {
    "deploy": lambda c, op: _app(c, op.result["app_id"]),
    "clone": lambda c, op: _app(c, op.result["app_id"]),
    "restore": lambda c, op: _app(c, op.result["app_id"]),
    **{
        kind: (lambda c, op: _app(c, op.app_id))
        for kind in ("start", "stop", "restart", "adopt", "migrate", "resize", "update")
    },
    "backup": lambda c, op: _backup(c, op.result["backup_id"]),
    "delete": lambda c, op: None,
    "pull": lambda c, op: dict(op.result.get("digests") or {}),
    "backup-delete": lambda c, op: None,
}


class RemoteOperationHandle(OperationHandleAPI[T]):
    """A running (or finished) operation on the agent. ``events()`` streams its log, ``wait()``
    returns its result."""

    def __init__(self, conn: Connection, op_id: str) -> None:
        self._conn = conn
        self._stub = operations_pb2_grpc.OperationServiceStub(conn.channel)
        self.id = op_id

    def __repr__(self) -> str:
        op = self.get()
        return f"<Operation {op.kind} {op.id} {op.status.value}>"

    def _repr_html_(self) -> str:
        """A static progress card (status, steps, last events, error), as the local handle's."""
        from proximity_sdk._notebook import render_operation_html

        return render_operation_html(self)

    def _ipython_display_(self) -> None:
        """Jupyter: a static card when finished, else one that follows the stream live until the end."""
        from proximity_sdk._notebook import show_operation

        show_operation(self)

    def get(self) -> Operation:
        request = operations_pb2.GetOperationRequest(operation_id=self.id)
        return operation_from_pb(self._conn.call(self._stub.GetOperation, request).operation)

    @property
    def status(self) -> OperationStatus:
        return self.get().status

    def events(self, after: int = 0, *, follow: bool = True, timeout: float | None = None) -> Iterator[OperationEvent]:
        check_after(after)
        deadline = None if timeout is None else time.monotonic() + timeout
        last = after
        failures = 0
        retry_until: float | None = None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise OperationTimeout(f"no end of operation {self.id} within {timeout} s", operation_id=self.id)
            request = operations_pb2.WatchOperationRequest(operation_id=self.id, after_seq=last, no_follow=not follow)
            stream = self._stub.WatchOperation(request, timeout=remaining)
            try:
                for message in stream:
                    if message.event.seq <= last:
                        continue  # never twice, whatever a server resends
                    event = event_from_pb(message.event)
                    last = event.seq
                    failures, retry_until = 0, None
                    yield event
            except grpc.RpcError as exc:
                code = exc.code()
                if error_kind(exc) is None and code == grpc.StatusCode.DEADLINE_EXCEEDED and deadline is not None:
                    raise OperationTimeout(
                        f"no end of operation {self.id} within {timeout} s", operation_id=self.id
                    ) from None
                if error_kind(exc) is not None or code not in _RESUMABLE:
                    raise from_rpc_error(exc, target=self._conn.target) from None
                time.sleep(_BACKOFF[min(failures, len(_BACKOFF) - 1)])
                failures += 1
                if self._reachable():
                    retry_until = None  # only the stream broke: the window counts an outage, not drops
                    continue
                retry_until = retry_until or time.monotonic() + RECONNECT_SECONDS
                if time.monotonic() >= retry_until:
                    raise from_rpc_error(exc, target=self._conn.target) from None
                continue
            finally:
                stream.cancel()  # a consumer that stops early ends the call on the agent too
            if not follow:
                return
            # a clean end means "finished and drained", unless the agent closed streams on its way down
            try:
                if self.get().finished:
                    return
                time.sleep(_BACKOFF[0])
            except UnavailableError:
                retry_until = retry_until or time.monotonic() + RECONNECT_SECONDS
                if time.monotonic() >= retry_until:
                    raise
                time.sleep(_BACKOFF[min(failures, len(_BACKOFF) - 1)])
                failures += 1

    def _reachable(self) -> bool:
        try:
            self.get()
        except UnavailableError:
            return False
        return True

    def wait(self, timeout: float | None = None) -> T:
        check_wait_timeout(timeout)
        op = self.get()
        if not op.finished:
            try:
                for _ in self.events(timeout=timeout):
                    pass
            except OperationTimeout:
                op = self.get()
                if not op.finished:
                    raise OperationTimeout(
                        f"{op.kind} operation {op.id} still {op.status.value} after {timeout} s"
                        f" (step {op.current_step or '-'})",
                        operation_id=op.id,
                    ) from None
            op = self.get()
        return cast(T, self._outcome(op))

    def _outcome(self, op: Operation) -> Any:
        raise_unless_succeeded(op)
        resolve = RESULTS.get(op.kind)
        return resolve(self._conn, op) if resolve is not None else None

    def cancel(self) -> Operation:
        request = operations_pb2.CancelOperationRequest(operation_id=self.id)
        return operation_from_pb(self._conn.call(self._stub.CancelOperation, request).operation)
