"""The periodic jobs: APScheduler's SQLAlchemy job store on the agent's database, the real reconcile,
janitor, node-sync and backup-schedules callables, and recovery on every replica."""

from __future__ import annotations

import pickle
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from proximity_agent.scheduler import JOBS_TABLE, SHARED_JOBS, AgentScheduler, run_job
from proximity_sdk.models.operation import OperationStatus
from tests.agent_runtime.conftest import OpenReplica
from tests.operations._toys import Steps


def _stored(url: str) -> dict[str, dict[str, object]]:
    """The job store's rows, unpickled as APScheduler wrote them."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT id, next_run_time, job_state FROM {JOBS_TABLE}")).all()  # noqa: S608 - a constant
    finally:
        engine.dispose()
    return {row.id: {"next_run_time": row.next_run_time, **pickle.loads(row.job_state)} for row in rows}  # noqa: S301


def test_the_periodic_jobs_live_in_the_job_store_and_the_real_ones_run(
    open_replica: OpenReplica, database_url: str
) -> None:
    replica = open_replica()
    assert replica.leader.wait_until(True, 10)
    for job in SHARED_JOBS:
        assert replica.scheduler.wait_runs(job, 2, timeout=15), (job, replica.scheduler.runs())
    runs = replica.scheduler.runs()
    assert all(runs[job].ok for job in SHARED_JOBS), runs

    stored = _stored(database_url)
    assert set(stored) == set(SHARED_JOBS)
    for job, state in stored.items():
        assert state["func"] == "proximity_agent.scheduler:run_job"
        assert state["args"] == (replica.scheduler.database, job)
        assert state["trigger"].interval == timedelta(seconds=1)  # type: ignore[attr-defined]
        assert state["coalesce"] is True and state["max_instances"] == 1
    # the runs are counted in the agent's metrics too
    assert (
        replica.metrics.registry.get_sample_value("proximity_scheduled_jobs_total", {"job": "janitor", "outcome": "ok"})
        or 0
    ) >= 2


def test_a_new_leader_keeps_unchanged_jobs_and_rewrites_or_drops_the_others(
    open_replica: OpenReplica, database_url: str
) -> None:
    def noop() -> None:
        pass

    first = open_replica(jobs={"reconcile": (noop, 3600), "janitor": (noop, 3600), "node-sync": (noop, 3600)})
    assert first.leader.wait_until(True, 10)
    before = _stored(database_url)
    assert set(before) == {"reconcile", "janitor", "node-sync"}
    first.close(grace=5)

    second = open_replica(jobs={"reconcile": (noop, 3600), "janitor": (noop, 7200), "node-sync": (noop, 0)})
    assert second.leader.wait_until(True, 10)
    after = _stored(database_url)
    assert set(after) == {"reconcile", "janitor"}  # node-sync turned off: gone from the store
    assert after["reconcile"]["next_run_time"] == before["reconcile"]["next_run_time"]  # kept as it was
    assert after["janitor"]["trigger"].interval == timedelta(seconds=7200)  # type: ignore[attr-defined]


def test_a_failing_job_is_recorded_and_runs_again(open_replica: OpenReplica) -> None:
    calls: list[float] = []

    def broken() -> None:
        calls.append(time.monotonic())
        raise RuntimeError("host unreachable")

    replica = open_replica(jobs={"reconcile": (broken, 0.5)})
    assert replica.scheduler.wait_runs("reconcile", 3, timeout=15)
    last = replica.scheduler.runs()["reconcile"]
    assert not last.ok and last.error == "RuntimeError: host unreachable"
    assert (
        replica.metrics.registry.get_sample_value(
            "proximity_scheduled_jobs_total", {"job": "reconcile", "outcome": "error"}
        )
        or 0
    ) >= 3


def test_a_slow_job_never_overlaps_itself(open_replica: OpenReplica) -> None:
    inside = threading.Semaphore(1)
    overlaps: list[int] = []

    def slow() -> None:
        if not inside.acquire(blocking=False):
            overlaps.append(1)
            return
        try:
            time.sleep(1.2)  # longer than its interval
        finally:
            inside.release()

    replica = open_replica(jobs={"janitor": (slow, 0.3)})
    assert replica.scheduler.wait_runs("janitor", 2, timeout=15)
    assert overlaps == []


def test_every_replica_takes_over_orphans_periodically_not_only_at_start(open_replica: OpenReplica) -> None:
    # no shared jobs at all: only the per-replica recovery job can take the orphan over
    replica = open_replica(jobs={})
    replica.px.engine.register(Steps())
    store = replica.px.store
    # what a dead runner leaves behind, made after this replica opened (so not its start-up recovery)
    op = store.operations.create("toy", steps=Steps.steps)
    assert store.operations.claim(op.id, "dead-host:1:gone", timedelta(seconds=0.5))

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not store.operations.get(op.id).finished:
        time.sleep(0.1)
    done = store.operations.get(op.id)
    assert done.status == OperationStatus.FAILED, done
    messages = [e.message for e in store.operations.events(op.id)]
    assert f"taken over by {replica.identity}" in messages
    assert replica.scheduler.runs()["recover"].count >= 1


def test_run_job_outside_a_leader_does_nothing(database_url: str) -> None:
    ran: list[int] = []
    scheduler = AgentScheduler(make_url(database_url), jobs={"janitor": (lambda: ran.append(1), 60)})
    run_job(scheduler.database, "janitor")  # a stale trigger firing in a process that does not lead
    assert ran == []
    scheduler.run("janitor")  # run() itself is what a leader's trigger calls
    assert ran == [1]


@pytest.mark.parametrize("interval", [0, -1])
def test_jobs_with_no_interval_are_off(open_replica: OpenReplica, database_url: str, interval: float) -> None:
    replica = open_replica(jobs={"reconcile": (lambda: None, interval), "janitor": (lambda: None, 3600)})
    assert replica.leader.wait_until(True, 10)
    assert set(_stored(database_url)) == {"janitor"}
    assert [job.id for job in replica.scheduler.stored_jobs()] == ["janitor"]
