"""The operation engine: persists, runs, heartbeats, cancels and recovers operations.

Every long action goes through ``submit``: the row is written (pending) before anything touches
Proxmox; a worker thread claims it (lease), runs the kind's steps, journals side effects as they
happen, and finishes it. A heartbeat keeps the leases of running operations fresh; when a
process dies, its leases expire and ``recover`` (run on open, and by the janitor) claims the
orphans and lets their kind finish or roll them back.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from proximity_sdk.engine._deferred import DEFAULT_EVENT_DELAY, DeferredWriter
from proximity_sdk.engine._slots import NodeSlots
from proximity_sdk.engine.context import LeaseLost, OperationContext
from proximity_sdk.engine.handle import OperationHandle
from proximity_sdk.engine.kinds import OperationKind, RunnerLost
from proximity_sdk.errors import BusyError, NotFoundError, OperationCancelled, ProximityError, ValidationError
from proximity_sdk.models.operation import Operation, OperationStatus
from proximity_sdk.store.base import utcnow

if TYPE_CHECKING:
    from proximity_sdk.plugins.manager import PluginManager
    from proximity_sdk.store import Store

__all__ = ["OperationEngine"]

log = logging.getLogger(__name__)


def _runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _check_steps(steps: object, *, what: str) -> None:
    # progress is a step's index in this tuple: names must be unique strings
    if (
        not isinstance(steps, tuple)
        or not all(isinstance(s, str) and s for s in steps)
        or len(set(steps)) != len(steps)
    ):
        raise ValidationError(
            f"{what} must be a tuple of unique, non-empty step names, not {steps!r}", field=what.rsplit(".", 1)[-1]
        )


class OperationEngine:
    """Runs operations in a thread pool of this process, with leases in the database.

    ``lease_seconds``: how long a silent runner keeps its operations (default: settings);
    ``node_slots``: concurrent mutations per Proxmox node in this process; ``event_delay``: how
    long an event may wait for its operation's next write before it is written alone (seconds).
    """

    def __init__(
        self,
        store: Store,
        *,
        plugins: PluginManager | None = None,
        lease_seconds: float | None = None,
        max_workers: int = 16,
        node_slots: int = 4,
        event_delay: float = DEFAULT_EVENT_DELAY,
    ) -> None:
        if lease_seconds is not None and lease_seconds < 1:
            raise ValidationError("lease_seconds must be at least 1", field="lease_seconds")
        if node_slots < 1:
            raise ValidationError("node_slots must be at least 1", field="node_slots")
        if not 0 < event_delay <= 60:
            raise ValidationError("event_delay must be above 0 and at most 60 seconds", field="event_delay")
        self.store = store
        self.plugins = plugins
        self.runner_id = _runner_id()
        self._lease = timedelta(seconds=lease_seconds or store.settings.get().operation_lease_seconds)
        self._kinds: dict[str, OperationKind] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="proximity-op")
        self._running: dict[str, threading.Event] = {}
        self._futures: dict[str, Future[None]] = {}
        # the operations of _running this process has claimed (the others wait for a worker, pending)
        self._claimed: set[str] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        #: this process's mutation slots per node, and where its operations are headed
        self.node_slots = NodeSlots(node_slots)
        self._stop = threading.Event()
        # writes the events an operation said when no write of its own came soon enough
        self._events = DeferredWriter(delay=event_delay)
        self._heart = threading.Thread(target=self._heartbeat, name="proximity-heartbeat", daemon=True)
        self._heart.start()

    # registration and submission ---------------------------------------------------------------------

    def register(self, kind: OperationKind) -> None:
        """Make a kind runnable (and recoverable) by this engine, under ``kind.name``."""
        name = getattr(kind, "name", None)
        if not isinstance(name, str) or not name:
            raise ValidationError(
                f"{type(kind).__name__} has no name", field="name", hint="Set the class attribute name = '...'"
            )
        _check_steps(getattr(kind, "steps", None), what=f"{name}.steps")
        self._kinds[name] = kind

    def kind(self, name: str) -> OperationKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise ValidationError(f"unknown operation kind {name!r}") from None

    @property
    def lease(self) -> timedelta:
        return self._lease

    def submit(
        self,
        kind: str,
        *,
        app_id: str | None = None,
        host_id: str | None = None,
        vmid: int | None = None,
        owner_id: str | None = None,
        params: dict[str, Any] | None = None,
        steps: Sequence[str] | None = None,
    ) -> OperationHandle:
        """Record the operation (refused with BusyError while the app or VMID has another one),
        then start it in the background. Returns at once."""
        impl = self.kind(kind)
        if steps is not None:
            _check_steps(tuple(steps), what="steps")
        if self._stop.is_set():
            raise ValidationError("this operation engine is closed", hint="Open a new Proximity instance")
        op = self.store.operations.create(
            kind,
            steps=tuple(steps) if steps is not None else impl.steps,
            app_id=app_id,
            host_id=host_id,
            vmid=vmid,
            owner_id=owner_id,
            params=params,
            deadline=utcnow() + timedelta(seconds=impl.deadline_seconds),
            event=f"{kind} queued",  # every event names a step: this one "queued"
        )
        # inside a unit of work (the app's record and its operation, one write) a worker could not
        # claim a row not committed yet: it starts once the unit is committed, never if rolled back
        self.store.after_commit(functools.partial(self._start, op, resume=False))
        return self.handle(op.id)

    def handle(self, op_id: str) -> OperationHandle:
        return OperationHandle(self, op_id)

    # running ------------------------------------------------------------------------------------------

    def _start(self, op: Operation, *, resume: bool) -> bool:
        # A new operation is claimed by the worker that runs it, not here: while it waits for a
        # free worker it stays pending, so if this process dies it is run afresh by another one
        # (``recover``: pending and older than a lease) instead of being rolled back as if it had
        # started, and a process with free workers takes a backlog older than a lease.
        # An orphan (running, lease expired) is claimed now: the claim decides who recovers it.
        if resume and not self.store.operations.claim(op.id, self.runner_id, self._lease):
            return False
        lost = threading.Event()
        with self._lock:
            if op.id in self._running:
                return False
            self._running[op.id] = lost
            if resume:
                self._claimed.add(op.id)
            self._futures[op.id] = self._pool.submit(self._execute, op.id, resume, lost)
        return True

    def _execute(self, op_id: str, resume: bool, lost: threading.Event) -> None:
        try:
            if not resume:
                if not self.store.operations.claim(op_id, self.runner_id, self._lease):
                    return  # another process took it while it waited here for a worker, or it was cancelled
                with self._lock:
                    self._claimed.add(op_id)
            self._run(op_id, resume, lost)
        except LeaseLost:
            log.warning("operation %s was taken over by another process; this runner stopped", op_id)
        except Exception:  # a bug in the engine itself: never leave the operation silently running
            log.exception("operation %s crashed the engine", op_id)
            with contextlib.suppress(Exception):
                self.store.operations.finish(
                    op_id,
                    self.runner_id,
                    OperationStatus.FAILED,
                    error="internal error in the operation engine; see the logs",
                    message="internal error in the operation engine",
                    level="error",
                )
        finally:
            with self._lock:
                self._running.pop(op_id, None)
                self._futures.pop(op_id, None)
                self._claimed.discard(op_id)
            self.notify(op_id)

    def _run(self, op_id: str, resume: bool, lost: threading.Event) -> None:
        ctx = self._context(op_id, self.runner_id, lost)
        try:
            self._run_in(ctx, resume)
        finally:
            ctx.close()

    def _run_in(self, ctx: OperationContext, resume: bool) -> None:
        op = ctx.operation
        impl = self.kind(op.kind)
        self._listen("before", op, None)
        if resume:
            ctx.event(f"taken over by {self.runner_id}", level="warning")
        try:
            if resume and op.deadline is not None and op.deadline < utcnow():
                # nobody ran it until after its deadline: finishing it now would surprise its caller
                raise RunnerLost(
                    f"the {op.kind} passed its deadline while no process ran it "
                    f"(stopped {f'at step {ctx.current_step}' if ctx.current_step else 'before its first step'})"
                )
            result = impl.recover(ctx) if resume else impl.run(ctx)
        except LeaseLost:
            raise
        except OperationCancelled as exc:
            self._roll_back(ctx, impl)
            self._on_failure(ctx, impl, exc)
            done = self._finish(
                ctx,
                OperationStatus.CANCELLED,
                error=exc.message,
                result={"failed_step": ctx.current_step},
                message="cancelled; what was created is rolled back",
                level="warning",
            )
            self._listen("error", done, exc)
            return
        except Exception as exc:  # every failure of a step ends here: roll back, then report
            message = str(exc) if isinstance(exc, ProximityError | RunnerLost) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, ProximityError | RunnerLost):
                log.exception("operation %s failed unexpectedly", ctx.id)
            ctx.event(f"failed: {message}", level="error")
            self._roll_back(ctx, impl)
            self._on_failure(ctx, impl, exc)
            tail = list(getattr(exc, "log_tail", None) or ctx.log_tail)[-20:]
            done = self._finish(
                ctx,
                OperationStatus.FAILED,
                error=message,
                result={"failed_step": ctx.current_step, "log_tail": tail, "error_kind": type(exc).__name__},
                message=f"{op.kind} failed",
                level="error",
            )
            self._listen("error", done, exc)
            return
        ctx.current_step = None
        done = self._finish(
            ctx,
            OperationStatus.SUCCEEDED,
            result=result,
            message=f"{op.kind} succeeded",
            progress=1.0,
            writes=ctx.take_success_writes(),
        )
        self._listen("after", done, None)

    def fail_claimed(self, op_id: str, runner_id: str, error: Exception, *, message: str) -> Operation | None:
        """Roll back and fail an operation that ``runner_id`` has just claimed without running it (the
        janitor, for one past its deadline): the same path as a failing step. None when another
        runner took it meanwhile."""
        ctx = self._context(op_id, runner_id, threading.Event())
        impl = self.kind(ctx.operation.kind)
        try:
            ctx.event(f"{error}; failing it", level="error")
            self._roll_back(ctx, impl)
            self._on_failure(ctx, impl, error)
            done = self._finish(
                ctx,
                OperationStatus.FAILED,
                error=str(error),
                result={
                    "failed_step": ctx.current_step,
                    "log_tail": ctx.log_tail[-20:],
                    "error_kind": type(error).__name__,
                },
                message=message,
                level="error",
            )
        except LeaseLost:
            return None
        finally:
            ctx.close()
            self.notify(op_id)
        self._listen("error", done, error)
        return done

    def _context(self, op_id: str, runner_id: str, lost: threading.Event) -> OperationContext:
        op, params, effects = self.store.operations.load(op_id)  # one read for the three
        return OperationContext(
            self.store,
            op,
            runner_id,
            params=params,
            effects=effects,
            notify=self.notify,
            slots=self.node_slots,
            lost=lost,
            writer=self._events,
        )

    def _finish(
        self,
        ctx: OperationContext,
        status: OperationStatus,
        *,
        result: dict[str, Any] | None,
        error: str | None = None,
        message: str,
        level: str = "info",
        progress: float | None = None,
        writes: Sequence[Callable[[], None]] = (),
    ) -> Operation:
        try:
            # the kind's writes of its success and the finish: one transaction
            with ctx.writing(), ctx.unit() if writes else contextlib.nullcontext():
                for write in writes:
                    write()
                return self.store.operations.finish(
                    ctx.id,
                    ctx.runner_id,
                    status,
                    error=error,
                    result=result,
                    message=message,
                    level=level,
                    progress=progress,
                    before=ctx.take_unwritten(),
                )
        except BusyError:  # another runner holds it now: its outcome is theirs to write
            raise LeaseLost(ctx.id) from None

    def _roll_back(self, ctx: OperationContext, impl: OperationKind) -> None:
        if not ctx.effects:
            return
        ctx.rolling_back = True
        try:
            ctx.checkpoint()  # never undo what a runner that took the operation over relies on
            ctx.event("rolling back")
            impl.rollback(ctx)
        except LeaseLost:
            raise
        except Exception as exc:  # the journal keeps what is left: the janitor retries
            log.exception("rollback of operation %s incomplete", ctx.id)
            ctx.event(f"rollback incomplete ({exc}); the janitor will retry what is left", level="error")
        else:
            ctx.event("rolled back")
        finally:
            ctx.rolling_back = False

    def _on_failure(self, ctx: OperationContext, impl: OperationKind, exc: BaseException) -> None:
        # before the operation ends, so whoever wait()ed sees the records (e.g. app in `error`) final
        try:
            impl.on_failure(ctx, exc)
        except LeaseLost:
            raise
        except Exception as hook_error:
            log.exception("on_failure of operation %s failed", ctx.id)
            ctx.event(f"could not record the failure: {hook_error}", level="error")

    def _listen(self, when: Literal["before", "after", "error"], op: Operation, error: BaseException | None) -> None:
        if self.plugins is None or not self.plugins.listens_to_operations(when):
            return  # nobody listens: do not read the app for nobody
        try:
            app = None
            if op.app_id:
                with contextlib.suppress(NotFoundError):
                    app = self.store.apps.get(op.app_id)
            self.plugins.notify_operation(when, operation=op, app=app, error=error)
        except Exception:  # a listener must never break an operation
            log.exception("a lifecycle listener failed on %s of operation %s", when, op.id)

    # leases, recovery, shutdown -----------------------------------------------------------------------

    def _heartbeat(self) -> None:
        interval = max(0.2, self._lease.total_seconds() / 3)
        while not self._stop.wait(interval):
            with self._lock:  # only what we claimed holds a lease (a queued operation is still pending)
                mine = {op_id: self._running[op_id] for op_id in self._claimed if op_id in self._running}
            if not mine:
                continue
            try:
                gone = self.store.operations.heartbeat(self.runner_id, list(mine), self._lease)
            except Exception:  # the database may blink; the next beat retries well within the lease
                log.warning("heartbeat failed", exc_info=True)
                continue
            for op_id in gone:
                mine[op_id].set()

    def recover(self) -> list[str]:
        """Take over operations whose runner died (lease expired) and let their kind finish or roll
        them back. Live operations are never touched: their lease is fresh. Returns the ids taken."""
        taken = []
        with self._lock:
            ours = set(self._running)  # what we run or have queued: a lapsed lease of ours is no orphan
        for op in self.store.operations.orphaned(pending_older_than=self._lease, excluding=ours):
            with self._lock:
                started = op.id in self._running  # since the snapshot
            if op.kind not in self._kinds or started or self._stop.is_set():
                continue
            if self._start(op, resume=op.status == OperationStatus.RUNNING):
                taken.append(op.id)
        return taken

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def drain(self, timeout: float | None = None) -> None:
        """Wait for this process's running operations to end."""
        with self._lock:
            futures = list(self._futures.values())
        for future in futures:
            with contextlib.suppress(Exception):
                future.result(timeout)

    def close(self, *, wait: bool = True) -> None:
        """Stop the heartbeat and the workers. With ``wait``, running operations finish first;
        without, they stop at their next checkpoint and are left to their lease (another process
        recovers them once it expired)."""
        if wait:
            self.drain()
        self._stop.set()
        with self._lock:
            for lost in self._running.values():
                lost.set()
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        self._events.close()
        self._heart.join(timeout=5)

    # in-process notification (watchers in other processes poll) ------------------------------------

    def notify(self, op_id: str) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_change(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)
