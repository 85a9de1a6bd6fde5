"""Crash recovery: a second process runs an operation against the same database and is SIGKILLed
mid-step; an engine here takes the operation over only once its lease has expired, then rolls it
back (default) or lets the kind finish it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.errors import OperationFailed
from proximity_sdk.models.operation import OperationStatus
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.tables import OperationRow
from tests.harness.db import executed
from tests.operations._toys import UNDO_FILE, Blocking, FileEffects, FinishesOnRecover, Steps

ROOT = Path(__file__).resolve().parents[2]
CHILD_LEASE = 2.0


@pytest.fixture
def recovering(store: Store) -> Iterator[OperationEngine]:
    engine = OperationEngine(store, lease_seconds=1)
    engine.register(FileEffects())
    engine.register(FinishesOnRecover())
    engine.register(Steps())
    try:
        yield engine
    finally:
        engine.close(wait=False)
        engine.drain(timeout=10)


def _run_child_until_blocked(store: Store, tmp_path: Path, kind: str) -> tuple[subprocess.Popen[str], str, Path]:
    work = tmp_path / "work"
    work.mkdir()
    url = store.engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.operations._crash_runner",
            url,
            str(tmp_path / "data"),
            kind,
            str(work),
            str(CHILD_LEASE),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (work / "started").exists():
        if child.poll() is not None:
            pytest.fail(f"the child process ended early: {child.stderr.read() if child.stderr else ''}")
        assert time.monotonic() < deadline, "the child never reached its blocking step"
        time.sleep(0.05)
    return child, (work / "started").read_text(), work


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    for stream in (child.stdout, child.stderr):
        if stream:
            stream.close()


def _lease_left(store: Store, op_id: str) -> float:
    with store.session() as s:
        row = s.get(OperationRow, op_id)
        assert row is not None and row.lease_expires_at is not None
        return (row.lease_expires_at - utcnow()).total_seconds()


def _recover_once_expired(engine: OperationEngine, store: Store, op_id: str) -> list[str]:
    time.sleep(max(0.0, _lease_left(store, op_id)) + 0.1)
    return engine.recover()


def test_a_dead_runner_is_rolled_back_after_its_lease_and_a_live_one_never_taken_over(
    store: Store, tmp_path: Path, recovering: OperationEngine
) -> None:
    child, op_id, work = _run_child_until_blocked(store, tmp_path, "files")
    try:
        # the child is alive and heartbeating: past its lease length, still nobody takes it over
        assert recovering.recover() == []
        time.sleep(CHILD_LEASE + 0.5)
        assert recovering.recover() == []
        assert store.operations.get(op_id).status == OperationStatus.RUNNING
        assert sorted(p.name for p in work.iterdir()) == ["a", "b", "started"]
    finally:
        _kill(child)

    # dead, but its last lease has not run out yet: still not taken
    assert _lease_left(store, op_id) > 0.5, "the child's heartbeat did not keep the lease fresh"
    assert recovering.recover() == []
    assert store.operations.get(op_id).status == OperationStatus.RUNNING

    assert _recover_once_expired(recovering, store, op_id) == [op_id]
    with pytest.raises(OperationFailed) as info:
        recovering.handle(op_id).wait(timeout=15)
    assert info.value.step == "block"
    assert "stopped at step block" in str(info.value)

    # the rollback ran here, from the journal the dead process left, newest first
    assert (work / UNDO_FILE).read_text() == "b\na\n"
    assert not (work / "a").exists() and not (work / "b").exists()
    assert store.operations.side_effects(op_id) == []
    record = store.operations.get(op_id)
    assert record.status == OperationStatus.FAILED
    assert record.result["error_kind"] == "RunnerLost" and record.result["failed_step"] == "block"
    messages = [e.message for e in recovering.handle(op_id).events()]
    assert messages[:6] == [
        "files queued",
        "make: started",
        "make: done",
        "block: started",
        f"taken over by {recovering.runner_id}",
        "failed: the process running this files stopped at step block",
    ]
    assert messages[-3:] == ["rolling back", "rolled back", "files failed"]
    # recovered once: nothing more to take
    assert recovering.recover() == []


def test_a_kind_whose_recover_finishes_the_work_ends_succeeded(
    store: Store, tmp_path: Path, recovering: OperationEngine
) -> None:
    child, op_id, work = _run_child_until_blocked(store, tmp_path, "files-resumable")
    _kill(child)
    assert _recover_once_expired(recovering, store, op_id) == [op_id]
    result = recovering.handle(op_id).wait(timeout=15)
    assert result == {"files": ["a", "b"], "resumed_at": "block"}
    assert (work / "finished").read_text() == "a,b"
    assert not (work / UNDO_FILE).exists()
    assert store.operations.get(op_id).status == OperationStatus.SUCCEEDED


def test_a_pending_operation_nobody_started_is_run_once_it_is_older_than_the_lease(
    store: Store, recovering: OperationEngine
) -> None:
    # a process that died between writing the row and claiming it
    op = store.operations.create("toy", steps=Steps.steps)
    assert recovering.recover() == []
    time.sleep(1.1)
    assert recovering.recover() == [op.id]
    assert recovering.handle(op.id).wait(timeout=15) == ["prepare", "create", "finish"]


def test_an_orphan_past_its_deadline_is_rolled_back_not_finished(
    store: Store, tmp_path: Path, recovering: OperationEngine
) -> None:
    """Even a kind that could finish on recovery is rolled back once its deadline has passed."""
    child, op_id, work = _run_child_until_blocked(store, tmp_path, "files-resumable")
    _kill(child)
    with store.session() as s:
        row = s.get(OperationRow, op_id)
        assert row is not None
        row.deadline = utcnow()
    assert _recover_once_expired(recovering, store, op_id) == [op_id]
    with pytest.raises(OperationFailed, match="passed its deadline"):
        recovering.handle(op_id).wait(timeout=15)
    assert not (work / "finished").exists()
    assert (work / UNDO_FILE).exists()


def test_an_operation_queued_behind_busy_workers_is_run_elsewhere_when_its_process_dies(
    store: Store, recovering: OperationEngine
) -> None:
    """A process whose only worker is busy queues the next operation; it dies before a worker
    is free. That operation never started: another process runs it afresh (it stays pending
    until a worker claims it), rather than rolling it back as if it had died mid-way."""
    busy = OperationEngine(store, lease_seconds=1, max_workers=1)
    gate = Blocking()
    busy.register(gate)
    busy.register(Steps())
    recovering.register(Blocking())
    try:
        running = busy.submit("blocking")
        assert gate.entered.wait(10)
        queued = busy.submit("toy")
        assert store.operations.get(queued.id).status == OperationStatus.PENDING
        busy.close(wait=False)  # the process "dies": no more heartbeats, the queue is dropped

        _recover_once_expired(recovering, store, running.id)
        assert recovering.handle(queued.id).wait(timeout=15) == ["prepare", "create", "finish"]
        with pytest.raises(OperationFailed, match="stopped at step work"):
            recovering.handle(running.id).wait(timeout=15)
    finally:
        gate.release.set()
        busy.drain(timeout=10)


@contextlib.contextmanager
def _one_worker(store: Store) -> Iterator[tuple[OperationEngine, Blocking]]:
    """An engine of one worker (a lease of 1 s) and the gate its ``blocking`` operation waits at:
    while that runs, every other operation queues, pending."""
    engine = OperationEngine(store, lease_seconds=1, max_workers=1)
    gate = Blocking()
    engine.register(gate)
    engine.register(Steps())
    try:
        yield engine, gate
    finally:
        gate.release.set()
        engine.close(wait=False)
        engine.drain(timeout=10)


def test_an_operation_that_waited_for_a_worker_longer_than_a_lease_runs_to_the_end(store: Store) -> None:
    """While it waits it holds no lease (it is pending), so the heartbeat must not count it as
    lost: once a worker is free it runs and succeeds in this process."""
    with _one_worker(store) as (engine, gate):
        first = engine.submit("blocking")
        assert gate.entered.wait(10)
        waiting = engine.submit("toy")
        time.sleep(1.5)  # several heartbeats (every lease / 3) while it waits
        assert store.operations.get(waiting.id).status == OperationStatus.PENDING
        gate.release.set()
        first.wait(timeout=15)
        assert store.operations.get(first.id).status == OperationStatus.SUCCEEDED
        assert waiting.wait(timeout=15) == ["prepare", "create", "finish"]


def test_a_backlog_queued_here_is_not_read_again_by_every_recovery(store: Store) -> None:
    """Operations waiting for this process's workers are pending and, after a lease, look like
    ones nobody started. Recovery reads only their ids then: the rows (params, results, side
    effects) only of those another process left behind."""
    with _one_worker(store) as (engine, gate):
        running = engine.submit("blocking")
        assert gate.entered.wait(10)
        queued = [engine.submit("toy").id for _ in range(3)]
        left_behind = store.operations.create("toy", steps=Steps.steps)  # by a process that died
        time.sleep(1.2)  # every pending one is now older than a lease
        orphans = store.operations.orphaned(pending_older_than=timedelta(seconds=1))
        assert [op.id for op in orphans] == [*queued, left_behind.id]  # oldest first; the running one is live
        assert store.operations.orphaned(pending_older_than=timedelta(seconds=1), excluding=queued) == orphans[3:]

        with executed(store) as sent:
            assert engine.recover() == [left_behind.id]
        # (the heartbeat's own reads of the operations may come in between: they ask no age)
        reads = [s for s in sent if s.lstrip().upper().startswith("SELECT") and "created_at <" in s]
        assert len(reads) == 2  # the ids, then the one row left behind
        assert "params" not in reads[0] and "params" in reads[1]
        assert store.operations.get(running.id).status == OperationStatus.RUNNING
