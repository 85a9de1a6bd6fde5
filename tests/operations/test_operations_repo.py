"""The operations repository under contention: the event log and the lease compare-and-sets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from proximity_sdk.errors import BusyError
from proximity_sdk.models.operation import OperationStatus
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.operations_repo import NewEvent


def _all_at_once(writers: int, write: Callable[[int], None]) -> list[BaseException]:
    """Run ``write(n)`` for n in range(writers) on as many threads, released together; what they raised."""
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            write(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_concurrent_appends_to_one_log_get_every_sequence_number_once(store: Store) -> None:
    # a runner's events, a cancel request from another thread and a second operation all write at once
    ops = store.operations
    op = ops.create("toy", steps=("a",))
    other = ops.create("toy", steps=("a",))
    writers, each = 4, 15

    def write(n: int) -> None:
        for i in range(each):
            ops.append_event(op.id, f"w{n} {i}")
            ops.append_event(other.id, f"w{n} {i}")

    assert _all_at_once(writers, write) == []
    for op_id in (op.id, other.id):
        events = ops.events(op_id)
        assert [e.seq for e in events] == list(range(1, writers * each + 1))
        for n in range(writers):  # each writer's own events keep their order
            mine = [e.message for e in events if e.message.startswith(f"w{n} ")]
            assert mine == [f"w{n} {i}" for i in range(each)]


def test_concurrent_batches_and_single_events_get_every_sequence_number_once(store: Store) -> None:
    """Several events in one write take their seqs from one read of the next seq: writers of
    batches and of single events at once must still leave one gapless log, each batch in order."""
    ops = store.operations
    op = ops.create("toy", steps=("a",))
    writers, rounds, size = 4, 10, 3

    def write(n: int) -> None:
        for i in range(rounds):
            if n % 2:
                ops.append_events(op.id, [NewEvent(f"w{n} {i} {k}", step="a") for k in range(size)])
            else:
                for k in range(size):
                    ops.append_event(op.id, f"w{n} {i} {k}", step="a")

    assert _all_at_once(writers, write) == []
    events = ops.events(op.id)
    assert [e.seq for e in events] == list(range(1, writers * rounds * size + 1))
    for n in range(writers):
        mine = [e.message for e in events if e.message.startswith(f"w{n} ")]
        assert mine == [f"w{n} {i} {k}" for i in range(rounds) for k in range(size)]
    for n in range(1, writers, 2):  # a batch is written as one: its events are adjacent
        for i in range(rounds):
            seqs = [e.seq for e in events if e.message.startswith(f"w{n} {i} ")]
            assert seqs == list(range(seqs[0], seqs[0] + size))


def test_only_one_claimant_wins_and_only_the_holder_finishes(store: Store) -> None:
    ops = store.operations
    op = ops.create("toy", steps=("a",))
    lease = timedelta(seconds=30)
    wins = []
    barrier = threading.Barrier(4)

    def claim(name: str) -> None:
        barrier.wait()
        if ops.claim(op.id, name, lease):
            wins.append(name)

    threads = [threading.Thread(target=claim, args=(f"r{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(wins) == 1
    winner = wins[0]
    loser = next(f"r{n}" for n in range(4) if f"r{n}" != winner)
    # a live lease is not claimable, and only its holder writes the journal or ends it
    assert not ops.claim(op.id, loser, lease)
    ops.set_side_effects(op.id, loser, [{"kind": "x"}])
    assert ops.side_effects(op.id) == []
    assert ops.heartbeat(loser, [op.id], lease) == {op.id}
    with pytest.raises(BusyError, match=f"taken over by {winner}"):
        ops.finish(op.id, loser, OperationStatus.FAILED)
    done = ops.finish(op.id, winner, OperationStatus.SUCCEEDED, result={"ok": 1}, message="toy succeeded")
    assert done.status == OperationStatus.SUCCEEDED and done.result == {"ok": 1}
    assert ops.events(op.id)[-1].message == "toy succeeded"
    assert ops.events(op.id)[-1].time == done.finished_at
    with pytest.raises(BusyError, match="already ended"):
        ops.finish(op.id, winner, OperationStatus.FAILED)
    # a finished operation takes no cancel request and no event for it
    assert not ops.request_cancel(op.id).cancel_requested
    assert [e.message for e in ops.events(op.id)] == ["toy succeeded"]


def test_a_cancel_request_is_recorded_once_with_its_event(store: Store) -> None:
    ops = store.operations
    op = ops.create("toy", steps=("a",))
    assert ops.claim(op.id, "r1", timedelta(seconds=30))
    assert ops.request_cancel(op.id).cancel_requested
    assert ops.request_cancel(op.id).cancel_requested
    assert [e.message for e in ops.events(op.id)] == ["cancel requested"]
    assert ops.control(op.id, "r1") == (True, True)
    assert ops.control(op.id, "r2") == (True, False)


def test_writes_that_carry_events_append_them_in_order_with_their_own_change(store: Store) -> None:
    # a step's "done" rides on the operation's next write: each such write must put the events
    # down in the order given, before its own event, and only while the writer holds the lease
    ops = store.operations
    op = ops.create("toy", steps=("a", "b"))
    assert ops.claim(op.id, "r1", timedelta(seconds=30))
    ended = utcnow() - timedelta(seconds=5)  # the time a step ended, before it is written

    ops.append_events(op.id, [NewEvent("one", step="a"), NewEvent("two", step="a", level="debug")])
    assert ops.begin_step(
        op.id, "r1", "b", "b: started", progress=0.5, before=[NewEvent("a: done", step="a", at=ended)]
    )
    ops.set_side_effects(op.id, "r1", [{"kind": "x"}], events=[NewEvent("e1", step="b"), NewEvent("e2", step="b")])
    ops.update_params(op.id, "r1", {"p": 1}, events=[NewEvent("p1", step="b")])
    # a runner that lost the lease writes neither the change nor the events
    ops.set_side_effects(op.id, "r2", [{"kind": "y"}], events=[NewEvent("stale", step="b")])
    ops.update_params(op.id, "r2", {"p": 2}, events=[NewEvent("stale", step="b")])
    assert ops.begin_step(op.id, "r2", "b", "stale", progress=None, before=[NewEvent("stale", step="b")]) == (
        False,
        False,
    )
    ops.finish(op.id, "r1", OperationStatus.SUCCEEDED, message="toy succeeded", before=[NewEvent("b: done", step="b")])

    events = ops.events(op.id)
    assert [(e.seq, e.step, e.message) for e in events] == [
        (1, "a", "one"),
        (2, "a", "two"),
        (3, "a", "a: done"),
        (4, "b", "b: started"),
        (5, "b", "e1"),
        (6, "b", "e2"),
        (7, "b", "p1"),
        (8, "b", "b: done"),
        (9, "done", "toy succeeded"),
    ]
    assert events[1].level == "debug" and events[2].time == ended  # the time it happened, not written
    _, params, effects = ops.load(op.id)
    assert params == {"p": 1} and effects == [{"kind": "x"}]


def test_a_cancel_seen_at_a_step_boundary_still_writes_the_events_that_happened(store: Store) -> None:
    ops = store.operations
    op = ops.create("toy", steps=("a", "b"))
    assert ops.claim(op.id, "r1", timedelta(seconds=30))
    ops.request_cancel(op.id)
    assert ops.begin_step(op.id, "r1", "b", "b: started", progress=0.5, before=[NewEvent("a: done", step="a")]) == (
        True,
        True,
    )
    assert [e.message for e in ops.events(op.id)] == ["cancel requested", "a: done"]  # no "b: started"


def test_create_writes_the_first_event_with_the_operation_and_neither_when_refused(store: Store) -> None:
    store.hosts.add(name="pve1", url="https://pve1:8006", token_id="root@pam!px", token_secret="t")
    app = store.apps.create(hostname="git-1", host_id="pve1")
    op = store.operations.create("toy", steps=("a",), app_id=app.id, event="toy queued")
    assert [(e.seq, e.step, e.message) for e in store.operations.events(op.id)] == [(1, "queued", "toy queued")]
    with pytest.raises(BusyError, match=f"toy operation {op.id} is pending"):
        store.operations.create("toy", steps=("a",), app_id=app.id, event="second queued")
    assert len(store.operations.list(app_id=app.id)) == 1
    assert [e.message for e in store.operations.events(op.id)] == ["toy queued"]
