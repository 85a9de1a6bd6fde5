"""The operations repository under contention: the event log and the lease compare-and-sets."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from proximity_sdk.errors import BusyError
from proximity_sdk.models.operation import OperationStatus
from proximity_sdk.store import Store


def test_concurrent_appends_to_one_log_get_every_sequence_number_once(store: Store) -> None:
    # a runner's events, a cancel request from another thread and a second operation all write at once
    ops = store.operations
    op = ops.create("toy", steps=("a",))
    other = ops.create("toy", steps=("a",))
    writers, each = 4, 15
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            for i in range(each):
                ops.append_event(op.id, f"w{n} {i}")
                ops.append_event(other.id, f"w{n} {i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    for op_id in (op.id, other.id):
        events = ops.events(op_id)
        assert [e.seq for e in events] == list(range(1, writers * each + 1))
        for n in range(writers):  # each writer's own events keep their order
            mine = [e.message for e in events if e.message.startswith(f"w{n} ")]
            assert mine == [f"w{n} {i}" for i in range(each)]


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
