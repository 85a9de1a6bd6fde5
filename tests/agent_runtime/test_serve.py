"""``proximity-agent serve`` as a real process: gRPC through a real channel, metrics over HTTP,
graceful SIGTERM; and two served agents on PostgreSQL with one scheduler leader, failing over on kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.fernet import Fernet
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text

from proximity_agent.leader import LeaderElection, lock_key
from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc
from tests.harness.agent_process import ServedAgent as Served
from tests.harness.db import create_pg_database, drop_pg_database

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
LIST_APPS = "/proximity.v1.AppService/ListApps"


def _env(database_url: str, data_dir: Path, key: str, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": str(data_dir),
        "secret_key": key,
        "entry_points": "false",
        "port": 0,
        "metrics_port": 0,
        "leader_check_interval_seconds": 0.5,
        "janitor_interval_seconds": 1,
        "reconcile_interval_seconds": 1,
        **settings,
    }
    return env | {f"PROXIMITY_AGENT_{k.upper()}": str(v) for k, v in values.items()}


@pytest.fixture
def spawned() -> Iterator[list[Served]]:
    processes: list[Served] = []
    yield processes
    for process in processes:
        process.stop()


def test_serve_answers_through_real_channels_and_stops_gracefully(tmp_path: Path, spawned: list[Served]) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'proximity.db'}"
    env = _env(url, tmp_path / "data", Fernet.generate_key().decode())
    created = subprocess.run(
        [sys.executable, "-m", "proximity_agent.cli", "token", "create", "--admin"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = created.stdout.strip()
    agent = Served("agent", env, tmp_path)
    spawned.append(agent)
    port, _identity = agent.serving()
    metrics_port = int(agent.wait_log(lambda e: "metrics_port" in e)["metrics_port"])
    # what lives as long as the process is out of the collector's sight once it serves (settle_heap)
    assert int(agent.wait_log(lambda e: "frozen_objects" in e)["frozen_objects"]) > 50_000

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        apps = apps_pb2_grpc.AppServiceStub(channel)
        listed = apps.ListApps(apps_pb2.ListAppsRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=10)
        assert list(listed.apps) == []
        with pytest.raises(grpc.RpcError) as refused:
            apps.ListApps(apps_pb2.ListAppsRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # Alone, it becomes the scheduler leader soon after it serves. An RPC is observed when its handler
    # returns, which is after the client already has the status (an abort sends it first), and the
    # metrics endpoint is served by another thread: poll until everything expected is there.
    expected = [
        "proximity_scheduler_leader 1.0",
        f'proximity_rpc_duration_seconds_count{{code="OK",method="{LIST_APPS}"}} 1.0',
        f'proximity_rpc_duration_seconds_count{{code="UNAUTHENTICATED",method="{LIST_APPS}"}} 1.0',
    ]
    deadline = time.monotonic() + 15
    while True:
        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        if all(line in body for line in expected) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [line for line in expected if line not in body] == []

    agent.process.send_signal(signal.SIGTERM)
    assert agent.process.wait(timeout=60) == 0
    messages = [str(e.get("message")) for e in agent.logs()]
    assert "SIGTERM: shutting down" in messages and messages[-1] == "proximity-agent stopped"
    assert "releasing the scheduler leadership" in messages
    assert token not in agent.log.read_text()  # the token never reaches the logs
    # the lock is free again: the next agent leads at once
    successor = LeaderElection(url, identity="next", check_interval=0.2)
    successor.start()
    try:
        assert successor.wait_until(True, timeout=5)
    finally:
        successor.stop()


def test_serve_without_a_valid_setting_fails_before_serving(tmp_path: Path) -> None:
    env = _env(
        f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, Fernet.generate_key().decode(), tls_client_ca_file="/ca.pem"
    )
    done = subprocess.run(
        [sys.executable, "-m", "proximity_agent.cli", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "tls_client_ca_file needs TLS" in done.stderr


@pytest.mark.postgres
def test_two_served_agents_one_leader_and_failover_after_kill_9(tmp_path: Path, spawned: list[Served]) -> None:
    url = create_pg_database()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    key = lock_key("scheduler")

    def holder() -> str | None:
        with admin.connect() as conn:
            names = (
                conn.execute(
                    text(
                        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
                        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"hi": key >> 32, "lo": key & 0xFFFF_FFFF},
                )
                .scalars()
                .all()
            )
        assert len(names) <= 1
        return str(names[0]).removeprefix("proximity-agent scheduler ") if names else None

    try:
        secret = Fernet.generate_key().decode()
        agents = [Served(name, _env(url, tmp_path / "data", secret), tmp_path) for name in ("a", "b")]
        spawned.extend(agents)
        identities = {agent.serving()[1]: agent for agent in agents}
        deadline = time.monotonic() + 20
        while holder() not in identities and time.monotonic() < deadline:
            time.sleep(0.05)
        leader = identities[str(holder())]
        follower = next(a for a in agents if a is not leader)
        time.sleep(2)
        assert identities[str(holder())] is leader
        runs = [e for e in follower.logs() if str(e.get("message", "")).startswith("periodic job")]
        assert runs == []

        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=10)
        killed = time.monotonic()
        follower_identity = next(i for i, a in identities.items() if a is follower)
        while holder() != follower_identity:
            assert time.monotonic() - killed < 5, f"no takeover within 5 s (holder: {holder()})"
            time.sleep(0.05)
        follower.wait_log(lambda e: e.get("message") == "periodic job janitor done", timeout=10)

        follower.process.send_signal(signal.SIGTERM)
        assert follower.process.wait(timeout=60) == 0
        assert holder() is None
    finally:
        admin.dispose()
        for agent in spawned:
            agent.stop()
        drop_pg_database(url)
