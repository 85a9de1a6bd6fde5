"""wait_task against real fakepve tasks: OK, WARNINGS, failure, timeout, late visibility, log following."""

from __future__ import annotations

import threading
import time

import pytest

from proximity_sdk.errors import NotFoundError, TaskFailedError, TaskTimeoutError, ValidationError
from proximity_sdk.proxmox import tasks as tasks_module
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.tasks import PollPolicy, wait_task
from proximity_sdk.proxmox.upid import Upid
from tests.harness.pve import HarnessPve

START = "/nodes/pve1/lxc/100/status/start"


def _status_polls(pve: HarnessPve) -> int:
    return sum(1 for r in pve.recorded if r.method == "GET" and r.path.endswith("/status"))


def _log_reads(pve: HarnessPve) -> int:
    return sum(1 for r in pve.recorded if r.method == "GET" and r.path.endswith("/log"))


def test_ok_task_returns_result_without_reading_the_log(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    result = wait_task(pve_client, pve_client.post(START), timeout=10)
    assert result.exitstatus == "OK"
    assert result.warnings == 0
    assert result.upid.type == "vzstart"
    assert result.upid.vmid == 100
    assert result.polls == 1
    assert _log_reads(pve) == 0


def test_warnings_are_success_and_returned(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    pve.task_warnings["vzstart"] = ["WARN: no swap configured", "WARN: nesting is disabled"]
    result = wait_task(pve_client, pve_client.post(START), timeout=10)
    assert result.exitstatus == "WARNINGS: 2"
    assert result.warnings == 2
    assert result.warning_lines == ["WARN: no swap configured", "WARN: nesting is disabled"]
    assert pve.ct(100).status == "running"


def test_failed_task_raises_with_log_tail(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    pve.ct(100).start_error = "startup for container '100' failed"
    upid = pve_client.post(START)
    with pytest.raises(TaskFailedError) as info:
        wait_task(pve_client, upid, timeout=10)
    err = info.value
    assert err.exitstatus == "startup for container '100' failed"
    assert err.upid == upid
    assert err.log_tail[-1] == "TASK ERROR: startup for container '100' failed"
    assert "vzstart 100 on node pve1 failed" in str(err)


def test_named_pve_error_inside_a_task(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    in_task = [e for e in pve.errors_for("POST", START) if e["in_task"]]
    assert in_task, "fakepve's catalogue has task errors for start"
    pve.fail("POST", START, error=in_task[0]["name"])
    with pytest.raises(TaskFailedError) as info:
        wait_task(pve_client, pve_client.post(START), timeout=10)
    assert info.value.exitstatus == in_task[0]["message"]


def test_timeout_raises_and_leaves_the_task_running(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.time_scale = 1.0
    pve.add_ct(100, name="web").start_secs = 30
    upid = pve_client.post(START)
    began = time.monotonic()
    with pytest.raises(TaskTimeoutError) as info:
        wait_task(pve_client, upid, timeout=0.4)
    assert 0.35 <= time.monotonic() - began < 2.0
    assert info.value.upid == upid
    assert "not cancelled" in str(info.value)
    assert pve.tasks[upid]["status"] == "running"
    assert not any(r.method == "DELETE" for r in pve.recorded)


def test_timeout_can_cancel_the_task(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.time_scale = 1.0
    pve.add_ct(100, name="web").start_secs = 30
    upid = pve_client.post(START)
    with pytest.raises(TaskTimeoutError) as info:
        wait_task(pve_client, upid, timeout=0.2, cancel_on_timeout=True)
    assert "asked to stop" in str(info.value)
    deletes = [r for r in pve.recorded if r.method == "DELETE"]
    assert len(deletes) == 1
    assert deletes[0].path.endswith(f"/tasks/{upid}")


def test_400_right_after_dispatch_is_polled_again(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    upid = pve_client.post(START)
    pve.fail("GET", f"/tasks/{upid}/status", 400, "no such task", times=1)
    result = wait_task(pve_client, upid, timeout=10)
    assert result.exitstatus == "OK"
    assert result.polls == 2


def test_unknown_task_is_not_found_after_the_grace(pve_client: ProxmoxClient) -> None:
    ghost = "UPID:pve1:00000001:00000001:6650A1B2:vzstart:100:root@pam:"
    with pytest.raises(NotFoundError):
        wait_task(pve_client, ghost, timeout=5, dispatch_grace=0.1)


def test_task_is_polled_on_its_own_node(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    pve.add_ct(200, name="far", node="pve2")
    upid = pve_client.post("/nodes/pve2/lxc/200/status/start")
    assert Upid.parse(upid).node == "pve2"
    wait_task(pve_client, upid, timeout=10)
    polled = [r.path for r in pve.recorded if r.path.endswith("/status") and "/tasks/" in r.path]
    assert polled
    assert all(p.startswith("/api2/json/nodes/pve2/tasks/") for p in polled)


def test_log_is_followed_with_paging_and_no_line_lost(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.time_scale = 1.0
    pve.add_ct(100, name="web").start_secs = 0.6
    pve.task_warnings["vzstart"] = [f"WARN: line {n}" for n in range(3)]
    seen: list[str] = []
    result = wait_task(pve_client, pve_client.post(START), timeout=10, on_log=seen.extend)
    assert seen == ["WARN: line 0", "WARN: line 1", "WARN: line 2", "TASK WARNINGS: 3"]
    assert result.warnings == 3
    assert result.polls >= 3  # it was running at first
    log_starts = [r.params().get("start") for r in pve.recorded if r.path.endswith("/log")]
    assert log_starts[-1] == "3"  # paged on from the last line seen, not re-read from 0


def test_polling_is_fast_then_slower(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.time_scale = 1.0
    pve.add_ct(100, name="web").start_secs = 1.0
    began = time.monotonic()
    result = wait_task(pve_client, pve_client.post(START), timeout=10)
    late = time.monotonic() - began - 1.0
    assert late < 0.3
    assert 5 <= result.polls <= 10
    assert _status_polls(pve) == result.polls


def test_log_is_read_about_once_a_second_while_the_task_runs(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.time_scale = 1.0
    pve.add_ct(100, name="web").start_secs = 2.0
    pve.task_warnings["vzstart"] = ["WARN: only line"]
    seen: list[str] = []
    result = wait_task(pve_client, pve_client.post(START), timeout=10, on_log=seen.extend, history=None)
    assert seen == ["WARN: only line", "TASK WARNINGS: 1"]  # nothing lost, the end read once stopped
    assert result.polls >= 8
    # at the first poll, about every second after it (2 s), and once stopped: not on every poll
    assert 2 <= _log_reads(pve) <= 4


def test_many_waits_at_once_poll_each_task_less(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    """8 tasks of 1 s waited for at once: each is polled at most every 8 x crowd_delay (0.4 s)
    instead of the lone schedule (7 polls in the first second), and still seen soon after its end."""
    pve.time_scale = 1.0
    policy = PollPolicy(crowd_delay=0.05)
    results: dict[int, float] = {}
    errors: list[BaseException] = []

    def wait(vmid: int) -> None:
        try:
            began = time.monotonic()
            upid = pve_client.post(f"/nodes/pve1/lxc/{vmid}/status/start")
            result = wait_task(pve_client, upid, poll=policy, history=None)  # the no-history schedule
            results[vmid] = result.polls
            assert time.monotonic() - began < 1.0 + 0.4 + 0.5  # one widened delay, plus the load
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    for vmid in range(100, 108):
        pve.add_ct(vmid, name=f"web{vmid}").start_secs = 1.0
    threads = [threading.Thread(target=wait, args=(vmid,)) for vmid in range(100, 108)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not errors
    assert len(results) == 8
    assert max(results.values()) <= 5  # 0 s, then every 0.4 s at most (fewer as the others end)
    assert _status_polls(pve) == sum(results.values())
    assert tasks_module._WAITS.count == 0  # every wait left the count


def test_poll_policy_widens_with_the_waits_in_progress_only_when_asked() -> None:
    policy = PollPolicy(crowd_delay=0.02)
    by_default = PollPolicy()
    for previous, elapsed in ((None, 0.0), (0.05, 0.05), (0.25, 1.0), (1.0, 10.0)):
        alone = policy.next_delay(previous, elapsed)
        # off by default: a few waits at once (most of them sparse) made each one late
        assert by_default.next_delay(previous, elapsed, waiting=16) == by_default.next_delay(previous, elapsed)
        assert policy.next_delay(previous, elapsed, waiting=1) == alone  # a lone wait is not changed
        assert policy.next_delay(previous, elapsed, waiting=16) == max(alone, 16 * 0.02)
        assert policy.next_delay(previous, elapsed, waiting=10_000) == policy.cap  # never wider than cap
    with pytest.raises(ValidationError):
        PollPolicy(crowd_delay=-1)
    with pytest.raises(ValidationError):
        PollPolicy(log_every=-1)


def test_poll_policy_schedule() -> None:
    policy = PollPolicy()

    # Polls (the immediate one included) until the first at or after `length` seconds.
    def polls(length: float) -> tuple[int, list[float]]:
        delays: list[float] = []
        elapsed, prev = 0.0, None
        while elapsed < length:
            prev = policy.next_delay(prev, elapsed)
            delays.append(prev)
            elapsed += prev
        return len(delays) + 1, delays

    count, delays = polls(30.0)
    assert delays[0] == 0.05
    assert all(d <= 0.25 for d, at in zip(delays, _cumsum(delays), strict=True) if at - d < 2.5)
    assert max(delays) <= 2.0
    assert count <= 35
    assert polls(0.5)[0] <= 6
    with pytest.raises(ValidationError):
        PollPolicy(first=0.5, fast_cap=0.25)


def _cumsum(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


def test_bad_upid_and_timeout_refused(pve_client: ProxmoxClient) -> None:
    with pytest.raises(ValidationError):
        wait_task(pve_client, "OK")
    with pytest.raises(ValidationError):
        wait_task(pve_client, "UPID:pve1:00000001:00000001:6650A1B2:vzstart:100:root@pam:", timeout=0)
    assert pve_client.request_count == 0
