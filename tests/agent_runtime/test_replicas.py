"""Several agents on one PostgreSQL, each in its own process (tests/agent_runtime/_agent_runner.py):
exactly one runs the periodic jobs; kill -9 it and another takes over within seconds; kill -9 the
one running a deploy and the other finishes or rolls it back once the lease expired."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from proximity_agent.leader import lock_key
from proximity_sdk._client import Proximity
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.operation import OperationStatus
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.store import Store
from tests.harness.db import create_pg_database, drop_pg_database
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import StandinState

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

RUNNER = Path(__file__).resolve().parent / "_agent_runner.py"
ROOT = Path(__file__).resolve().parents[2]
LEASE = 2.0
CHECK = 0.5  # leadership re-checked this often
LISTENING = "LISTEN 0 4096 0.0.0.0:{port} 0.0.0.0:*\n"


class Agent:
    """An agent process; its stdout lines are read in the background, its stderr (JSON logs) go to a file."""

    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.stderr"
        with self.log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(RUNNER)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.identity = ""

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def expect(self, key: str, *, value: object = None, timeout: float = 60.0) -> dict[str, Any]:
        """The next line holding ``key`` (equal to ``value`` when given)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{self.name}: no {key}={value!r} in {timeout} s; seen {self.seen[-10:]}\n{self.stderr()}"
                )
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    raise AssertionError(f"{self.name} exited {self.process.returncode}\n{self.stderr()}") from None
                continue
            self.seen.append(line)
            if key in line and (value is None or line[key] == value):
                return line

    def send(self, **order: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(order) + "\n")
        self.process.stdin.flush()

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def job_runs(self, job: str) -> int:
        return sum(1 for entry in self.logs() if entry.get("message") == f"periodic job {job} done")

    def stderr(self) -> str:
        return self.log.read_text()[-4000:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


class Cluster:
    """Agents on one fresh PostgreSQL database."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.key = Fernet.generate_key().decode()
        self.data_dir = tmp_path / "data"
        self.logs = tmp_path
        self.agents: list[Agent] = []
        self._admin = create_engine(url, isolation_level="AUTOCOMMIT")

    def spawn(self, name: str, **settings: object) -> Agent:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
        values: dict[str, object] = {
            "database_url": self.url,
            "secret_key": self.key,
            "data_dir": str(self.data_dir),
            "entry_points": False,
            "metrics_port": "null",
            "lease_seconds": LEASE,
            "leader_check_interval_seconds": CHECK,
            "recover_interval_seconds": 0.5,
            "reconcile_interval_seconds": 1,
            "janitor_interval_seconds": 1,
            "node_sync_interval_seconds": 1,
            "backup_schedules_interval_seconds": 1,
            "app_updates_interval_seconds": 1,
            "shutdown_grace_seconds": 10,
            **settings,
        }
        env |= {
            f"PROXIMITY_AGENT_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()
        }
        agent = Agent(name, env, self.logs)
        self.agents.append(agent)
        return agent

    def leader_identity(self) -> str | None:
        """Who holds the scheduler lock, from pg_locks (the ground truth), by its application_name."""
        key = lock_key("scheduler")
        with self._admin.connect() as conn:
            rows = (
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
        assert len(rows) <= 1, rows
        return str(rows[0]).removeprefix("proximity-agent scheduler ") if rows else None

    def wait_leader(self, among: list[Agent], *, timeout: float) -> tuple[Agent, float]:
        """The agent that leads once one of ``among`` does, and how long that took."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            holder = self.leader_identity()
            for agent in among:
                if holder == agent.identity:
                    return agent, time.monotonic() - began
            time.sleep(0.05)
        raise AssertionError(
            f"none of {[a.name for a in among]} became leader in {timeout} s (holder: {self.leader_identity()})"
        )

    def close(self) -> None:
        for agent in self.agents:
            agent.stop()
        self._admin.dispose()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    url = create_pg_database()
    made = Cluster(url, tmp_path)
    try:
        yield made
    finally:
        made.close()
        drop_pg_database(url)


def _start(cluster: Cluster, *names: str) -> list[Agent]:
    agents = [cluster.spawn(name) for name in names]  # started together: migrations race under their lock
    for agent in agents:
        agent.identity = agent.expect("ready")["ready"]
    return agents


def test_exactly_one_agent_runs_the_periodic_jobs_and_another_takes_over_after_kill_9(cluster: Cluster) -> None:
    a, b = _start(cluster, "a", "b")
    leader, _ = cluster.wait_leader([a, b], timeout=20)
    follower = b if leader is a else a
    leader.expect("leader", value=True)

    time.sleep(3)  # jobs every second: the leader runs them, the follower never does
    assert cluster.leader_identity() == leader.identity
    assert leader.job_runs("janitor") >= 2 and leader.job_runs("reconcile") >= 2
    assert follower.job_runs("janitor") == 0 and follower.job_runs("reconcile") == 0
    assert not any(line.get("leader") for line in follower.seen)

    leader.kill()  # kill -9: no goodbye, PostgreSQL drops its session and lock
    successor, took = cluster.wait_leader([follower], timeout=15)
    assert successor is follower
    assert took < 3 * CHECK + 2, f"takeover took {took:.1f} s"
    follower.expect("leader", value=True, timeout=10)
    deadline = time.monotonic() + 10
    while follower.job_runs("janitor") < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert follower.job_runs("janitor") >= 1

    # a graceful stop (SIGTERM) gives the leadership back at once
    follower.process.send_signal(signal.SIGTERM)
    assert follower.process.wait(timeout=30) == 0
    follower.expect("stopped", timeout=5)
    assert cluster.leader_identity() is None


@pytest.fixture
def lab_cluster(
    cluster: Cluster, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess, standin_state: StandinState
) -> Cluster:
    """The cluster's database with the harness host (fakepve, the test sshd) registered."""
    with Proximity.local(
        database_url=cluster.url, data_dir=cluster.data_dir, secret_key=cluster.key, entry_points=False
    ) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access)
    standin_state.script("ss", stdout=LISTENING.format(port=3000))
    return cluster


@pytest.mark.parametrize("deployer", ["leader", "follower"])
def test_kill_9_of_the_agent_running_a_deploy_lets_the_other_roll_it_back(
    lab_cluster: Cluster, pve: HarnessPve, standin_state: StandinState, deployer: str
) -> None:
    cluster = lab_cluster
    # `compose up -d` hangs long enough for the kill to land inside the step
    standin_state.script("docker", match="up -d", sleep=30)
    a, b = _start(cluster, "a", "b")
    leader, _ = cluster.wait_leader([a, b], timeout=20)
    # killing the leader also moves the periodic jobs; killing the follower leaves them where they are
    doomed = leader if deployer == "leader" else (b if leader is a else a)
    survivor = b if doomed is a else a

    doomed.send(deploy="crash-1")
    ids = doomed.expect("operation_id")
    op_id, app_id = ids["operation_id"], ids["app_id"]
    doomed.expect("event", value="up: started", timeout=90)
    time.sleep(0.5)  # inside the step: the node command is under way
    doomed.kill()
    killed_at = datetime.now(UTC)

    with Store.open(cluster.url, data_dir=cluster.data_dir, secret_key=cluster.key) as store:
        running = store.operations.get(op_id)
        assert running.status == OperationStatus.RUNNING and running.current_step == "up"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not store.operations.get(op_id).finished:
            time.sleep(0.2)
        done = store.operations.get(op_id)
        events = store.operations.events(op_id)
        app = store.apps.get(app_id)
    assert done.finished, f"still {done.status} after 60 s\n{survivor.stderr()}"
    taken = [e for e in events if e.message.startswith("taken over by ")]
    assert [e.message for e in taken] == [f"taken over by {survivor.identity}"]
    # not before the dead runner's lease expired (its last heartbeat was at most a third of a lease before)
    assert (taken[0].time - killed_at).total_seconds() >= LEASE * 2 / 3 - 0.2, (taken[0].time, killed_at)
    assert cluster.leader_identity() == survivor.identity

    if done.status == OperationStatus.SUCCEEDED:  # finished by the survivor
        assert app.status == AppStatus.RUNNING and pve.ct(int(app.vmid or 0)) is not None
    else:  # rolled back: nothing left behind
        assert done.status == OperationStatus.FAILED and done.result["failed_step"] == "up"
        assert app.status == AppStatus.ERROR and app.vmid is None
        assert pve.cts == [], [(ct.vmid, ct.config.get("hostname")) for ct in pve.cts]
