"""The node-side task watch: a task's end seen on its node through the real sshd, as PVE sees it.

The sandbox's fake runs each task as a real process of this machine (``worker_processes``) and the
harness sshd runs on this machine too, so the watch reads the very /proc entry PVE's status API
would (pve-manager ``PVE/API2/Tasks.pm`` read_task_status)."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proximity_sdk import Proximity
from proximity_sdk.errors import UnreachableError
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.proxmox._task_history import Expected, TaskHistory
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.shell import NodeShell
from proximity_sdk.proxmox.task_watch import NodeTaskWatch
from proximity_sdk.proxmox.tasks import PollPolicy, wait_task
from proximity_sdk.proxmox.upid import Upid
from proximity_sdk.sandbox._workers import proc_starttime
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve

pytestmark = pytest.mark.pve(time_scale=1.0)


def _status_polls(pve: HarnessPve, upid: str) -> int:
    return sum(1 for r in pve.recorded if r.method == "GET" and r.path.endswith("/status") and upid in r.path)


def _start(pve: HarnessPve, client: ProxmoxClient, vmid: int, seconds: float) -> str:
    pve.add_ct(vmid, name=f"ct{vmid}").start_secs = seconds
    return str(client.post(f"/nodes/pve1/lxc/{vmid}/status/start"))


class _Counting:
    """The node shell, counting the commands the watch runs."""

    def __init__(self, shell: NodeShell) -> None:
        self.shell = shell
        self.runs = 0

    def run(self, node: str, argv: list[str], *, timeout: float, on_output: Any = None) -> Any:
        self.runs += 1
        return self.shell.run(node, argv, timeout=timeout, on_output=on_output)


@pytest.fixture
def counting(node_shell: NodeShell) -> _Counting:
    return _Counting(node_shell)


@pytest.fixture
def watch(counting: _Counting) -> Iterator[NodeTaskWatch]:
    """A watch over the harness sshd, its commands counted by ``counting``."""
    watch = NodeTaskWatch(lambda: counting, slice_seconds=1.0)  # type: ignore[arg-type,return-value]
    yield watch
    watch.close()


def test_the_harness_runs_each_task_as_a_process_that_lives_exactly_while_it_runs(
    pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    pve.worker_processes = True
    upid = Upid.parse(_start(pve, pve_client, 100, 0.5))
    # the UPID names the process as PVE's does: its pid, and its start time from /proc as pstart
    assert proc_starttime(upid.pid) == upid.pstart
    assert pve_client.task_status(upid).running
    deadline = time.monotonic() + 10
    while pve_client.task_status(upid).running and time.monotonic() < deadline:
        assert Path(f"/proc/{upid.pid}").exists()  # running: the process lives
        time.sleep(0.02)
    for _ in range(100):  # stopped first, then the process ends (a few ms later)
        if not Path(f"/proc/{upid.pid}").exists():
            break
        time.sleep(0.01)
    assert not Path(f"/proc/{upid.pid}").exists()


def test_a_watched_task_is_seen_to_end_at_once_with_a_few_polls(
    pve: HarnessPve, pve_client: ProxmoxClient, watch: NodeTaskWatch
) -> None:
    pve.worker_processes = True
    upid = _start(pve, pve_client, 100, 3.0)
    result = wait_task(pve_client, upid, timeout=30, history=None, watch=watch)
    late = time.monotonic() - pve.task_finished_at[upid]
    assert result.exitstatus == "OK"
    # unwatched, a 3 s task with no history is polled about 10 times and seen up to ~0.5 s late;
    # watched: the first polls (sooner than the watch can tell), then the end it reports
    assert _status_polls(pve, upid) <= 5, _status_polls(pve, upid)
    assert late < 0.5, late
    assert watch.watched("pve1")


def test_the_client_s_watch_is_used_when_none_is_given(
    pve: HarnessPve, pve_client: ProxmoxClient, watch: NodeTaskWatch
) -> None:
    pve.worker_processes = True
    pve_client.task_watch = watch
    upid = _start(pve, pve_client, 100, 2.0)
    wait_task(pve_client, upid, timeout=30, history=None)
    assert _status_polls(pve, upid) <= 5, _status_polls(pve, upid)


def test_tasks_of_one_node_share_one_command_and_each_is_seen_at_once(
    pve: HarnessPve, pve_client: ProxmoxClient, watch: NodeTaskWatch, counting: _Counting
) -> None:
    pve.worker_processes = True
    lengths = {100: 5.0, 101: 5.6, 102: 6.2, 103: 6.8}
    upids = {vmid: _start(pve, pve_client, vmid, seconds) for vmid, seconds in lengths.items()}
    returned: dict[int, float] = {}

    def wait(vmid: int) -> None:
        wait_task(pve_client, upids[vmid], timeout=30, history=None, watch=watch)
        returned[vmid] = time.monotonic()

    threads = [threading.Thread(target=wait, args=(vmid,)) for vmid in lengths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    watch.close()
    assert set(returned) == set(lengths)
    for vmid, upid in upids.items():
        assert returned[vmid] - pve.task_finished_at[upid] < 0.5, (vmid, returned[vmid] - pve.task_finished_at[upid])
        # unwatched, 18 polls for the 5 s task and more for the others; until the node's next
        # command takes a wait in (within a slice) it polls as unwatched
        assert _status_polls(pve, upid) <= 12, (vmid, _status_polls(pve, upid))
    # one command per slice of a second for all four, not one per task or per end
    assert counting.runs <= 9, counting.runs


def test_the_check_reads_what_pve_reads(node_shell: NodeShell, tmp_path: Path) -> None:
    watch = NodeTaskWatch(lambda: node_shell, slice_seconds=0.2)
    # a command name with ") " in it: PVE's pattern, and ours, take the start time after the last one
    odd = tmp_path / "odd) name"
    odd.symlink_to("/bin/sleep")
    alive = subprocess.Popen([str(odd), "30"])
    try:
        start = proc_starttime(alive.pid)
        live, wrong_start, no_such = f"{alive.pid}:{start}", f"{alive.pid}:{start + 1}", f"{2**22 + 7}:{start}"
        assert watch._check("pve1", {live: []}) == set()
        assert watch._check("pve1", {live: [], wrong_start: [], no_such: []}) == {wrong_start, no_such}
        own = f"{os.getpid()}:{proc_starttime(os.getpid())}"
        assert watch._check("pve1", {own: [], live: []}) == set()
    finally:
        alive.kill()
        alive.wait()
    assert watch._check("pve1", {live: []}) == {live}


def test_a_node_whose_processes_are_not_the_api_s_is_not_watched_again(
    pve: HarnessPve, pve_client: ProxmoxClient, watch: NodeTaskWatch, caplog: pytest.LogCaptureFixture
) -> None:
    # fakepve's own UPIDs name no process of this machine: the watch sees them "gone" at once
    upid = _start(pve, pve_client, 100, 1.5)
    with caplog.at_level(logging.WARNING, logger="proximity_sdk.proxmox.task_watch"):
        result = wait_task(pve_client, upid, timeout=30, history=None, watch=watch)
    assert result.exitstatus == "OK"
    assert pve.task_finished_at[upid] <= time.monotonic()
    assert not watch.watched("pve1")
    assert "not watching tasks on node pve1 any more" in caplog.text
    with watch.watching(Upid.parse(upid)) as entry:
        assert entry is None


def test_a_watch_command_that_fails_leaves_the_wait_to_polling_for_a_while(
    pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    pve.worker_processes = True

    class Down:
        runs = 0

        def run(self, node: str, argv: list[str], *, timeout: float, on_output: Any = None) -> Any:
            Down.runs += 1
            raise UnreachableError(f"node {node} cannot be reached over SSH")

    watch = NodeTaskWatch(lambda: Down(), slice_seconds=1.0, retry_after=2.0)  # type: ignore[arg-type,return-value]
    upid = _start(pve, pve_client, 100, 0.6)
    result = wait_task(pve_client, upid, timeout=30, history=None, watch=watch, poll=PollPolicy(watched_every=20))
    # it ended at about 0.6 s, not at the 20 s safety poll: the failed watch woke it and it polled
    assert result.exitstatus == "OK"
    assert time.monotonic() - pve.task_finished_at[upid] < 1.0
    assert Down.runs == 1
    assert not watch.watched("pve1")
    time.sleep(max(0.0, pve.task_finished_at[upid] + 1.6 - time.monotonic()))
    assert watch.watched("pve1")  # tried again after retry_after


def test_a_host_with_ssh_gets_its_tasks_watched(
    tmp_path: Path, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess
) -> None:
    with Proximity.local(data_dir=tmp_path / "px", entry_points=False) as px:
        with_ssh = px.hosts.add(
            "lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access
        )
        api_only = px.hosts.add("api", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca)
        assert isinstance(px._clients.get(with_ssh.id).task_watch, NodeTaskWatch)
        assert px._clients.get(api_only.id).task_watch is None


def test_the_policy_refuses_a_safety_poll_interval_of_zero() -> None:
    from proximity_sdk.errors import ValidationError

    with pytest.raises(ValidationError, match="watched_every > 0"):
        PollPolicy(watched_every=0)


def test_a_wake_the_api_cannot_confirm_leaves_the_node_watched_and_the_wait_polling(
    pve: HarnessPve, pve_client: ProxmoxClient, watch: NodeTaskWatch
) -> None:
    pve.worker_processes = True
    upid = _start(pve, pve_client, 100, 1.0)
    # the node stops answering the API just before its task ends, and answers again 0.8 s later
    threading.Timer(0.8, pve.set_node_offline, args=("pve1",)).start()
    back = threading.Timer(1.6, pve.set_node_offline, args=("pve1",), kwargs={"offline": False})
    back.start()
    try:
        result = wait_task(pve_client, upid, timeout=30, history=None, watch=watch)
    finally:
        back.cancel()
    assert result.exitstatus == "OK"
    assert watch.watched("pve1")  # a 595 is not the API saying "running"
    assert _status_polls(pve, upid) < 30  # the spent wake does not turn into a busy loop


def test_a_wait_the_watch_turns_down_holds_no_lock_while_it_polls() -> None:
    watch = NodeTaskWatch(lambda: None)  # type: ignore[arg-type,return-value]  (no command runs here)
    watch.distrust("pve1", why="a test")
    upid = Upid.parse("UPID:pve1:00001234:00005678:6650A1B2:vzstart:100:root@pam:")
    with watch.watching(upid) as entry:
        assert entry is None
        other = threading.Thread(target=watch.watched, args=("pve2",))  # another wait's question
        other.start()
        other.join(2)
        assert not other.is_alive()  # was: blocked until this wait ended
    watch.close()
    with watch.watching(upid) as entry:
        assert entry is None
        other = threading.Thread(target=watch.watched, args=("pve2",))
        other.start()
        other.join(2)
        assert not other.is_alive()


def test_the_watch_is_asked_only_where_it_sees_an_end_sooner_than_the_schedule() -> None:
    policy, watch = PollPolicy(), NodeTaskWatch(lambda: None)  # type: ignore[arg-type,return-value]
    short, long = Expected(low=0.35, high=0.65, samples=4), Expected(low=7.0, high=13.0, samples=4)
    # 0.5 s tasks +-30%: the dense window polls every 15 ms, sooner than the watch answers
    assert policy.window_delay(short) < watch.latency
    assert not policy.watch_helps(short, 0.0, watch.latency)
    # ... unless the task outran its history: the schedule falls back to the unknown one
    assert policy.watch_helps(short, 1.4, watch.latency)
    # 10 s tasks +-30%: every 0.25 s there; the watch tells the end sooner
    assert policy.window_delay(long) >= watch.latency
    assert policy.watch_helps(long, 0.0, watch.latency)
    assert policy.watch_helps(None, 0.0, watch.latency)  # an unknown kind
    assert PollPolicy(late_cap=0.02).window_delay(long) == 0.02


def test_a_short_kind_is_waited_for_without_a_watch_command_unless_it_outruns_its_history(
    pve: HarnessPve, pve_client: ProxmoxClient, watch: NodeTaskWatch, counting: _Counting
) -> None:
    pve.worker_processes = True
    history = TaskHistory()
    for seconds in (0.4, 0.5, 0.6):
        history.record((pve_client.url, "pve1", "vzstart"), seconds)
    # its schedule polls sooner than the watch could answer: a command would save no poll
    upid = _start(pve, pve_client, 100, 0.5)
    assert wait_task(pve_client, upid, timeout=30, history=history, watch=watch).exitstatus == "OK"
    assert counting.runs == 0
    # 3 s where 0.4-0.6 s was usual: past twice its history it is watched after all
    upid = _start(pve, pve_client, 101, 3.0)
    assert wait_task(pve_client, upid, timeout=30, history=history, watch=watch).exitstatus == "OK"
    assert time.monotonic() - pve.task_finished_at[upid] < 0.5
    assert counting.runs >= 1
