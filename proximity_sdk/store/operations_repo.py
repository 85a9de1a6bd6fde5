"""Operations and their event logs: the persisted half of the operation engine."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Float, String, Table, Text, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from proximity_sdk.errors import BusyError, NotFoundError, ValidationError
from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus
from proximity_sdk.store._common import StoreContext
from proximity_sdk.store._keyset import Cursor, after_cursor
from proximity_sdk.store.base import UTCDateTime, utcnow
from proximity_sdk.store.tables import OperationEventRow, OperationRow

__all__ = ["ACTIVE", "NewEvent", "OperationsRepository"]

ACTIVE = (OperationStatus.PENDING, OperationStatus.RUNNING)

# ids per IN (...) of one statement: well under every driver's limit on parameters
_IN_BATCH = 500


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append; ``at`` is when it happened (None: when it is written). The writes that
    take a sequence of them append them in order, in the transaction of that write."""

    message: str
    step: str | None
    level: str = "info"
    progress: float | None = None
    at: datetime | None = None


def _operation(row: OperationRow) -> Operation:
    return Operation(
        id=row.id,
        kind=row.kind,
        status=row.status,
        app_id=row.app_id,
        host_id=row.host_id,
        vmid=row.vmid,
        owner_id=row.owner_id,
        steps=tuple(row.steps or ()),
        current_step=row.current_step,
        error=row.error,
        result=dict(row.result or {}),
        deadline=row.deadline,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested=row.cancel_requested,
    )


def _event(row: OperationEventRow) -> OperationEvent:
    return OperationEvent(
        operation_id=row.operation_id,
        seq=row.seq,
        time=row.time,
        step=row.step,
        level=row.level,
        message=row.message,
        progress=row.progress,
    )


def _insert_event(
    s: Session,
    op_id: str,
    message: str,
    *,
    step: str | None,
    level: str,
    progress: float | None,
    at: datetime | None = None,
) -> OperationEvent:
    # Appenders of one operation take turns: on PostgreSQL they lock the operation's row first, on
    # SQLite the transaction holds the write lock from its BEGIN IMMEDIATE. Then one INSERT ... SELECT
    # takes max(seq) + 1; plain Core statements, because this runs for every event of every operation.
    if s.get_bind().dialect.name != "sqlite":
        locked = s.execute(_LOCK_OPERATION, {"op_id": op_id}).scalar()
        if locked is None:
            raise NotFoundError(f"no operation {op_id!r}")
    when = at or utcnow()
    step = step or "queued"  # every event names a step; before the first one, the operation is queued
    seq = (
        s.connection()
        .execute(
            _INSERT_EVENT,
            {"op_id": op_id, "time": when, "step": step, "level": level, "message": message, "progress": progress},
        )
        .scalar()
    )
    if seq is None:
        raise NotFoundError(f"no operation {op_id!r}")
    return OperationEvent(
        operation_id=op_id, seq=seq, time=when, step=step, level=level, message=message, progress=progress
    )


def _next_seq_of(c: Connection, op_id: str) -> int | None:
    """The operation's next event seq, its row locked first on PostgreSQL (None: no operation).
    Two statements there: a statement that waited for the lock still reads with the snapshot it
    began with, which misses the events the lock's holder committed meanwhile."""
    if c.dialect.name != "sqlite" and c.execute(_LOCK_OPERATION, {"op_id": op_id}).scalar() is None:
        return None
    seq = c.execute(_NEXT_SEQ, {"op_id": op_id}).scalar()
    return None if seq is None else int(seq)


def _active_for(s: Session, *, app_id: str | None, host_id: str | None, vmid: int | None) -> Operation | None:
    clauses = []
    if app_id is not None:
        clauses.append(OperationRow.app_id == app_id)
    if host_id is not None and vmid is not None:
        clauses.append(and_(OperationRow.host_id == host_id, OperationRow.vmid == vmid))
    if not clauses:
        return None
    row = s.execute(
        select(OperationRow).where(OperationRow.status.in_(ACTIVE), or_(*clauses)).limit(1)
    ).scalar_one_or_none()
    return _operation(row) if row else None


def _insert_events(
    s: Session, op_id: str, events: Sequence[NewEvent], *, first_seq: int | None = None
) -> builtins.list[OperationEvent]:
    """Append ``events`` in order. One event: one INSERT ... SELECT (``_insert_event``). Several:
    the operation's next seq in one read (taking its row's lock on PostgreSQL, as one event does),
    then one multi-row INSERT. ``first_seq``: that next seq, read already in this transaction
    under the same lock (``begin_step`` reads it with the runner's check)."""
    if not events:
        return []
    if first_seq is None and len(events) == 1:
        e = events[0]
        return [_insert_event(s, op_id, e.message, step=e.step, level=e.level, progress=e.progress, at=e.at)]
    c = s.connection()
    if first_seq is None:
        first_seq = _next_seq_of(c, op_id)
        if first_seq is None:
            raise NotFoundError(f"no operation {op_id!r}")
    now = utcnow()
    written = [
        OperationEvent(
            operation_id=op_id,
            seq=first_seq + i,
            time=e.at or now,
            step=e.step or "queued",  # as _insert_event: before the first step, the operation is queued
            level=e.level,
            message=e.message,
            progress=e.progress,
        )
        for i, e in enumerate(events)
    ]
    c.execute(
        _INSERT_EVENT_ROWS,
        [
            {
                "operation_id": op_id,
                "seq": w.seq,
                "time": w.time,
                "step": w.step,
                "level": w.level,
                "message": w.message,
                "progress": w.progress,
            }
            for w in written
        ],
    )
    return written


_OPERATIONS = cast(Table, OperationRow.__table__)
_EVENTS = cast(Table, OperationEventRow.__table__)
_next_seq = (
    select(func.coalesce(func.max(_EVENTS.c.seq), 0) + 1)
    .where(_EVENTS.c.operation_id == bindparam("op_id"))
    .scalar_subquery()
)
# the statements a runner makes at every step, built once (building one costs more than running it)
_CONTROL = select(_OPERATIONS.c.cancel_requested, _OPERATIONS.c.runner_id, _OPERATIONS.c.status).where(
    _OPERATIONS.c.id == bindparam("op_id")
)
_CONTROL_LOCKED = _CONTROL.with_for_update()
# on SQLite (whose transaction holds the write lock from BEGIN) a step boundary's check also
# reads the next event seq, in one statement; its events then go in one INSERT
_BOUNDARY = select(
    _OPERATIONS.c.cancel_requested, _OPERATIONS.c.runner_id, _OPERATIONS.c.status, _next_seq.label("next_seq")
).where(_OPERATIONS.c.id == bindparam("op_id"))
# no row when the operation does not exist
_NEXT_SEQ = select(_next_seq).where(_OPERATIONS.c.id == bindparam("op_id"))
_INSERT_EVENT_ROWS = insert(_EVENTS)
_SET_STEP = (
    update(_OPERATIONS)
    .where(_OPERATIONS.c.id == bindparam("op_id"))
    .values(
        current_step=bindparam("step", type_=_OPERATIONS.c.current_step.type),
        updated_at=bindparam("now", type_=_OPERATIONS.c.updated_at.type),
    )
)


def _set_owned(column: str) -> Any:
    return (
        update(_OPERATIONS)
        .where(_OPERATIONS.c.id == bindparam("op_id"), _OPERATIONS.c.runner_id == bindparam("runner"))
        .values(
            {
                column: bindparam("value", type_=_OPERATIONS.c[column].type),
                "updated_at": bindparam("now", type_=_OPERATIONS.c.updated_at.type),
            }
        )
    )


_SET_OWNED = {"side_effects": _set_owned("side_effects"), "params": _set_owned("params")}

_LOCK_OPERATION = select(OperationRow.id).where(OperationRow.id == bindparam("op_id")).with_for_update()

# the event only goes in when the operation exists (the SELECT from operations yields no row otherwise)
_INSERT_EVENT = (
    insert(_EVENTS)
    .from_select(
        ["operation_id", "seq", "time", "step", "level", "message", "progress"],
        select(
            OperationRow.id,
            _next_seq,
            bindparam("time", type_=UTCDateTime()),
            bindparam("step", type_=String()),
            bindparam("level", type_=String()),
            bindparam("message", type_=Text()),
            bindparam("progress", type_=Float()),
        ).where(OperationRow.id == bindparam("op_id")),
    )
    .returning(_EVENTS.c.seq)
)


class OperationsRepository:
    """Rows of ``operations`` and ``operation_events``. The engine is the only writer of a running
    operation: it holds the lease (``runner_id`` + ``lease_expires_at``)."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    # creation and lookup ------------------------------------------------------------------------

    def create(
        self,
        kind: str,
        *,
        steps: Sequence[str],
        app_id: str | None = None,
        host_id: str | None = None,
        vmid: int | None = None,
        owner_id: str | None = None,
        params: dict[str, Any] | None = None,
        deadline: datetime | None = None,
        event: str | None = None,
    ) -> Operation:
        """Record a pending operation, and ``event`` (step "queued") as the first of its log in
        the same transaction. Refused with ``BusyError`` while another unfinished operation
        holds the same app or VMID (a partial unique index decides, so two processes cannot both win)."""
        try:
            with self._ctx.session(immediate=event is not None) as s:
                row = OperationRow(
                    kind=kind,
                    status=OperationStatus.PENDING,
                    steps=list(steps),
                    app_id=app_id,
                    host_id=host_id,
                    vmid=vmid,
                    owner_id=owner_id,
                    params=dict(params or {}),
                    deadline=deadline,
                    result={},
                    side_effects=[],
                )
                s.add(row)
                s.flush()
                if event is not None:
                    _insert_event(s, row.id, event, step="queued", level="info", progress=None)
                return _operation(row)
        except IntegrityError:
            # read apart: inside a unit of work the refused insert left its transaction unusable;
            # the refusal matters more than its detail (a store of one shared connection, as an
            # in-memory SQLite, has no transaction apart to read in)
            try:
                with self._ctx.apart() as s:
                    other = _active_for(s, app_id=app_id, host_id=host_id, vmid=vmid)
            except SQLAlchemyError:
                other = None
            what = f"app {app_id}" if app_id else f"VMID {vmid}"
            detail = f": {other.kind} operation {other.id} is {other.status.value}" if other else ""
            raise BusyError(f"another operation is running on {what}{detail}") from None

    def active_for(
        self, *, app_id: str | None = None, host_id: str | None = None, vmid: int | None = None
    ) -> Operation | None:
        """The unfinished operation on this app (or this VMID of this host), if any."""
        with self._ctx.session() as s:
            return _active_for(s, app_id=app_id, host_id=host_id, vmid=vmid)

    def get(self, op_id: str) -> Operation:
        with self._ctx.session() as s:
            row = s.get(OperationRow, op_id)
            if row is None:
                raise NotFoundError(f"no operation {op_id!r}", hint="List operations with px.operations.list()")
            return _operation(row)

    def load(self, op_id: str) -> tuple[Operation, dict[str, Any], builtins.list[dict[str, Any]]]:
        """The operation, its params and its side-effect journal in one read (what a runner starts from)."""
        with self._ctx.session() as s:
            row = s.get(OperationRow, op_id)
            if row is None:
                raise NotFoundError(f"no operation {op_id!r}")
            return _operation(row), dict(row.params or {}), [dict(e) for e in row.side_effects or []]

    def params(self, op_id: str) -> dict[str, Any]:
        with self._ctx.session() as s:
            row = s.get(OperationRow, op_id)
            if row is None:
                raise NotFoundError(f"no operation {op_id!r}")
            return dict(row.params or {})

    def list(
        self,
        *,
        app_id: str | None = None,
        owner_id: str | None = None,
        status: OperationStatus | None = None,
        limit: int = 100,
        offset: int = 0,
        after: Cursor | None = None,
    ) -> builtins.list[Operation]:
        """Newest first. ``after`` (the previous page's last ``(created_at, id)``) seeks instead of ``offset``."""
        if after is not None and offset:
            raise ValidationError("give offset or after, not both", field="after")
        query = select(OperationRow).order_by(OperationRow.created_at.desc(), OperationRow.id)
        query = after_cursor(
            query, OperationRow.created_at, OperationRow.id, after, newest_first=True, id_descending=False
        )
        if app_id is not None:
            query = query.where(OperationRow.app_id == app_id)
        if owner_id is not None:
            query = query.where(OperationRow.owner_id == owner_id)
        if status is not None:
            query = query.where(OperationRow.status == status)
        with self._ctx.session() as s:
            return [_operation(r) for r in s.execute(query.limit(limit).offset(offset)).scalars()]

    # leases ---------------------------------------------------------------------------------------

    def claim(self, op_id: str, runner_id: str, lease: timedelta) -> bool:
        """Take the operation to run it: a pending one, or a running one whose lease expired.
        Compare-and-set in one UPDATE, so exactly one claimant wins."""
        now = utcnow()
        with self._ctx.session() as s:
            result = s.execute(
                update(OperationRow)
                .where(
                    OperationRow.id == op_id,
                    or_(
                        OperationRow.status == OperationStatus.PENDING,
                        and_(OperationRow.status == OperationStatus.RUNNING, OperationRow.lease_expires_at < now),
                    ),
                )
                .values(
                    status=OperationStatus.RUNNING,
                    runner_id=runner_id,
                    lease_expires_at=now + lease,
                    started_at=func.coalesce(OperationRow.started_at, now),
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    def heartbeat(self, runner_id: str, op_ids: Sequence[str], lease: timedelta) -> set[str]:
        """Extend the lease of our running operations; returns those we no longer own."""
        if not op_ids:
            return set()
        now = utcnow()
        with self._ctx.session() as s:
            s.execute(
                update(OperationRow)
                .where(
                    OperationRow.id.in_(op_ids),
                    OperationRow.runner_id == runner_id,
                    OperationRow.status == OperationStatus.RUNNING,
                )
                .values(lease_expires_at=now + lease)
                .execution_options(synchronize_session=False)
            )
            owned = set(
                s.execute(
                    select(OperationRow.id).where(
                        OperationRow.id.in_(op_ids),
                        OperationRow.runner_id == runner_id,
                        OperationRow.status == OperationStatus.RUNNING,
                    )
                ).scalars()
            )
        return set(op_ids) - owned

    def orphaned(self, *, pending_older_than: timedelta, excluding: Collection[str] = ()) -> builtins.list[Operation]:
        """Running operations whose lease expired (their runner died), and pending ones nobody
        started; none of ``excluding`` (what the caller runs or has queued already).

        The ids come first and only the others' rows are read: a backlog waiting for workers is
        pending and older than a lease, and a process recovering every few seconds read every row
        of it (params, result, side effects) only to skip those it had queued itself."""
        now = utcnow()
        condition = or_(
            and_(OperationRow.status == OperationStatus.RUNNING, OperationRow.lease_expires_at < now),
            and_(OperationRow.status == OperationStatus.PENDING, OperationRow.created_at < now - pending_older_than),
        )
        with self._ctx.session() as s:
            ids = s.execute(select(OperationRow.id).where(condition).order_by(OperationRow.created_at)).scalars()
            wanted = [i for i in ids if i not in excluding]
            if not wanted:
                return []
            found: builtins.list[Operation] = []
            for start in range(0, len(wanted), _IN_BATCH):  # the condition again: rows may have moved on
                batch = wanted[start : start + _IN_BATCH]
                rows = s.execute(select(OperationRow).where(condition, OperationRow.id.in_(batch))).scalars()
                found += [_operation(r) for r in rows]
            return sorted(found, key=lambda op: op.created_at)

    def past_deadline(self) -> builtins.list[Operation]:
        now = utcnow()
        with self._ctx.session() as s:
            rows = s.execute(
                select(OperationRow).where(
                    OperationRow.status.in_(ACTIVE),
                    OperationRow.deadline.is_not(None),
                    OperationRow.deadline < now,
                )
            ).scalars()
            return [_operation(r) for r in rows]

    # progress ---------------------------------------------------------------------------------------

    def _owned(self, op_id: str, runner_id: str) -> Any:
        return and_(OperationRow.id == op_id, OperationRow.runner_id == runner_id)

    def set_step(self, op_id: str, runner_id: str, step: str | None) -> None:
        with self._ctx.session() as s:
            s.execute(
                update(OperationRow)
                .where(self._owned(op_id, runner_id))
                .values(current_step=step, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def side_effects(self, op_id: str) -> builtins.list[dict[str, Any]]:
        with self._ctx.session() as s:
            row = s.get(OperationRow, op_id)
            if row is None:
                raise NotFoundError(f"no operation {op_id!r}")
            return [dict(e) for e in row.side_effects or []]

    def set_side_effects(
        self, op_id: str, runner_id: str, effects: Sequence[dict[str, Any]], *, events: Sequence[NewEvent] = ()
    ) -> None:
        """Replace the side-effect journal (only the lease holder writes it), and append ``events``
        in the same transaction."""
        self._update_owned(op_id, runner_id, "side_effects", [dict(e) for e in effects], events)

    def update_params(
        self, op_id: str, runner_id: str, params: dict[str, Any], *, events: Sequence[NewEvent] = ()
    ) -> None:
        """Replace the params (only the lease holder writes them), and append ``events`` in the same
        transaction."""
        self._update_owned(op_id, runner_id, "params", dict(params), events)

    def _update_owned(self, op_id: str, runner_id: str, column: str, value: Any, events: Sequence[NewEvent]) -> None:
        # with events, the transaction takes the write lock at BEGIN (see append_event)
        with self._ctx.session(immediate=bool(events)) as s:
            result = s.connection().execute(
                _SET_OWNED[column], {"op_id": op_id, "runner": runner_id, "value": value, "now": utcnow()}
            )
            owned = bool(getattr(result, "rowcount", 0))
            if events and owned:  # a runner that lost the lease writes nothing
                _insert_events(s, op_id, events)

    def request_cancel(self, op_id: str) -> Operation:
        """Ask an unfinished operation to stop; the request and its event are one transaction, so
        a watcher sees the event whenever the request landed before the operation ended."""
        with self._ctx.session(immediate=True) as s:
            row = s.get(OperationRow, op_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no operation {op_id!r}")
            if row.status in ACTIVE and not row.cancel_requested:
                row.cancel_requested = True
                _insert_event(s, op_id, "cancel requested", step=row.current_step, level="warning", progress=None)
            s.flush()
            return _operation(row)

    def cancel_requested(self, op_id: str) -> bool:
        with self._ctx.session() as s:
            return bool(s.execute(select(OperationRow.cancel_requested).where(OperationRow.id == op_id)).scalar())

    def begin_step(
        self,
        op_id: str,
        runner_id: str,
        step: str,
        message: str,
        *,
        progress: float | None,
        ignore_cancel: bool = False,
        before: Sequence[NewEvent] = (),
    ) -> tuple[bool, bool]:
        """What a runner does at each step boundary, in one transaction: read ``(cancel requested,
        still ours)``; while ours, append ``before`` (events not written yet, e.g. the last step's
        "done"); when it may go on, record the step and its "started" event."""
        with self._ctx.session(immediate=True) as s:
            c = s.connection()
            sqlite = c.dialect.name == "sqlite"
            row = c.execute(_BOUNDARY if sqlite else _CONTROL_LOCKED, {"op_id": op_id}).one_or_none()
            if row is None:
                return False, False
            cancel = bool(row.cancel_requested)
            ours = row.runner_id == runner_id and row.status == OperationStatus.RUNNING
            if not ours:
                return cancel, ours
            # PostgreSQL: read after the lock was granted (see _next_seq_of)
            next_seq = int(row.next_seq) if sqlite else int(c.execute(_NEXT_SEQ, {"op_id": op_id}).scalar_one())
            events = list(before)
            if ignore_cancel or not cancel:
                c.execute(_SET_STEP, {"op_id": op_id, "step": step, "now": utcnow()})
                events.append(NewEvent(message, step=step, progress=progress))
            _insert_events(s, op_id, events, first_seq=next_seq)
            return cancel, ours

    def control(self, op_id: str, runner_id: str) -> tuple[bool, bool]:
        """``(cancel requested, still ours)`` in one read: what a runner checks between steps."""
        with self._ctx.session() as s:
            row = s.connection().execute(_CONTROL, {"op_id": op_id}).one_or_none()
        if row is None:
            return False, False
        return bool(row.cancel_requested), row.runner_id == runner_id and row.status == OperationStatus.RUNNING

    def finish(
        self,
        op_id: str,
        runner_id: str | None,
        status: OperationStatus,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        message: str | None = None,
        level: str = "info",
        progress: float | None = None,
        before: Sequence[NewEvent] = (),
    ) -> Operation:
        """End the operation (only its lease holder may; ``runner_id=None`` for one never started).

        ``message`` is the last event, written in the same transaction after ``before`` (events not
        written yet): a watcher that sees the operation finished has every event of it to read
        (``OperationHandle.events`` relies on it). Raises ``BusyError`` when another runner holds
        the operation now."""
        for _attempt in range(5):
            try:
                return self._finish(
                    op_id,
                    runner_id,
                    status,
                    error=error,
                    result=result,
                    message=message,
                    level=level,
                    progress=progress,
                    before=before,
                )
            except IntegrityError:  # an event seq raced (PostgreSQL); the whole finish is retried
                continue
        raise BusyError(f"could not finish operation {op_id}")

    def _finish(
        self,
        op_id: str,
        runner_id: str | None,
        status: OperationStatus,
        *,
        error: str | None,
        result: dict[str, Any] | None,
        message: str | None,
        level: str,
        progress: float | None,
        before: Sequence[NewEvent],
    ) -> Operation:
        with self._ctx.session(immediate=True) as s:
            row = s.get(OperationRow, op_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no operation {op_id!r}")
            now = utcnow()  # once the row is ours: no event of this operation can come later
            if runner_id is not None and row.runner_id != runner_id:
                raise BusyError(f"operation {op_id} was taken over by {row.runner_id}")
            if row.status not in ACTIVE:
                raise BusyError(f"operation {op_id} has already ended ({row.status.value})")
            step = row.current_step if status != OperationStatus.SUCCEEDED else None
            events = list(before)
            if message is not None:
                # every event names a step: "done" for the success event (the record's step is then None)
                last = step or ("done" if status == OperationStatus.SUCCEEDED else None)
                events.append(NewEvent(message, step=last, level=level, progress=progress, at=now))
            _insert_events(s, op_id, events)
            row.status = status
            row.error = error
            row.result = dict(result or {})
            row.finished_at = now
            row.updated_at = now
            row.lease_expires_at = None
            row.current_step = step
            s.flush()
            return _operation(row)

    # events -------------------------------------------------------------------------------------------

    def append_event(
        self, op_id: str, message: str, *, step: str | None = None, level: str = "info", progress: float | None = None
    ) -> OperationEvent:
        """Append to the log; ``seq`` is the next number for this operation.

        Writers of one operation serialize on its row (PostgreSQL ``FOR UPDATE``; on SQLite the
        transaction takes the write lock at BEGIN, because a deferred one that read first fails
        with "database is locked" when another connection wrote meanwhile)."""
        return self._append(op_id, [NewEvent(message, step=step, level=level, progress=progress)])[0]

    def append_events(self, op_id: str, events: Sequence[NewEvent]) -> builtins.list[OperationEvent]:
        """Append several events in order, in one transaction (see ``append_event``)."""
        return self._append(op_id, events)

    def _append(self, op_id: str, events: Sequence[NewEvent]) -> builtins.list[OperationEvent]:
        for _attempt in range(5):
            try:
                with self._ctx.session(immediate=True) as s:
                    return _insert_events(s, op_id, events)
            except IntegrityError:
                continue
        raise BusyError(f"could not append to the event log of operation {op_id}")

    def events(self, op_id: str, *, after: int = 0, limit: int = 1000) -> builtins.list[OperationEvent]:
        with self._ctx.session() as s:
            rows = s.execute(
                select(OperationEventRow)
                .where(OperationEventRow.operation_id == op_id, OperationEventRow.seq > after)
                .order_by(OperationEventRow.seq)
                .limit(limit)
            ).scalars()
            return [_event(r) for r in rows]
