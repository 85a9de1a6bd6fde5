"""Waits that learn: the task-length history and the schedule it gives (issue 18, item 1)."""

from __future__ import annotations

import itertools
import math
import time

import pytest

from proximity_sdk.errors import TaskFailedError, ValidationError
from proximity_sdk.proxmox._task_history import Expected, TaskHistory
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.tasks import PollPolicy, wait_task
from tests.harness.pve import HarnessPve

KIND = ("https://pve:8006", "pve1", "vzstart")


def test_history_keeps_the_recent_range_per_kind() -> None:
    history = TaskHistory(keep=3, max_kinds=2)
    assert history.expected(KIND) is None
    for seconds in (10.0, 12.0, 8.0, 9.0):  # 10.0 falls out (keep=3)
        history.record(KIND, seconds)
    assert history.expected(KIND) == Expected(low=8.0, high=12.0, samples=3)
    history.record(KIND, math.nan)
    history.record(KIND, -1.0)
    assert history.expected(KIND) == Expected(low=8.0, high=12.0, samples=3)
    other = ("https://pve:8006", "pve2", "vzstart")
    third = ("https://other:8006", "pve1", "vzstart")
    history.record(other, 1.0)
    history.record(KIND, 9.5)  # KIND is now the most recent kind
    history.record(third, 2.0)  # evicts `other`, the least recent
    assert history.expected(other) is None
    assert history.expected(KIND) is not None
    assert history.expected(third) == Expected(low=2.0, high=2.0, samples=1)
    with pytest.raises(ValidationError):
        TaskHistory(keep=0)


def _wait(policy: PollPolicy, length: float, expected: Expected | None) -> tuple[float, int, list[float]]:
    """(seconds late, polls with the immediate one, poll times) for a task of `length` seconds."""
    at, previous, times = 0.0, None, [0.0]
    while at < length:
        previous = policy.next_delay(previous, at, expected)
        at += previous
        times.append(at)
    return at - length, len(times), times


@pytest.mark.parametrize("usual", [0.5, 2.0, 10.0, 30.0, 60.0])
def test_learned_schedule_meets_the_goals_for_tasks_varying_30_percent(usual: float) -> None:
    policy = PollPolicy()
    expected = Expected(low=0.72 * usual, high=1.28 * usual, samples=8)
    for step in range(61):
        length = usual * (0.7 + 0.01 * step)
        late, polls, _times = _wait(policy, length, expected)
        assert late <= 0.045 * length + 1e-9, (usual, length, late)
        if usual <= 30:
            assert polls <= 35, (usual, length, polls)
    # Without history the old schedule stays: 30 s costs at most 35 polls but up to 30 s is
    # seen later than 4.5% (at 60 s its 2 s cap happens to be within it).
    assert _wait(policy, 30.0, None)[1] <= 35
    if usual <= 30:
        lengths = [usual * (0.7 + 0.01 * step) for step in range(61)]
        worst = max(_wait(policy, length, None)[0] / length for length in lengths)
        assert worst > 0.045  # the learned schedule is what makes the difference


def test_learned_schedule_is_sparse_before_the_usual_end_but_fast_at_first() -> None:
    policy = PollPolicy()
    expected = Expected(low=25.0, high=35.0, samples=5)
    _late, _polls, times = _wait(policy, 30.0, expected)
    learned_first = [t for t in times if t <= policy.early]
    _late, _polls, unknown_times = _wait(policy, 30.0, None)
    # The first half second is the no-history schedule: an instant failure is seen as fast.
    assert learned_first == [t for t in unknown_times if t <= policy.early]
    before_window = [t for t in times if policy.early < t < 0.8 * 25.0 - 1.0]
    assert len(before_window) <= 6
    # The 250 ms cap bounds lateness for long tasks, at the cost of many more polls.
    capped = PollPolicy(late_cap=0.25)
    late, polls, _ = _wait(capped, 34.0, expected)
    assert late <= 0.25 + 1e-9
    assert polls > 35


def test_past_twice_the_usual_end_the_policy_backs_off() -> None:
    policy = PollPolicy()
    expected = Expected(low=1.0, high=1.2, samples=3)
    _late, _polls, times = _wait(policy, 60.0, expected)
    gaps_late = [b - a for a, b in itertools.pairwise(times) if a > 20]
    assert max(gaps_late) == policy.cap  # an outlier that runs on is polled like an unknown task


def test_a_kind_of_widely_varying_length_is_polled_as_unknown() -> None:
    policy = PollPolicy()
    wide = Expected(low=2.0, high=60.0, samples=10)  # e.g. backups of guests of any size
    assert _wait(policy, 40.0, wide)[2] == _wait(policy, 40.0, None)[2]
    narrow = Expected(low=30.0, high=50.0, samples=10)
    assert _wait(policy, 40.0, narrow)[2] != _wait(policy, 40.0, None)[2]


def test_new_policy_fields_are_checked() -> None:
    with pytest.raises(ValidationError, match="late_ratio"):
        PollPolicy(late_ratio=0)
    with pytest.raises(ValidationError, match="margin"):
        PollPolicy(margin=1.0)
    with pytest.raises(ValidationError, match="late_cap"):
        PollPolicy(late_cap=0.001)
    with pytest.raises(ValidationError, match="spread"):
        PollPolicy(spread=0.5)


def test_wait_task_learns_the_length_and_notices_the_next_task_sooner(
    pve_client: ProxmoxClient, pve: HarnessPve
) -> None:
    pve.time_scale = 1.0
    history = TaskHistory()
    kind = (pve_client.url, "pve1", "vzstart")
    pve.add_ct(100, name="a").start_secs = 1.0
    first = wait_task(pve_client, pve_client.post("/nodes/pve1/lxc/100/status/start"), history=history)
    seen = history.expected(kind)
    assert seen is not None and seen.samples == 1
    assert 0.9 <= seen.low <= 1.3  # the middle between the last "running" and the "stopped" poll
    pve.add_ct(101, name="b").start_secs = 1.0
    upid = pve_client.post("/nodes/pve1/lxc/101/status/start")
    second = wait_task(pve_client, upid, history=history)
    late = time.monotonic() - pve.task_finished_at[upid]
    assert late < 0.15  # 4.5% of 1 s plus a request, where the unknown schedule may wait 250 ms
    learned = history.expected(kind)
    assert learned is not None and learned.samples == 2
    assert learned.low <= second.waited and learned.high <= first.waited + second.waited
    assert first.polls >= 3 and second.polls >= 3


def test_failed_tasks_and_history_none_are_not_learned(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    history = TaskHistory()
    kind = (pve_client.url, "pve1", "vzstart")
    pve.add_ct(100, name="web")
    pve.ct(100).start_error = "startup for container '100' failed"
    with pytest.raises(TaskFailedError):
        wait_task(pve_client, pve_client.post("/nodes/pve1/lxc/100/status/start"), history=history)
    assert history.expected(kind) is None
    pve.add_ct(101, name="ok")
    wait_task(pve_client, pve_client.post("/nodes/pve1/lxc/101/status/start"), history=None)
    assert history.expected(kind) is None
    wait_task(pve_client, pve_client.post("/nodes/pve1/lxc/101/status/stop"), history=history)
    assert history.expected((pve_client.url, "pve1", "vzstop")) is not None
