"""The operation engine with toy kinds, on SQLite and PostgreSQL: events, failure and rollback,
one operation per app, cancel, timeouts, node slots, lease loss and lifecycle listeners."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from proximity_sdk.engine._slots import NodeSlots
from proximity_sdk.engine.context import OperationContext
from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.engine.handle import OperationHandle
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.errors import (
    BusyError,
    OperationCancelled,
    OperationFailed,
    OperationTimeout,
    ValidationError,
)
from proximity_sdk.models.app import App
from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus
from proximity_sdk.plugins import hookimpl
from proximity_sdk.plugins.manager import PluginManager
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.tables import OperationRow
from tests.operations._toys import GATE, Steps
from tests.operations.conftest import Toys


def _messages(events: list[OperationEvent]) -> list[str]:
    return [e.message for e in events]


def _until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# success and the event log ----------------------------------------------------------------------------


def test_success_writes_every_event_in_order_and_wait_returns_the_kind_result(
    engine: OperationEngine, store: Store
) -> None:
    op = engine.submit("toy", params={"note": "x"})
    assert op.wait(timeout=15) == ["prepare", "create", "finish"]

    events = list(op.events())
    third = 1 / 3
    assert [(e.seq, e.step, e.message, e.progress) for e in events] == [
        (1, "queued", "toy queued", None),  # every event names a step (README: print(event.step, ...))
        (2, "prepare", "prepare: started", 0.0),
        (3, "prepare", "prepare: done", pytest.approx(third)),
        (4, "create", "create: started", pytest.approx(third)),
        (5, "create", "create: done", pytest.approx(2 * third)),
        (6, "finish", "finish: started", pytest.approx(2 * third)),
        (7, "finish", "finish: done", 1.0),
        (8, "done", "toy succeeded", 1.0),
    ]
    assert all(e.operation_id == op.id for e in events)
    assert [e.time for e in events] == sorted(e.time for e in events)
    _assert_nothing_after_the_end(op)

    record = op.get()
    assert record.status == OperationStatus.SUCCEEDED
    assert record.result == {"made": ["prepare", "create", "finish"]}
    assert record.current_step is None and record.error is None
    assert record.started_at is not None and record.finished_at is not None
    # what the run journalled stays with the succeeded operation (it is now the app's, not undone)
    assert [e["name"] for e in store.operations.side_effects(op.id)] == ["prepare", "create", "finish"]
    assert engine.running() == []


class _Writes(OperationKind):
    """Ends each step before a different kind of write, so the deferred "done" rides on each."""

    name = "writes"
    steps = ("a", "b", "c", "d", "e")

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        with ctx.step("a"):
            pass
        ctx.event("after a")
        with ctx.step("b"):
            pass
        ctx.record("thing", name="b")
        with ctx.step("c"):
            pass
        ctx.save_params(c=True)
        with ctx.step("d"):
            ctx.task_log(["line 1", "line 2"])
        with ctx.step("e"):
            pass
        return {}


def test_a_step_boundary_is_one_write_and_no_event_is_lost_or_reordered(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an event (a step's "done" too) is written with the operation's next write (journal, params,
    # next step, finish): every write must carry what waits, before its own, in its one
    # transaction. The event delay is set far beyond the run, so the event thread never writes
    # here and the writes below do not depend on the machine's speed.
    engine = OperationEngine(store, lease_seconds=2, node_slots=2, event_delay=60.0)
    writes: list[tuple[str, list[str]]] = []
    ops = store.operations

    def spy(name: str, carried: str) -> None:
        original = getattr(ops, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            events = kwargs.get(carried, args[1] if name == "append_events" else ())
            writes.append((name, [e.message for e in events]))
            return original(*args, **kwargs)

        monkeypatch.setattr(ops, name, call)

    for name, carried in [
        ("append_events", "events"),
        ("begin_step", "before"),
        ("set_side_effects", "events"),
        ("update_params", "events"),
        ("finish", "before"),
    ]:
        spy(name, carried)
    engine.register(_Writes())
    try:
        op = engine.submit("writes")
        op.wait(timeout=15)
    finally:
        engine.close()

    assert writes == [
        ("begin_step", []),
        ("begin_step", ["a: done", "after a"]),
        ("set_side_effects", ["b: done"]),
        ("begin_step", []),
        ("update_params", ["c: done"]),
        ("begin_step", []),
        ("begin_step", ["line 1", "line 2", "d: done"]),
        ("finish", ["e: done"]),
    ]
    events = list(op.events())
    assert [(e.step, e.message) for e in events] == [
        ("queued", "writes queued"),
        ("a", "a: started"),
        ("a", "a: done"),
        ("a", "after a"),
        ("b", "b: started"),
        ("b", "b: done"),
        ("c", "c: started"),
        ("c", "c: done"),
        ("d", "d: started"),
        ("d", "line 1"),
        ("d", "line 2"),
        ("d", "d: done"),
        ("e", "e: started"),
        ("e", "e: done"),
        ("done", "writes succeeded"),
    ]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.time for e in events] == sorted(e.time for e in events)
    _, params, effects = store.operations.load(op.id)
    assert params == {"c": True} and effects == [{"kind": "thing", "name": "b"}]


class _SaysThenWaits(OperationKind):
    """Says something, then waits (as on Proxmox or the node shell) without writing."""

    name = "says-then-waits"
    steps = ("wait",)

    def __init__(self) -> None:
        self.release = threading.Event()

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        with ctx.step("wait"):
            ctx.event("waiting for something slow")
            self.release.wait(10)
        return {}


def test_an_event_said_before_a_long_wait_is_written_within_the_delay(engine: OperationEngine, store: Store) -> None:
    kind = _SaysThenWaits()
    engine.register(kind)
    op = engine.submit("says-then-waits")
    try:
        began = time.monotonic()
        _until(
            lambda: "waiting for something slow" in _messages(store.operations.events(op.id)),
            "the event written while the operation still waits",
            timeout=5,
        )
        waited = time.monotonic() - began
        assert store.operations.get(op.id).status == OperationStatus.RUNNING
        # the delay is 0.1 s; the bound leaves room for a loaded machine, not for "at the next write"
        assert waited < 2.0
    finally:
        kind.release.set()
    op.wait(timeout=15)
    last = ["waiting for something slow", "wait: done", "says-then-waits succeeded"]
    assert _messages(list(op.events()))[-3:] == last


class _SaysAroundAUnit(OperationKind):
    name = "says-around-a-unit"
    steps = ("one",)

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        with ctx.step("one"):
            ctx.event("before the unit")
            with ctx.unit():
                ctx.store.operations.get(ctx.id)  # the unit's transaction begins (SQLite: its write lock)
                time.sleep(0.4)  # several event delays: the event thread wants to write meanwhile
                ctx.event("inside the unit")
            ctx.event("after the unit")
        return {}


def test_the_event_thread_never_writes_in_the_middle_of_a_unit(engine: OperationEngine, store: Store) -> None:
    """The unit holds the write lock of the store for its whole block: an event written from the
    event thread then would wait for its commit and land after the unit's events, out of order."""
    engine.register(_SaysAroundAUnit())
    op = engine.submit("says-around-a-unit")
    op.wait(timeout=15)
    events = list(op.events())
    said = ["one: started", "before the unit", "inside the unit", "after the unit", "one: done"]
    assert _messages(events)[1:-1] == said
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


class _HandsOver(OperationKind):
    name = "hands-over"
    steps = ("make",)

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        with ctx.step("make"):
            for kind, n in [("thing", 1), ("other", 2), ("keep", 3), ("thing", 4)]:
                ctx.record(kind, n=n)
        ctx.forget_kinds("thing", "other")
        return {}


def test_forget_kinds_drops_every_entry_of_those_kinds_in_one_write(
    engine: OperationEngine, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    journals: list[list[dict[str, Any]]] = []
    original = store.operations.set_side_effects

    def spy(op_id: str, runner_id: str, effects: Any, **kwargs: Any) -> None:
        journals.append([dict(e) for e in effects])
        original(op_id, runner_id, effects, **kwargs)

    monkeypatch.setattr(store.operations, "set_side_effects", spy)
    engine.register(_HandsOver())
    op = engine.submit("hands-over")
    op.wait(timeout=15)
    assert len(journals) == 5  # four records, then one write for the hand-over
    assert journals[-1] == [{"kind": "keep", "n": 3}]
    assert store.operations.side_effects(op.id) == [{"kind": "keep", "n": 3}]
    assert [e.message for e in op.events()][-2:] == ["make: done", "hands-over succeeded"]


def test_events_after_a_sequence_number_replay_from_there(engine: OperationEngine) -> None:
    op = engine.submit("toy")
    op.wait(timeout=15)
    everything = list(op.events())
    assert [e.seq for e in op.events(after=5)] == [6, 7, 8]
    assert list(op.events(after=5)) == everything[5:]
    assert list(op.events(after=8)) == []
    assert list(op.events(after=3, follow=False)) == everything[3:]
    with pytest.raises(ValidationError):
        list(op.events(after=-1))


def test_two_watchers_in_threads_see_every_event_in_order_while_it_runs(engine: OperationEngine, toys: Toys) -> None:
    op = engine.submit("toy", params={"hold": True})
    seen: dict[str, list[OperationEvent]] = {"a": [], "b": []}
    early: dict[str, int] = {}

    def watch(name: str) -> None:
        for event in engine.handle(op.id).events(timeout=GATE):
            seen[name].append(event)
            if event.message == "create: started":
                early[name] = len(seen[name])

    threads = [threading.Thread(target=watch, args=(name,)) for name in seen]
    for thread in threads:
        thread.start()
    assert toys.steps.entered.wait(10)
    # both watchers are streaming the live operation: they have the first events already
    _until(lambda: len(early) == 2, "both watchers to see the held step")
    assert op.status == OperationStatus.RUNNING
    toys.steps.release.set()
    for thread in threads:
        thread.join(GATE)
        assert not thread.is_alive()

    everything = list(op.events())
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
    assert seen["a"] == everything
    assert seen["b"] == everything
    assert everything[-1].message == "toy succeeded"
    progress = [e.progress for e in everything if e.progress is not None]
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_a_watcher_with_a_timeout_gets_operation_timeout(engine: OperationEngine, toys: Toys) -> None:
    op = engine.submit("toy", params={"hold": True})
    assert toys.steps.entered.wait(10)
    got: list[OperationEvent] = []

    def follow() -> None:
        for event in op.events(timeout=0.5):
            got.append(event)

    with pytest.raises(OperationTimeout):
        follow()
    assert _messages(got)[-1] == "create: started"  # everything so far, then the timeout


# failure and rollback ---------------------------------------------------------------------------------


def test_a_failed_step_rolls_back_newest_first_and_wait_reports_step_and_log_tail(
    engine: OperationEngine, store: Store, toys: Toys
) -> None:
    op = engine.submit("toy", params={"fail_at": "finish"})
    with pytest.raises(OperationFailed) as info:
        op.wait(timeout=15)

    assert info.value.step == "finish"
    assert info.value.operation_id == op.id
    assert info.value.log_tail == ["TASK ERROR: no space left"]  # the Proxmox task's own tail
    assert "task went wrong" in str(info.value) and "(step finish)" in str(info.value)
    assert toys.steps.undone == ["create", "prepare"]
    assert toys.steps.failures == ["TaskFailedError"]
    assert store.operations.side_effects(op.id) == []

    record = op.get()
    assert record.status == OperationStatus.FAILED
    assert record.current_step == "finish"
    assert record.result == {
        "failed_step": "finish",
        "log_tail": ["TASK ERROR: no space left"],
        "error_kind": "TaskFailedError",
    }
    messages = _messages(list(op.events()))
    start = messages.index("finish: started")
    assert messages[start + 1 :] == [
        *(f"log line {i}" for i in range(25)),
        messages[start + 26],
        "rolling back",
        "rolled back",
        "toy failed",
    ]
    assert messages[start + 26].startswith("failed: task went wrong")
    assert "finish: done" not in messages
    _assert_nothing_after_the_end(op)
    levels = {e.message: e.level for e in op.events()}
    assert levels["log line 0"] == "debug" and levels["toy failed"] == "error"


def test_without_a_task_error_the_log_tail_is_the_last_twenty_task_log_lines(engine: OperationEngine) -> None:
    op = engine.submit("toy", params={"fail_at": "create", "plain": True})
    with pytest.raises(OperationFailed) as info:
        op.wait(timeout=15)
    assert info.value.step == "create"
    assert info.value.log_tail == [f"log line {i}" for i in range(5, 25)]
    assert op.get().result["error_kind"] == "RuntimeError"
    assert op.get().error == "RuntimeError: disk on fire"


def test_a_rollback_that_raises_keeps_what_is_left_in_the_journal(
    engine: OperationEngine, store: Store, toys: Toys
) -> None:
    op = engine.submit("toy", params={"fail_at": "finish", "break_rollback": True})
    with pytest.raises(OperationFailed):
        op.wait(timeout=15)
    assert toys.steps.undone == ["create"]
    assert store.operations.side_effects(op.id) == [{"kind": "thing", "name": "prepare"}]
    assert op.status == OperationStatus.FAILED
    errors = [e for e in op.events() if e.level == "error"]
    assert any("rollback incomplete (cannot undo prepare)" in e.message for e in errors)
    assert "rolled back" not in _messages(list(op.events()))


def test_an_on_failure_hook_that_raises_does_not_hide_the_failure(engine: OperationEngine) -> None:
    class Clumsy(Steps):
        name = "clumsy"

        def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
            raise RuntimeError("app table unreachable")

    engine.register(Clumsy())
    op = engine.submit("clumsy", params={"fail_at": "create"})
    with pytest.raises(OperationFailed) as info:
        op.wait(timeout=15)
    assert info.value.step == "create"
    record = op.get()
    assert record.result["error_kind"] == "TaskFailedError"
    assert any("could not record the failure: app table unreachable" in m for m in _messages(list(op.events())))


# one operation per app / VMID ---------------------------------------------------------------------------


def test_a_second_operation_on_a_busy_app_or_vmid_is_refused_until_the_first_ends(
    engine: OperationEngine, toys: Toys, app: App
) -> None:
    first = engine.submit("toy", app_id=app.id, host_id=app.host_id, vmid=105, params={"hold": True})
    assert toys.steps.entered.wait(10)
    with pytest.raises(BusyError, match=f"app {app.id}: toy operation {first.id} is running"):
        engine.submit("toy", app_id=app.id)
    with pytest.raises(BusyError, match="VMID 105"):
        engine.submit("toy", host_id=app.host_id, vmid=105)
    # another VMID on the same host is free
    engine.submit("toy", host_id=app.host_id, vmid=106).wait(timeout=15)

    toys.steps.release.set()
    first.wait(timeout=15)
    again = engine.submit("toy", app_id=app.id, host_id=app.host_id, vmid=105)
    assert again.wait(timeout=15) == ["prepare", "create", "finish"]


def test_concurrent_submits_for_one_app_exactly_one_wins(
    engine: OperationEngine, toys: Toys, app: App, store: Store
) -> None:
    contenders = 6
    barrier = threading.Barrier(contenders)
    won: list[OperationHandle] = []
    refused: list[BusyError] = []
    lock = threading.Lock()

    def contend() -> None:
        barrier.wait()
        try:
            handle = engine.submit("toy", app_id=app.id, params={"hold": True})
        except BusyError as exc:
            with lock:
                refused.append(exc)
        else:
            with lock:
                won.append(handle)

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1 and len(refused) == contenders - 1
    assert [op.id for op in store.operations.list(app_id=app.id)] == [won[0].id]
    toys.steps.release.set()
    won[0].wait(timeout=15)


def test_an_operation_submitted_inside_a_unit_starts_once_the_unit_committed(
    engine: OperationEngine, toys: Toys, app: App, store: Store
) -> None:
    """An app's record and its operation are one write (deploy, clone): a worker claims the
    operation only once that write is committed. Started before, on PostgreSQL its claim found
    no row and the operation stayed pending until another process recovered it."""
    with store.unit():
        handle = engine.submit("toy", app_id=app.id, params={"hold": True})
        time.sleep(0.3)  # a worker started now would be claiming it
        assert store.operations.get(handle.id).status is OperationStatus.PENDING
    assert toys.steps.entered.wait(10), "the operation was not run once the unit committed"
    toys.steps.release.set()
    assert handle.wait(timeout=15) == ["prepare", "create", "finish"]

    gone: list[OperationHandle] = []

    def rolled_back() -> None:
        with store.unit():
            gone.append(engine.submit("toy", app_id=app.id))
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        rolled_back()
    time.sleep(0.3)
    assert [op.id for op in store.operations.list(app_id=app.id)] == [handle.id]
    assert gone[0].id not in engine.running()


def test_a_busy_app_refuses_an_operation_submitted_inside_a_unit_and_the_unit_writes_nothing(
    engine: OperationEngine, toys: Toys, app: App, store: Store
) -> None:
    """Inside a unit the refused insert leaves the unit's transaction unusable: the refusal is
    still a BusyError naming what holds the app, and the unit writes nothing."""
    first = engine.submit("toy", app_id=app.id, params={"hold": True})
    assert toys.steps.entered.wait(10)

    def refused() -> None:
        with store.unit():
            store.apps.patch(app.id, address="10.0.0.9")
            engine.submit("toy", app_id=app.id)

    with pytest.raises(BusyError, match=f"app {app.id}: toy operation {first.id} is running"):
        refused()
    assert store.apps.get(app.id).address is None
    toys.steps.release.set()
    first.wait(timeout=15)


# cancel and timeouts -----------------------------------------------------------------------------------


def test_cancel_stops_a_running_operation_rolls_back_and_wait_raises_cancelled(
    engine: OperationEngine, toys: Toys, store: Store
) -> None:
    op = engine.submit("loop")
    assert toys.loop.spinning.wait(10)
    assert op.cancel().cancel_requested
    with pytest.raises(OperationCancelled):
        op.wait(timeout=15)
    assert toys.loop.undone == ["setup"]  # the rollback's own checkpoint did not stop it
    assert not toys.loop.finished
    record = op.get()
    assert record.status == OperationStatus.CANCELLED
    assert record.result == {"failed_step": "spin"}
    assert store.operations.side_effects(op.id) == []
    events = list(op.events())
    assert _messages(events)[-4:] == [
        "cancel requested",
        "rolling back",
        "rolled back",
        "cancelled; what was created is rolled back",
    ]
    _assert_nothing_after_the_end(op)
    # cancelling a finished operation changes nothing and writes nothing
    assert op.cancel().status == OperationStatus.CANCELLED
    assert list(op.events()) == events


def test_wait_with_a_timeout_raises_while_the_operation_goes_on_to_succeed(engine: OperationEngine, toys: Toys) -> None:
    op = engine.submit("toy", params={"hold": True})
    assert toys.steps.entered.wait(10)
    started = time.monotonic()
    with pytest.raises(OperationTimeout) as info:
        op.wait(timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 3
    assert "step create" in str(info.value)
    assert op.status == OperationStatus.RUNNING
    toys.steps.release.set()
    assert op.wait(timeout=15) == ["prepare", "create", "finish"]
    with pytest.raises(ValidationError):
        op.wait(timeout=-1)


# node slots -------------------------------------------------------------------------------------------------


def test_node_slots_bound_the_operations_inside_a_node_at_once(engine: OperationEngine, toys: Toys) -> None:
    ops = [engine.submit("slotted", params={"node": "pve1"}) for _ in range(6)]
    for op in ops:
        op.wait(timeout=20)
    assert toys.slotted.most == 2  # node_slots=2: full use, never more
    waited = [op for op in ops if "waiting for a free slot on node pve1" in _messages(list(op.events()))]
    assert waited


def test_a_cancel_reaches_an_operation_waiting_for_a_node_slot(engine: OperationEngine, toys: Toys) -> None:
    class Holder(OperationKind):
        name = "holder"
        steps = ("hold",)

        def run(self, ctx: OperationContext) -> dict[str, Any]:
            with ctx.step("hold"), ctx.node_slot("host-1", "pve1"):
                assert toys.blocking.release.wait(GATE)
            return {}

    engine.register(Holder())
    holders = [engine.submit("holder") for _ in range(2)]
    _until(lambda: all("hold: started" in _messages(list(h.events(follow=False))) for h in holders), "holders")
    waiter = engine.submit("holder")
    _until(
        lambda: "waiting for a free slot on node pve1" in _messages(list(waiter.events(follow=False))),
        "the third to wait",
    )
    waiter.cancel()
    with pytest.raises(OperationCancelled):
        waiter.wait(timeout=5)
    toys.blocking.release.set()
    for holder in holders:
        holder.wait(timeout=15)


# lease loss -----------------------------------------------------------------------------------------------


def test_a_runner_that_lost_its_lease_stops_without_touching_the_operation(
    engine: OperationEngine, toys: Toys, store: Store
) -> None:
    op = engine.submit("loop")
    assert toys.loop.spinning.wait(10)
    later = utcnow() + timedelta(minutes=5)
    with store.session() as s:  # another process claimed it (as after a long pause of ours)
        s.execute(
            update(OperationRow)
            .where(OperationRow.id == op.id)
            .values(runner_id="other-host:1:cafe", lease_expires_at=later)
        )
    before = list(op.events(follow=False))
    assert toys.loop.stopped.wait(10)
    engine.drain(timeout=10)
    assert engine.running() == []

    record = op.get()
    assert record.status == OperationStatus.RUNNING  # the new runner's to finish
    assert record.error is None and record.finished_at is None
    assert store.operations.side_effects(op.id) == [{"kind": "thing", "name": "setup"}]
    assert toys.loop.undone == [] and not toys.loop.finished
    assert list(op.events(follow=False)) == before
    with store.session() as s:
        row = s.get(OperationRow, op.id)
        assert row is not None and row.runner_id == "other-host:1:cafe"


def test_the_heartbeat_keeps_the_lease_of_a_long_step_fresh(store: Store, toys: Toys) -> None:
    engine = OperationEngine(store, lease_seconds=1)
    engine.register(toys.blocking)
    try:
        op = engine.submit("blocking")
        assert toys.blocking.entered.wait(10)
        first = _lease_of(store, op.id)
        time.sleep(1.4)  # longer than the lease: only heartbeats keep it
        assert _lease_of(store, op.id) > first
        assert _lease_of(store, op.id) > utcnow()
        assert engine.recover() == []
        toys.blocking.release.set()
        assert op.wait(timeout=15) is None
        assert op.status == OperationStatus.SUCCEEDED
    finally:
        toys.blocking.release.set()
        engine.close()


def _lease_of(store: Store, op_id: str) -> Any:
    with store.session() as s:
        row = s.get(OperationRow, op_id)
        assert row is not None and row.lease_expires_at is not None
        return row.lease_expires_at


# lifecycle listeners ---------------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Operation, App | None, BaseException | None]] = []

    @hookimpl
    def proximity_operation_before(self, operation: Operation, app: App | None) -> None:
        self.calls.append(("before", operation, app, None))

    @hookimpl
    def proximity_operation_after(self, operation: Operation, app: App | None) -> None:
        self.calls.append(("after", operation, app, None))

    @hookimpl
    def proximity_operation_error(self, operation: Operation, app: App | None, error: BaseException) -> None:
        self.calls.append(("error", operation, app, error))


class Broken:
    @hookimpl
    def proximity_operation_before(self, operation: Operation, app: App | None) -> None:
        raise RuntimeError("listener down")

    @hookimpl
    def proximity_operation_after(self, operation: Operation, app: App | None) -> None:
        raise RuntimeError("listener down")

    @hookimpl
    def proximity_operation_error(self, operation: Operation, app: App | None, error: BaseException) -> None:
        raise RuntimeError("listener down")


@pytest.mark.parametrize("broken", [False, True], ids=["listener", "broken-listener-too"])
def test_lifecycle_listeners_hear_before_after_and_error(store: Store, toys: Toys, app: App, broken: bool) -> None:
    recorder = Recorder()
    plugins = PluginManager(entry_points=False, plugins=(Broken(), recorder) if broken else (recorder,))
    engine = OperationEngine(store, plugins=plugins, lease_seconds=2)
    engine.register(toys.steps)
    try:
        ok = engine.submit("toy", app_id=app.id)
        assert ok.wait(timeout=15) == ["prepare", "create", "finish"]
        engine.drain(timeout=10)  # the "after" listener runs once the record has ended
        bad = engine.submit("toy", app_id=app.id, params={"fail_at": "create"})
        with pytest.raises(OperationFailed):
            bad.wait(timeout=15)
        engine.drain(timeout=10)  # listeners run after the record ends
    finally:
        engine.close()

    seen = [(when, op.id, op.status, a.id if a else None) for when, op, a, _ in recorder.calls]
    assert seen == [
        ("before", ok.id, OperationStatus.RUNNING, app.id),
        ("after", ok.id, OperationStatus.SUCCEEDED, app.id),
        ("before", bad.id, OperationStatus.RUNNING, app.id),
        ("error", bad.id, OperationStatus.FAILED, app.id),
    ]
    failed_op, error = recorder.calls[3][1], recorder.calls[3][3]
    assert failed_op.result["failed_step"] == "create"
    assert type(error).__name__ == "TaskFailedError"
    assert ok.status == OperationStatus.SUCCEEDED


# boundaries -------------------------------------------------------------------------------------------------


def test_submit_and_register_refuse_bad_input_clearly(store: Store, toys: Toys) -> None:
    engine = OperationEngine(store, lease_seconds=2)
    engine.register(toys.steps)
    with pytest.raises(ValidationError, match="unknown operation kind 'nope'"):
        engine.submit("nope")
    with pytest.raises(ValidationError, match="unique"):
        engine.submit("toy", steps=["a", "a"])

    class Nameless(OperationKind):
        steps = ("x",)

    with pytest.raises(ValidationError, match="Nameless has no name"):
        engine.register(Nameless())
    with pytest.raises(ValidationError, match="lease_seconds"):
        OperationEngine(store, lease_seconds=0.5)
    with pytest.raises(ValidationError, match="node_slots"):
        OperationEngine(store, node_slots=0)
    for bad in (0.0, -1.0, 61.0):
        with pytest.raises(ValidationError, match="event_delay"):
            OperationEngine(store, event_delay=bad)
    engine.close()
    with pytest.raises(ValidationError, match="closed"):
        engine.submit("toy")
    assert store.operations.list() == []


def _assert_nothing_after_the_end(op: OperationHandle) -> None:
    """Watchers stop once the record has ended: no event may be written after that."""
    record = op.get()
    assert record.finished_at is not None
    assert all(e.time <= record.finished_at for e in op.events())


class _OneUnit(OperationKind):
    """Its step's journal entry, app record change and event in one unit of work; ``fail`` raises
    inside the unit after them."""

    name = "one-unit"
    steps = ("make",)

    def __init__(self, store: Store, app_id: str) -> None:
        self.store = store
        self.app_id = app_id
        self.effects_at_rollback: list[dict[str, Any]] = []

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        with ctx.step("make"), ctx.unit():
            ctx.record("thing", n=1)
            self.store.apps.patch(self.app_id, vmid=150)
            ctx.event("made")
            if ctx.params.get("fail"):
                raise RuntimeError("broke inside the unit")
        return {}

    def rollback(self, ctx: OperationContext) -> None:
        self.effects_at_rollback = ctx.effects
        ctx.forget_kinds("thing")


def test_a_unit_of_work_writes_its_calls_together_and_wakes_watchers_once_committed(
    engine: OperationEngine, store: Store, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    original = engine.notify

    def notify(op_id: str) -> None:
        # what a watcher in another thread reads when woken
        reader = threading.Thread(target=lambda: seen.append(_messages(store.operations.events(op_id))))
        reader.start()
        reader.join()
        original(op_id)

    monkeypatch.setattr(engine, "notify", notify)
    engine.register(_OneUnit(store, app.id))
    op = engine.submit("one-unit", app_id=app.id)
    op.wait(timeout=15)
    assert store.apps.get(app.id).vmid == 150
    assert store.operations.side_effects(op.id) == [{"kind": "thing", "n": 1}]
    # woken at the step's start and after the unit's commit, never inside it (nothing new to read)
    assert seen[:2] == [["one-unit queued", "make: started"], ["one-unit queued", "make: started", "made"]]


def test_a_unit_of_work_that_raises_leaves_none_of_its_writes(engine: OperationEngine, store: Store, app: App) -> None:
    kind = _OneUnit(store, app.id)
    engine.register(kind)
    op = engine.submit("one-unit", app_id=app.id, params={"fail": True})
    with pytest.raises(OperationFailed, match="broke inside the unit"):
        op.wait(timeout=15)
    assert store.apps.get(app.id).vmid == 105
    assert "made" not in _messages(list(op.events()))
    # the rollback still sees the entry (in memory, as after any failed write) and drops it
    assert kind.effects_at_rollback == [{"kind": "thing", "n": 1}]
    assert store.operations.side_effects(op.id) == []


class _Closes(OperationKind):
    """A step that ends with a closing event and leaves a record change for the finish; ``fail``
    raises after both."""

    name = "closes"
    steps = ("a",)

    def __init__(self, store: Store, app_id: str) -> None:
        self.store = store
        self.app_id = app_id

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        with ctx.step("a"):
            ctx.at_success(lambda: self.store.apps.patch(self.app_id, vmid=150))
            ctx.last_event("closing")
        if ctx.params.get("fail"):
            raise RuntimeError("failed after the step")
        return {}


def test_a_closing_event_and_the_writes_of_success_go_with_the_finish(
    engine: OperationEngine, store: Store, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    finishes: list[tuple[list[str], int | None]] = []
    original = store.operations.finish

    def finish(*args: Any, **kwargs: Any) -> Operation:
        # the record change was made in the same transaction, just before (read inside it)
        finishes.append(([e.message for e in kwargs["before"]], store.apps.get(app.id).vmid))
        return original(*args, **kwargs)

    monkeypatch.setattr(store.operations, "finish", finish)
    engine.register(_Closes(store, app.id))
    op = engine.submit("closes", app_id=app.id)
    op.wait(timeout=15)
    assert finishes == [(["closing", "a: done"], 150)]
    events = list(op.events())
    assert [(e.step, e.message) for e in events][-3:] == [
        ("a", "closing"),
        ("a", "a: done"),
        ("done", "closes succeeded"),
    ]
    assert [e.time for e in events] == sorted(e.time for e in events)
    assert store.apps.get(app.id).vmid == 150

    store.apps.patch(app.id, vmid=105)
    failed = engine.submit("closes", app_id=app.id, params={"fail": True})
    with pytest.raises(OperationFailed, match="failed after the step"):
        failed.wait(timeout=15)
    assert store.apps.get(app.id).vmid == 105, "the writes of success are dropped on failure"
    assert "closing" in _messages(list(failed.events()))


def test_node_slots_count_the_operations_headed_to_a_node_until_each_releases_once() -> None:
    slots = NodeSlots(2)
    first, second = slots.head("h1", "pve1"), slots.head("h1", "pve1")
    other_host = slots.head("h2", "pve2")
    assert slots.crowded("h1") == {"pve1"}  # two headed, two slots: a third would wait
    assert slots.crowded("h2") == frozenset()
    first()
    first()  # a second release of the same claim does not free another's
    assert slots.crowded("h1") == frozenset()
    third = slots.head("h1", "pve1")
    assert slots.crowded("h1") == {"pve1"}
    for release in (second, third, other_host):
        release()
    assert slots.crowded("h1") == frozenset() and slots.crowded("h2") == frozenset()
    assert slots.slot("h1", "pve1") is slots.slot("h1", "pve1")
