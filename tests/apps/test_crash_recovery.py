"""A deploy whose process dies (SIGKILL) inside any of its steps is taken over once its lease
expired and rolled back without a leak; a live deploy is never taken over.

The deploy runs in a child process (tests/apps/_crash_child.py) against the same database (SQLite
file or PostgreSQL) and the same fakepve and sshd as the test. The child kills itself when the
event "<step>: started" arrives; the step is made slow first, so the kill lands inside it (and
the Proxmox task or node command it started goes on without it, as on a real node).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationFailed
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.operation import Operation, OperationStatus
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.store import Store
from tests.apps.conftest import LISTENING
from tests.harness.db import create_pg_database, drop_pg_database
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import StandinState

CHILD = Path(__file__).resolve().parent / "_crash_child.py"
ROOT = Path(__file__).resolve().parents[2]
DEPLOY_STEPS = ("place", "reserve", "template", "create", "start", "address", "docker", "project", "up", "health")
# The dying child's lease: short, so the takeover comes soon (the engine accepts >= 1 s; the
# settings' minimum of 5 s is for the recovering process below).
CHILD_LEASE = 1.0
LEASE = 5.0
# the live child's lease: its "up" step outlasts two of them
ALIVE_LEASE = 1.5
# a static pool, so the deploy reserves an address too (and a leak of it would show)
POOL = {"ip_mode": "static", "ip_pool": "10.0.0.0/28", "gateway": "10.0.0.1"}
SLOW = 3.0  # seconds a slowed step lasts at least
# how long after "<step>: started" the child dies: the step's request, task or command is under way
KILL_DELAY = 0.3
# ... and for the steps whose Proxmox task must have been started by then
TASK_KILL_DELAY = 0.8


class Child:
    """A child process (tests/apps/_crash_child.py): started ahead, it imports the SDK and waits
    for its orders; ``go`` sends them. Its stderr goes to a file (nobody has to drain it)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(CHILD)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )

    def go(self, options: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(options) + "\n")
        self.process.stdin.close()

    def line(self) -> dict[str, Any]:
        """The next JSON line it printed ({} at its end)."""
        assert self.process.stdout is not None
        text = self.process.stdout.readline()
        return json.loads(text) if text else {}

    def reap(self, *, timeout: float = 60.0) -> tuple[int, list[dict[str, Any]]]:
        """Wait for its end: its exit code (negative: killed by that signal) and the JSON lines left."""
        assert self.process.stdout is not None
        timer = threading.Timer(timeout, self.process.kill)  # a hung child fails the test, not hangs it
        timer.start()
        try:
            out = self.process.stdout.read()
            code = self.process.wait()
        finally:
            timer.cancel()
        return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def stderr(self) -> str:
        return self.log.read_text()[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


class ChildPool:
    """Keeps one child started ahead: its imports (seconds on a busy machine) overlap the test before."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._count = 0
        self._ready: Child | None = None
        self.taken: list[Child] = []

    def _start(self) -> Child:
        self._count += 1
        return Child(self._logs / f"child-{self._count}.stderr")

    def warm(self) -> None:
        if self._ready is None:
            self._ready = self._start()

    def take(self) -> Child:
        child = self._ready
        if child is None or child.process.poll() is not None:  # it died waiting: its log tells why
            if child is not None:
                warnings.warn(
                    f"a waiting crash child exited {child.process.returncode}: {child.stderr()}", stacklevel=2
                )
                child.stop()
            child = self._start()
        self._ready = self._start()
        self.taken.append(child)
        return child

    def close(self) -> None:
        for child in [*self.taken, *([self._ready] if self._ready else [])]:
            child.stop()
        self.taken.clear()
        self._ready = None


@pytest.fixture(scope="module")
def child_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChildPool]:
    pool = ChildPool(tmp_path_factory.mktemp("crash-children"))
    pool.warm()
    try:
        yield pool
    finally:
        pool.close()


@dataclass
class CrashLab:
    """One database with the harness host (fakepve, the test sshd) registered in it."""

    database_url: str
    data_dir: Path
    key: str
    pve: HarnessPve
    standins: StandinState
    pool: ChildPool
    host_id: str = ""

    def open(self, *, lease_seconds: float = LEASE) -> Proximity:
        """A Proximity in this process: opening it takes over the orphaned operations."""
        return Proximity.local(
            database_url=self.database_url,
            data_dir=self.data_dir,
            secret_key=self.key,
            entry_points=False,
            lease_seconds=lease_seconds,
        )

    def store(self) -> Store:
        """The database alone: reads it without recovering anything."""
        return Store.open(self.database_url, data_dir=self.data_dir, secret_key=self.key)

    def spawn(
        self,
        hostname: str,
        *,
        kill_at: str | None,
        kill_delay: float = 0.0,
        kill_after_insert: str | None = None,
        lease_seconds: float = CHILD_LEASE,
    ) -> Child:
        """Have a child (started ahead) deploy ``hostname``."""
        child = self.pool.take()
        child.go(
            {
                "database_url": self.database_url,
                "data_dir": str(self.data_dir),
                "secret_key": self.key,
                "hostname": hostname,
                "kill_at": kill_at,
                "kill_delay": kill_delay,
                "kill_after_insert": kill_after_insert,
                "lease_seconds": lease_seconds,
            }
        )
        return child


def _open_lab(
    url: str,
    tmp_path: Path,
    pool: ChildPool,
    pve: HarnessPve,
    pve_ca: str,
    ssh_access: SshAccess,
    standins: StandinState,
) -> Iterator[CrashLab]:
    lab = CrashLab(url, tmp_path / "px", Fernet.generate_key().decode(), pve, standins, pool)
    with lab.open() as px:
        lab.host_id = px.hosts.add(
            "lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access
        ).id
        px.settings.update(**POOL)
    try:
        yield lab
    finally:
        for child in pool.taken:  # a failed test must not leave a deploy running
            child.stop()
        pool.taken.clear()


@pytest.fixture
def crash_lab(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    child_pool: ChildPool,
    pve: HarnessPve,
    pve_ca: str,
    ssh_access: SshAccess,
    standin_state: StandinState,
) -> Iterator[CrashLab]:
    """On SQLite, or on a PostgreSQL database of its own with ``@pytest.mark.parametrize(..., indirect)``."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield from _open_lab(
            f"sqlite:///{tmp_path / 'db' / 'proximity.db'}",
            tmp_path,
            child_pool,
            pve,
            pve_ca,
            ssh_access,
            standin_state,
        )
        return
    url = create_pg_database()
    try:
        yield from _open_lab(url, tmp_path, child_pool, pve, pve_ca, ssh_access, standin_state)
    finally:
        drop_pg_database(url)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


# making one step slow --------------------------------------------------------------------------------


class _SlowStarts:
    """Gives every container that appears in the fake a start task of ``secs`` PVE seconds."""

    def __init__(self, pve: HarnessPve, secs: float) -> None:
        self._pve, self._secs = pve, secs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="slow-starts", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            for ct in list(self._pve.cts):
                ct.start_secs = self._secs

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _slow_down(lab: CrashLab, step: str) -> _SlowStarts | None:
    """Make ``step`` last about SLOW seconds: a Proxmox task, a request or a node command that is
    still going when the process dies."""
    pve, standins = lab.pve, lab.standins
    pve.time_scale = 1.0
    slow_starts = None
    if step in ("place", "reserve"):
        pve.slow_network(0.5)  # every API request of the step (and of those before) takes a while
    elif step == "address":  # DHCP has not answered yet: a link-local address only
        with lab.store() as store:
            store.settings.update(ip_mode="dhcp")
        pve.leases.update(dict.fromkeys(range(100, 120), "169.254.7.7"))
    elif step == "template":
        pve.download_secs = SLOW  # the download task outlives the process that asked for it
    elif step == "create":
        pve.ct_secs["create"] = SLOW  # the create task (lock: create) outlives the process
    elif step == "start":
        slow_starts = _SlowStarts(pve, SLOW)  # the start task outlives the process
    elif step == "docker":  # the Docker check in the container hangs
        standins.script("docker", match="compose version", sleep=SLOW, stdout="Docker Compose version v2.29.7\n")
    elif step == "project":
        standins.script("pct", match="push", sleep=SLOW)
    elif step == "up":
        standins.script("docker", match="up -d", sleep=SLOW)
    elif step == "health":
        standins.script("ss", sleep=SLOW, stdout=LISTENING.format(port=3000))
    standins.script("ss", stdout=LISTENING.format(port=3000))
    return slow_starts


# what must hold after the takeover -----------------------------------------------------------------


def _child_ids(lines: list[dict[str, Any]]) -> tuple[str, str]:
    assert lines and "operation_id" in lines[0], lines
    return str(lines[0]["operation_id"]), str(lines[0]["app_id"])


def _kill_in_step(lab: CrashLab, step: str, hostname: str) -> tuple[str, str]:
    """Run a deploy in a child that dies by SIGKILL inside ``step``; returns (operation id, app id)."""
    slow_starts = _slow_down(lab, step)
    delay = TASK_KILL_DELAY if step in ("create", "start") else KILL_DELAY
    child = lab.spawn(hostname, kill_at=step, kill_delay=delay)
    try:
        code, lines = child.reap()
    finally:
        if slow_starts is not None:
            slow_starts.stop()
    assert code == -signal.SIGKILL, f"child exited {code}: {lines}\n{child.stderr()}"
    assert lines[-1] == {"event": f"{step}: started", "step": step}
    lab.pve.slow_network(0.0)  # the takeover need not be slow
    return _child_ids(lines)


def _wait_orphaned(lab: CrashLab, op_id: str, *, timeout: float = 30.0) -> tuple[Operation, list[dict[str, Any]]]:
    """Until the dead runner's lease expired (read-only: takes nothing over). Returns the
    operation and its side-effect journal as the dead process left them."""
    store = lab.store()
    try:
        before = store.operations.get(op_id), store.operations.side_effects(op_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(op.id == op_id for op in store.operations.orphaned(pending_older_than=timedelta(seconds=LEASE))):
                return before
            time.sleep(0.05)
    finally:
        store.close()
    raise AssertionError(f"operation {op_id} still holds its lease after {timeout} s")


def _assert_nothing_left(
    px: Proximity, lab: CrashLab, op_id: str, app_id: str, *, hostname: str, step: str, journalled: bool
) -> None:
    op = px.operations.get(op_id)
    assert op.status == OperationStatus.FAILED
    assert op.result["failed_step"] == step
    assert f"stopped at step {step}" in str(op.error)
    messages = [e.message for e in px.operations.watch(op_id)]
    assert any(m.startswith("taken over by ") for m in messages), messages
    assert ("rolled back" in messages) == journalled, messages
    assert not any("rollback incomplete" in m for m in messages), messages
    assert px.store.operations.side_effects(op_id) == []

    app = px.apps.get(app_id)
    assert app.status == AppStatus.ERROR
    assert app.config["last_error"]["step"] == step
    assert f"stopped at step {step}" in app.config["last_error"]["message"]
    assert app.vmid is None and app.address is None

    reservations = px.store.reservations
    assert reservations.held_vmids(lab.host_id) == set()
    assert reservations.vmid_reservations() == []
    assert reservations.held_addresses() == set()
    assert reservations.address_reservations() == []
    named = [ct.vmid for ct in lab.pve.cts if ct.config.get("hostname") == hostname]
    assert named == [], f"container(s) {named} of {hostname} leaked"
    assert lab.pve.cts == [], [(ct.vmid, ct.config) for ct in lab.pve.cts]


def _recover_and_check(lab: CrashLab, op_id: str, app_id: str, *, hostname: str, step: str) -> list[dict[str, Any]]:
    """Take the dead deploy over and check that nothing is left; returns the journal it found."""
    dead, journal = _wait_orphaned(lab, op_id)
    assert dead.status == OperationStatus.RUNNING
    assert dead.current_step == step  # the kill landed inside the step
    with lab.open() as px:  # opening it takes the orphan over
        assert op_id in px.engine.running() or px.operations.get(op_id).finished
        with pytest.raises(OperationFailed) as failure:
            px.operations.handle(op_id).wait(timeout=60)
        assert failure.value.step == step
        _assert_nothing_left(px, lab, op_id, app_id, hostname=hostname, step=step, journalled=bool(journal))
    return journal


# the tests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", DEPLOY_STEPS)
def test_deploy_killed_inside_a_step_is_rolled_back_by_the_next_process(crash_lab: CrashLab, step: str) -> None:
    hostname = f"crash-{step}"
    op_id, app_id = _kill_in_step(crash_lab, step, hostname)
    if step in ("create", "start"):  # the process is gone, its Proxmox task goes on
        assert [t["type"] for t in crash_lab.pve.tasklog if "endtime" not in t] == [f"vz{step}"]
    journal = _recover_and_check(crash_lab, op_id, app_id, hostname=hostname, step=step)
    # what the dead process had journalled: the VMID and address once "reserve" is done (the kill
    # in "reserve" comes first, in its first request; "address" runs on DHCP), the container from
    # "create" on
    index = DEPLOY_STEPS.index(step)
    expected = set() if index < 2 else {"vmid"} if step == "address" else {"vmid", "address"}
    if index >= DEPLOY_STEPS.index("create"):
        expected.add("container")
    assert sorted(e["kind"] for e in journal) == sorted(expected)
    if step in ("create", "start"):  # and the takeover waited for it before destroying the container
        with crash_lab.store() as store:
            assert any(" is busy (" in e.message for e in store.operations.events(op_id))


@pytest.mark.postgres
@pytest.mark.parametrize("crash_lab", ["postgresql"], indirect=True)
@pytest.mark.parametrize("step", ["reserve", "create", "up"])
def test_deploy_killed_inside_a_step_is_rolled_back_on_postgresql(crash_lab: CrashLab, step: str) -> None:
    hostname = f"crash-pg-{step}"
    op_id, app_id = _kill_in_step(crash_lab, step, hostname)
    _recover_and_check(crash_lab, op_id, app_id, hostname=hostname, step=step)


@pytest.mark.parametrize("table", ["vmid_reservations", "address_reservations"])
def test_deploy_killed_between_a_reservation_and_its_journal_entry(crash_lab: CrashLab, table: str) -> None:
    # no event marks this window: the child dies at its first statement after the INSERT committed
    crash_lab.standins.script("ss", stdout=LISTENING.format(port=3000))
    child = crash_lab.spawn(f"gap-{table[:4]}", kill_at=None, kill_after_insert=table)
    code, lines = child.reap()
    assert code == -signal.SIGKILL, f"child exited {code}: {lines}\n{child.stderr()}"
    op_id, app_id = _child_ids(lines)
    with crash_lab.store() as store:
        held = store.reservations.vmid_reservations() + store.reservations.address_reservations()
        journal = store.operations.side_effects(op_id)
    # the VMID's reservation commits on its own (the allocator asks Proxmox before it) and never
    # reached the journal. The address is reserved inside the unit of work that journals it and
    # the VMID: a kill there leaves none of that unit, so the same VMID alone is held
    assert [type(r).__name__ for r in held] == ["VmidReservation"]
    assert journal == []
    _recover_and_check(crash_lab, op_id, app_id, hostname=f"gap-{table[:4]}", step="reserve")


@pytest.mark.parametrize("crash_lab", BACKENDS, indirect=True)
def test_a_live_deploy_is_never_taken_over(crash_lab: CrashLab) -> None:
    # the child's "up" lasts longer than two of its leases: only its heartbeat keeps the operation its own
    crash_lab.pve.time_scale = 1.0
    crash_lab.standins.script("docker", match="up -d", sleep=2 * ALIVE_LEASE + 1)
    crash_lab.standins.script("ss", stdout=LISTENING.format(port=3000))
    child = crash_lab.spawn("alive-1", kill_at=None, lease_seconds=ALIVE_LEASE)
    op_id, app_id = _child_ids([child.line()])
    while (line := child.line()).get("event") != "up: started":
        assert line, f"the child ended before step up: {child.reap()} {child.stderr()}"

    with crash_lab.open() as px:  # opening recovers orphans: this operation is none
        assert px.engine.running() == []
        until = time.monotonic() + 2 * ALIVE_LEASE
        while time.monotonic() < until:
            assert px.engine.recover() == []
            op = px.operations.get(op_id)
            assert op.status == OperationStatus.RUNNING and op.current_step == "up"
            time.sleep(0.5)

    code, lines = child.reap()
    assert code == 0, f"{lines}\n{child.stderr()}"
    assert lines[-1] == {"done": app_id, "status": "running"}
    with crash_lab.store() as store:
        op = store.operations.get(op_id)
        assert op.status == OperationStatus.SUCCEEDED
        assert not any(e.message.startswith("taken over") for e in store.operations.events(op_id))
        app = store.apps.get(app_id)
        assert app.status == AppStatus.RUNNING
        assert crash_lab.pve.ct(int(app.vmid or 0)) is not None
