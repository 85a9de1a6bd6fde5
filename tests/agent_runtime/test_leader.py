"""Leader election in one process: several candidates on one database, exactly one leads; when it
stops or its database connection dies, another takes over."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from proximity_agent.leader import LeaderElection, lock_key
from tests.harness.db import create_pg_database, drop_pg_database

INTERVAL = 0.2


def _candidates(url: str, count: int, events: list[tuple[str, str]]) -> list[LeaderElection]:
    def elected(name: str) -> None:
        events.append((name, "elected"))

    def lost(name: str) -> None:
        events.append((name, "lost"))

    return [
        LeaderElection(
            url,
            identity=f"agent-{i}",
            name="test",
            check_interval=INTERVAL,
            on_elected=functools.partial(elected, f"agent-{i}"),
            on_lost=functools.partial(lost, f"agent-{i}"),
        )
        for i in range(count)
    ]


def _leaders(candidates: list[LeaderElection]) -> list[LeaderElection]:
    return [c for c in candidates if c.is_leader]


def _settle(candidates: list[LeaderElection], *, timeout: float = 10.0) -> LeaderElection:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = _leaders(candidates)
        assert len(leaders) <= 1, [c.identity for c in leaders]
        if leaders:
            return leaders[0]
        time.sleep(0.02)
    raise AssertionError("nobody became leader")


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'proximity.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def test_exactly_one_leads_and_the_next_takes_over_when_it_stops(shared_url: str) -> None:
    events: list[tuple[str, str]] = []
    candidates = _candidates(shared_url, 3, events)
    for candidate in candidates:
        candidate.start()
    try:
        leader = _settle(candidates)
        time.sleep(5 * INTERVAL)  # several rounds: still exactly one, the same one
        assert _leaders(candidates) == [leader]
        leader.stop()
        assert (leader.identity, "lost") in events
        rest = [c for c in candidates if c is not leader]
        second = _settle(rest, timeout=5 * INTERVAL + 2)
        assert second is not leader and not leader.is_leader
        assert [name for name, what in events if what == "elected"] == [leader.identity, second.identity]
    finally:
        for candidate in candidates:
            candidate.stop()


@pytest.mark.postgres
def test_the_lock_is_visible_in_pg_locks_and_a_dead_connection_hands_it_over(pg_url: str) -> None:
    events: list[tuple[str, str]] = []
    candidates = _candidates(pg_url, 2, events)
    for candidate in candidates:
        candidate.start()
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        leader = _settle(candidates)
        key = lock_key("test")
        holder = text(
            "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        with admin.connect() as conn:
            [(pid, application)] = conn.execute(holder, {"hi": key >> 32, "lo": key & 0xFFFF_FFFF}).all()
            assert application == f"proximity-agent test {leader.identity}"
            # the leader's connection dies (as when its process is killed or the network cuts it)
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other = next(c for c in candidates if c is not leader)
        assert other.wait_until(True, timeout=10 * INTERVAL + 5)
        assert leader.wait_until(False, timeout=5)  # the old leader noticed and stepped down
        assert (leader.identity, "lost") in events
        with admin.connect() as conn:
            [(_, application)] = conn.execute(holder, {"hi": key >> 32, "lo": key & 0xFFFF_FFFF}).all()
        assert application == f"proximity-agent test {other.identity}"
        # and the old leader competes again: it takes over when the new one stops
        other.stop()
        assert leader.wait_until(True, timeout=10 * INTERVAL + 5)
    finally:
        admin.dispose()
        for candidate in candidates:
            candidate.stop()


def test_a_failing_on_elected_hands_the_leadership_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'proximity.db'}"
    attempts: list[int] = []

    def refuse() -> None:
        attempts.append(1)
        raise RuntimeError("cannot start the scheduler")

    failing = LeaderElection(url, identity="failing", check_interval=INTERVAL, on_elected=refuse)
    failing.start()
    try:
        deadline = time.monotonic() + 10
        while len(attempts) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(attempts) >= 2 and not failing.is_leader  # it released the lock and tried again
    finally:
        failing.stop()
    healthy = LeaderElection(url, identity="healthy", check_interval=INTERVAL)
    healthy.start()
    try:
        assert healthy.wait_until(True, timeout=5)
    finally:
        healthy.stop()
