"""What a running operation sees: its params, steps, event log, side-effect journal, cancellation."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from proximity_sdk.engine._deferred import DeferredWriter
from proximity_sdk.engine._slots import NodeSlots
from proximity_sdk.errors import OperationCancelled
from proximity_sdk.proxmox.progress import Emit, EventLevel
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.operations_repo import NewEvent

if TYPE_CHECKING:
    from proximity_sdk.models.operation import Operation
    from proximity_sdk.models.settings import Settings
    from proximity_sdk.store import Store

__all__ = ["LeaseLost", "OperationContext", "emitter"]


# how often a wait for a node slot looks for a cancel request or a takeover
_SLOT_POLL = 0.5


class LeaseLost(Exception):
    """Another process took the operation over: stop touching it."""


class OperationContext:
    """Handed to ``OperationKind.run``/``rollback``. Thread-confined to the operation's worker
    (the engine's event thread only writes the events that wait, under ``writing()``).

    Every write of the operation is one transaction. An event is not written alone: it goes with
    the operation's next write (the next step's start, a journal entry, params, or the finish), in
    order and with the time it happened; when no write comes within the engine's event delay (0.1 s),
    the engine's event thread writes it (``_deferred.DeferredWriter``; without one, as the janitor's
    cleanup contexts, an event is written at once). Inside ``unit()`` events join the unit's
    transaction. Every write holds ``writing()``, so the event thread never writes
    in between and the log keeps the order the operation said things in."""

    def __init__(
        self,
        store: Store,
        operation: Operation,
        runner_id: str,
        *,
        params: dict[str, Any],
        effects: list[dict[str, Any]],
        notify: Callable[[str], None],
        slots: NodeSlots,
        lost: threading.Event,
        writer: DeferredWriter | None = None,
    ) -> None:
        self.store = store
        self.operation = operation
        self.id = operation.id
        self.runner_id = runner_id
        self.params: dict[str, Any] = params
        self._effects: list[dict[str, Any]] = effects
        self._unwritten: list[NewEvent] = []
        self._at_success: list[Callable[[], None]] = []
        self._settings: Settings | None = None
        self._notify = notify
        self._in_unit = False
        self._notify_due = False
        self._slots = slots
        self._heading: dict[str, Callable[[], None]] = {}  # host id -> release of the node headed to
        self._lost = lost
        self._writer = writer
        self._write_lock = threading.RLock()
        self._flush_due = False  # the writer has this context in its queue
        self._closed = False
        self.current_step: str | None = operation.current_step
        self.log_tail: list[str] = []
        #: set by the engine while ``OperationKind.rollback`` runs
        self.rolling_back = False

    @property
    def settings(self) -> Settings:
        """The settings, read once per operation (on first use)."""
        if self._settings is None:
            self._settings = self.store.settings.get()
        return self._settings

    # events -------------------------------------------------------------------------------------------

    def event(self, message: str, *, level: str = "info", progress: float | None = None) -> None:
        """Log an event: written with the operation's next write, or within the event delay."""
        self._say([NewEvent(message, step=self.current_step, level=level, progress=progress, at=utcnow())])

    def last_event(self, message: str, *, level: str = "info") -> None:
        """A step's closing event, said right before the step ends (the step's "done" follows it)."""
        self._defer([NewEvent(message, step=self.current_step, level=level, at=utcnow())])

    def task_log(self, lines: list[str]) -> None:
        """Proxmox task log lines: kept for the failure report and streamed as debug events."""
        self.log_tail.extend(lines)
        del self.log_tail[:-20]
        if lines:
            at = utcnow()
            self._say([NewEvent(line, step=self.current_step, level="debug", at=at) for line in lines])

    def _say(self, events: list[NewEvent]) -> None:
        with self._write_lock:
            if self._in_unit or self._writer is None:  # in a unit, the events join its transaction
                self.store.operations.append_events(self.id, [*self.take_unwritten(), *events])
                self._changed()
            else:
                self._defer(events)

    def _defer(self, events: list[NewEvent]) -> None:
        with self._write_lock:
            self._unwritten.extend(events)
            if not self._flush_due and not self._closed and self._writer is not None:
                self._flush_due = True
                self._writer.due(self)

    def flush_deferred(self) -> bool:
        """Write the events that wait (the engine's event thread calls it). False when the
        operation is writing right now: its write carries them, or the thread looks again."""
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            self._flush_due = False
            if self._closed or self._lost.is_set() or not self._unwritten:
                return True
            events = self.take_unwritten()
            try:
                self.store.operations.append_events(self.id, events)
            except Exception:
                # kept for the operation's next write; the thread tries again after the delay
                self._unwritten[:0] = events
                if self._writer is not None:
                    self._flush_due = True
                    self._writer.due(self)
                return True
            self._notify(self.id)
            return True
        finally:
            self._write_lock.release()

    def writing(self) -> threading.RLock:
        """Held around every write of the operation (``with ctx.writing():``), so that the events
        it takes (``take_unwritten``) are written before any the event thread could write after."""
        return self._write_lock

    def close(self) -> None:
        """The operation's run is over here: events still waiting are dropped (a run that ends
        normally wrote them with its finish; one that lost its lease has no say in the log)."""
        with self._write_lock:
            self._closed = True
            self._unwritten.clear()
        for release in self._heading.values():
            release()
        self._heading.clear()

    def _changed(self) -> None:
        # inside a unit, watchers are woken once it committed: before, they would read nothing new
        if self._in_unit:
            self._notify_due = True
        else:
            self._notify(self.id)

    @contextlib.contextmanager
    def unit(self) -> Iterator[None]:
        """The operation's writes inside the block (events, params, journal) and the kind's own
        store calls (app record, reservations) in one transaction, committed when the block ends.
        Only store calls go inside: a journal entry must be committed before the Proxmox request
        that makes its effect, so that request comes after the block."""
        if self._in_unit:
            yield
            return
        with self._write_lock:
            self._in_unit, self._notify_due = True, False
            try:
                with self.store.unit():
                    yield
            finally:
                self._in_unit = False
        if self._notify_due:
            self._notify(self.id)

    def take_unwritten(self) -> list[NewEvent]:
        """The events not written yet (a step's "done"), oldest first; the caller writes them
        before its own, in its transaction."""
        unwritten, self._unwritten = self._unwritten, []
        return unwritten

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Run one named step: checks for cancellation and lease loss, records the step, logs its start."""
        if self._lost.is_set():
            raise LeaseLost(self.id)
        steps = self.operation.steps
        progress = steps.index(name) / len(steps) if name in steps else None
        # the checkpoint, the step and its first event in one transaction (this runs at every step)
        with self._write_lock:
            cancel, ours = self.store.operations.begin_step(
                self.id,
                self.runner_id,
                name,
                f"{name}: started",
                progress=progress,
                ignore_cancel=self.rolling_back,
                before=self.take_unwritten(),
            )
        if not ours:
            self._lost.set()
            raise LeaseLost(self.id)
        if cancel and not self.rolling_back:
            raise OperationCancelled("cancelled on request", operation_id=self.id)
        self.current_step = name
        self._notify(self.id)
        yield
        done = (steps.index(name) + 1) / len(steps) if name in steps else None
        # written with the next write: a step boundary costs one transaction, not two
        self._defer([NewEvent(f"{name}: done", step=name, progress=done, at=utcnow())])

    def checkpoint(self) -> None:
        """Raise ``LeaseLost`` if another runner took the operation over (stop touching it), or
        ``OperationCancelled`` if a cancel was requested. During a rollback only the first counts:
        a rollback is never interrupted by the cancel that caused it."""
        if self._lost.is_set():
            raise LeaseLost(self.id)
        cancel, ours = self.store.operations.control(self.id, self.runner_id)
        if not ours:
            self._lost.set()
            raise LeaseLost(self.id)
        if cancel and not self.rolling_back:
            raise OperationCancelled("cancelled on request", operation_id=self.id)

    # params and the side-effect journal -------------------------------------------------------------

    def save_params(self, **values: Any) -> None:
        """Remember decisions (chosen node, VMID, ...) so a takeover sees them."""
        self.params.update(values)
        with self._write_lock:
            self.store.operations.update_params(self.id, self.runner_id, self.params, events=self.take_unwritten())

    def record(self, kind: str, **data: Any) -> None:
        """Journal an external side effect the moment it happened (a VMID taken, a container created)."""
        self._effects.append({"kind": kind, **data})
        self._write_effects()

    def forget(self, kind: str, **match: Any) -> None:
        """Drop journal entries once their effect was undone or handed over to a record."""
        self._effects = [
            e for e in self._effects if not (e.get("kind") == kind and all(e.get(k) == v for k, v in match.items()))
        ]
        self._write_effects()

    def forget_kinds(self, *kinds: str) -> None:
        """Drop every journal entry of these kinds in one write (effects handed over to a record)."""
        self._effects = [e for e in self._effects if e.get("kind") not in kinds]
        self._write_effects()

    def _write_effects(self) -> None:
        with self._write_lock:
            self.store.operations.set_side_effects(self.id, self.runner_id, self._effects, events=self.take_unwritten())

    def at_success(self, write: Callable[[], None]) -> None:
        """A store write that is part of the operation's success (e.g. the app's record says
        ``running``): it runs in the transaction that finishes the operation successfully, so a
        watcher sees both or neither; dropped when the operation fails instead."""
        self._at_success.append(write)

    def take_success_writes(self) -> list[Callable[[], None]]:
        writes, self._at_success = self._at_success, []
        return writes

    @property
    def effects(self) -> list[dict[str, Any]]:
        return list(self._effects)

    @contextlib.contextmanager
    def node_slot(self, host_id: str, node: str) -> Iterator[None]:
        """Hold one of the node's mutation slots (Proxmox locks punish unbounded parallelism).
        While it waits for a slot, a cancel or a takeover still stops the operation."""
        slot = self._slots.slot(host_id, node)
        if not slot.acquire(blocking=False):
            self.event(f"waiting for a free slot on node {node}")
            while not slot.acquire(timeout=_SLOT_POLL):
                self.checkpoint()
        try:
            yield
        finally:
            slot.release()

    def heading_to(self, host_id: str, node: str) -> None:
        """This operation will mutate ``node`` (it was placed there): counted by
        :meth:`crowded_nodes` until the run ends here, or until it heads elsewhere on that host."""
        previous = self._heading.pop(host_id, None)
        if previous is not None:
            previous()
        self._heading[host_id] = self._slots.head(host_id, node)

    def crowded_nodes(self, host_id: str) -> frozenset[str]:
        """The host's nodes where as many operations of this process as it has slots there are
        headed already (placement prefers the others: one more would wait for a slot)."""
        return self._slots.crowded(host_id)


def emitter(ctx: OperationContext) -> Emit:
    """The operation's event log as the ``emit`` callback the Proxmox building blocks take."""

    def emit(message: str, /, level: EventLevel = "info") -> None:
        ctx.event(message, level=level)

    return emit
