"""What a running operation sees: its params, steps, event log, side-effect journal, cancellation."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

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
    """Handed to ``OperationKind.run``/``rollback``. Thread-confined to the operation's worker.

    Every write of the operation is one transaction. A step's "done" event is not written alone:
    it goes with the operation's next write (the next step's start, an event, a journal entry,
    params, or the finish), in order and with the time the step ended."""

    def __init__(
        self,
        store: Store,
        operation: Operation,
        runner_id: str,
        *,
        params: dict[str, Any],
        effects: list[dict[str, Any]],
        notify: Callable[[str], None],
        node_slot: Callable[[str, str], threading.Semaphore],
        lost: threading.Event,
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
        self._node_slot = node_slot
        self._lost = lost
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
        self._append([NewEvent(message, step=self.current_step, level=level, progress=progress)])

    def last_event(self, message: str, *, level: str = "info") -> None:
        """A step's closing event, said right before the step ends: written with the step's "done"
        (the operation's next write, which the step's end makes at once), with the time it happened,
        instead of in a transaction of its own."""
        self._unwritten.append(NewEvent(message, step=self.current_step, level=level, at=utcnow()))

    def task_log(self, lines: list[str]) -> None:
        """Proxmox task log lines: kept for the failure report and streamed as debug events."""
        self.log_tail.extend(lines)
        del self.log_tail[:-20]
        if lines:  # one write for the whole log
            self._append([NewEvent(line, step=self.current_step, level="debug") for line in lines])

    def _append(self, events: list[NewEvent]) -> None:
        self.store.operations.append_events(self.id, [*self.take_unwritten(), *events])
        self._changed()

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
        self._unwritten.append(NewEvent(f"{name}: done", step=name, progress=done, at=utcnow()))

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
        self.store.operations.update_params(self.id, self.runner_id, self.params, events=self.take_unwritten())

    def record(self, kind: str, **data: Any) -> None:
        """Journal an external side effect the moment it happened (a VMID taken, a container created)."""
        self._effects.append({"kind": kind, **data})
        self.store.operations.set_side_effects(self.id, self.runner_id, self._effects, events=self.take_unwritten())

    def forget(self, kind: str, **match: Any) -> None:
        """Drop journal entries once their effect was undone or handed over to a record."""
        self._effects = [
            e for e in self._effects if not (e.get("kind") == kind and all(e.get(k) == v for k, v in match.items()))
        ]
        self.store.operations.set_side_effects(self.id, self.runner_id, self._effects, events=self.take_unwritten())

    def forget_kinds(self, *kinds: str) -> None:
        """Drop every journal entry of these kinds in one write (effects handed over to a record)."""
        self._effects = [e for e in self._effects if e.get("kind") not in kinds]
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
        slot = self._node_slot(host_id, node)
        if not slot.acquire(blocking=False):
            self.event(f"waiting for a free slot on node {node}")
            while not slot.acquire(timeout=_SLOT_POLL):
                self.checkpoint()
        try:
            yield
        finally:
            slot.release()


def emitter(ctx: OperationContext) -> Emit:
    """The operation's event log as the ``emit`` callback the Proxmox building blocks take."""

    def emit(message: str, /, level: EventLevel = "info") -> None:
        ctx.event(message, level=level)

    return emit
