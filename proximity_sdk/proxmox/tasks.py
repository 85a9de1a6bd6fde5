"""Waiting for Proxmox tasks (UPIDs): polling, log following, outcome.

The task is polled on the node named in its UPID. Polls learn: each successful task's
length is kept per API host, node and task type (``_task_history``), and the next task of
that kind is polled sparsely before its usual end and densely around it. With no history
polling starts fast (most guest tasks finish in a second or two) and slows down in
proportion to how long the task has already run, so a long task costs few requests while
the added delay stays a small share of its length (see :class:`PollPolicy` and
``bench/task_wait.py``). When many tasks are waited for at once in one process, each is
polled less often, and a followed log is read about once a second, not on every poll. On a host
with a node shell the task's end is also watched on its node (``task_watch.py``: Proxmox's own
"is the worker process alive" test), which wakes the wait at once and spares most polls.

Outcome, as Proxmox itself judges it (``PVE::Tools::upid_status_is_error``):
``OK`` and ``WARNINGS: n`` are success (warnings are returned, not raised); any other
exit status is a :class:`TaskFailedError` carrying the end of the task log (pve-common
``PVE::UPID::status_is_error``: ``unexpected status``, PVE's word for a log whose last line is no
outcome, is an error too). Giving up waiting raises :class:`TaskTimeoutError` and leaves the
task running unless ``cancel_on_timeout`` asks to stop it.

A node that stops answering while its task runs (HTTP 595, a cut connection) does not end the
wait: the task goes on without us and its UPID can read ``TASK OK`` minutes later, so polling
continues for up to ``unreachable_grace`` seconds of silence (within ``timeout``).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from proximity_sdk.errors import (
    InvalidParameterError,
    NotFoundError,
    ProximityError,
    TaskFailedError,
    TaskTimeoutError,
    UnavailableError,
    ValidationError,
)
from proximity_sdk.models.proxmox import TaskStatus
from proximity_sdk.proxmox._task_history import SHARED, Expected, TaskHistory
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.task_watch import NodeTaskWatch, WatchedTask
from proximity_sdk.proxmox.upid import Upid

__all__ = ["LogCallback", "PollPolicy", "TaskResult", "wait_task"]

LogCallback = Callable[[list[str]], object]

_WARNINGS = re.compile(r"^WARNINGS: (\d+)$")
# PVE's task log writer prefixes warnings with "WARN: " (PVE::RESTEnvironment::log_warn).
_WARN_LINE = re.compile(r"^\s*WARN(ING)?\b", re.IGNORECASE)
# PVE::Tools::dump_logfile answers an empty log with this single line.
_NO_CONTENT = "no content"
LOG_PAGE = 500


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """When to poll a task's status.

    The first poll is immediate. With no history of the task's kind, the interval starts at
    ``first`` and grows by ``factor`` per poll, capped at ``fast_cap`` while the task is
    younger than ``fast_window`` seconds (short tasks end within ``fast_cap`` of finishing);
    after that the cap is ``ratio`` x the time already waited, at most ``cap``.

    With an :class:`Expected` range (``low``..``high``) the same schedule runs for the first
    ``early`` seconds (an instant failure is still seen at once); then polls halve the way
    to ``(1 - margin) x low`` and, from there until ``2 x high``, come every ``late_ratio``
    x the time waited (never closer than ``min_delay``, never wider than ``late_cap`` when
    set); past ``2 x high`` the no-history schedule takes over again. A kind whose recent
    lengths spread wider than ``spread`` x (longest over shortest, e.g. backups of guests of
    any size) is polled as if it had no history: a dense window that wide would cost more
    polls than it saves.

    Trade-off (bench/task_wait.py, tasks varying +-30% around their usual length): the
    default sees a task within 4.5% of its length (plus one request's latency) at about
    31 polls for a 30 s task. ``late_cap=0.25`` also bounds the delay to 250 ms for long
    tasks, but must then poll every 250 ms across the whole +-30% window: about 100 polls
    for a 30 s task, 190 for 60 s.

    Many tasks at once (off by default: ``crowd_delay=0``): while ``waiting`` > 1 tasks are
    waited for in this process, each is polled at most every ``waiting`` x ``crowd_delay``
    seconds (at most ``cap``). Every poll costs the process CPU (a TLS request, a JSON answer,
    a model): an agent with 16 deploys each waiting for a 3 s task polled some 15 times per
    task (bench/scale_out.py, issue 18), and ``crowd_delay=0.02`` keeps 16 waits to 50 polls a
    second in all. It is not the default because it counts every wait, the sparse ones too, so
    each of a few waits at once is late: six waits made a 0.5 s task 84 ms late (4 ms alone,
    bench/task_wait.py). A process-wide budget of the polls actually made would not; not built.

    While a task runs its log is read (for ``on_log``) at most every ``log_every`` seconds,
    not on every poll: lines arrive in batches up to that late, none is lost, and the log is
    read to its end once the task stopped.

    Watched on its node (``proximity_sdk.proxmox.task_watch``), a task's end wakes the wait
    within the watch's ``latency``, so once the watch covers it the status is read only every
    ``watched_every`` seconds (every ``log_every`` when its log is followed), as a safety net,
    except where the schedule above polls sooner than ``latency`` (the first polls). A wait is
    handed to the watch only where it helps (``watch_helps``): a kind whose dense window polls
    sooner than ``latency`` (short tasks, ``window_delay``) keeps its schedule unwatched, unless
    it outruns its history.
    """

    first: float = 0.05
    factor: float = 1.5
    fast_cap: float = 0.25
    fast_window: float = 2.5
    ratio: float = 0.15
    cap: float = 2.0
    early: float = 0.5
    margin: float = 0.2
    late_ratio: float = 0.045
    late_cap: float | None = None
    min_delay: float = 0.015
    spread: float = 3.0
    crowd_delay: float = 0.0
    log_every: float = 1.0
    watched_every: float = 5.0

    def __post_init__(self) -> None:
        if not (0 < self.first <= self.fast_cap <= self.cap and self.factor >= 1 and self.ratio > 0):
            raise ValidationError(
                "poll policy needs 0 < first <= fast_cap <= cap, factor >= 1 and ratio > 0", field="poll"
            )
        if not (
            self.early >= 0
            and 0 <= self.margin < 1
            and self.late_ratio > 0
            and 0 < self.min_delay <= self.cap
            and (self.late_cap is None or self.late_cap >= self.min_delay)
            and self.spread >= 1
            and self.crowd_delay >= 0
            and self.log_every >= 0
            and self.watched_every > 0
        ):
            raise ValidationError(
                "poll policy needs early >= 0, 0 <= margin < 1, late_ratio > 0, "
                "0 < min_delay <= cap, late_cap (when set) >= min_delay, spread >= 1, "
                "crowd_delay >= 0, log_every >= 0 and watched_every > 0",
                field="poll",
            )

    def next_delay(
        self, previous: float | None, elapsed: float, expected: Expected | None = None, waiting: int = 1
    ) -> float:
        """Seconds to sleep before the next poll, ``elapsed`` seconds into the wait, while
        ``waiting`` tasks (this one included) are waited for in the process."""
        delay = self._alone(previous, elapsed, expected)
        if waiting > 1:
            return max(delay, min(self.cap, self.crowd_delay * waiting))
        return delay

    def window_delay(self, expected: Expected) -> float:
        """The interval at the start of the dense window around ``expected``'s usual end."""
        dense = max(self.min_delay, self.late_ratio * (1 - self.margin) * expected.low)
        return dense if self.late_cap is None else min(dense, self.late_cap)

    def watch_helps(self, expected: Expected | None, elapsed: float, latency: float) -> bool:
        """Whether a watch that reports a task's end within ``latency`` seconds can shorten this
        wait from ``elapsed`` seconds into it: not for a kind whose dense window polls sooner than
        that (its schedule sees the end within a few per cent of its length anyway, the watch
        would save it no poll, and every watch command costs the process CPU); yes for an
        unknown kind and for a task that outran its history."""
        if expected is None or not self._follows(expected, elapsed):
            return True
        return self.window_delay(expected) >= latency

    def _follows(self, expected: Expected, elapsed: float) -> bool:
        """Whether the schedule follows ``expected`` (not a task that outran it, nor a history
        too spread to plan on)."""
        return elapsed < 2 * expected.high and expected.high <= self.spread * expected.low

    def _alone(self, previous: float | None, elapsed: float, expected: Expected | None) -> float:
        if expected is None or not self._follows(expected, elapsed):
            return self._unknown(previous, elapsed)
        dense = max(self.min_delay, self.late_ratio * elapsed)
        if self.late_cap is not None:
            dense = min(dense, self.late_cap)
        start = (1 - self.margin) * expected.low
        if elapsed >= start - dense:
            return dense
        delay = self._unknown(previous, elapsed) if elapsed < self.early else (start - elapsed) / 2
        return min(delay, start - elapsed)  # land on the window's start

    def _unknown(self, previous: float | None, elapsed: float) -> float:
        if previous is None:
            return self.first
        limit = self.fast_cap if elapsed < self.fast_window else min(self.cap, max(self.fast_cap, self.ratio * elapsed))
        return max(self.min_delay, min(previous * self.factor, limit))


class _Waits:
    """How many tasks this process is waiting for right now (every thread, every host)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    @contextlib.contextmanager
    def one(self) -> Iterator[None]:
        with self._lock:
            self.count += 1
        try:
            yield
        finally:
            with self._lock:
                self.count -= 1


_WAITS = _Waits()


@dataclass(frozen=True, slots=True)
class TaskResult:
    """A task that succeeded: ``warnings`` counts ``WARNINGS: n``, ``warning_lines`` are its WARN lines."""

    upid: Upid
    exitstatus: str
    warnings: int = 0
    warning_lines: list[str] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    polls: int = 0
    waited: float = 0.0

    @property
    def ok(self) -> bool:
        return True


class _LogReader:
    """Pages through a task log with start/limit, remembering where it stopped."""

    def __init__(self, client: ProxmoxClient, upid: Upid, on_log: LogCallback | None, tail: int) -> None:
        self.client = client
        self.upid = upid
        self.on_log = on_log
        self.next_start = 0
        self.tail: deque[str] = deque(maxlen=tail)
        self.warnings: list[str] = []

    def drain(self) -> None:
        while True:
            page = self.client.task_log(self.upid, start=self.next_start, limit=LOG_PAGE)
            if self.next_start == 0 and len(page) == 1 and page[0].n == 1 and page[0].t == _NO_CONTENT:
                return  # nothing written yet; line 1 will come later
            lines = [line for line in page if line.n > self.next_start]
            if not lines:
                return
            self.next_start = max(line.n for line in lines)
            texts = [line.t for line in lines]
            self.tail.extend(texts)
            self.warnings.extend(t for t in texts if _WARN_LINE.match(t))
            if self.on_log is not None:
                self.on_log(texts)
            if len(page) < LOG_PAGE:
                return


def wait_task(
    client: ProxmoxClient,
    upid: str | Upid,
    *,
    timeout: float = 3600.0,
    on_log: LogCallback | None = None,
    poll: PollPolicy | None = None,
    cancel_on_timeout: bool = False,
    dispatch_grace: float = 5.0,
    tail_lines: int = 20,
    unreachable_grace: float = 600.0,
    history: TaskHistory | None = SHARED,
    watch: NodeTaskWatch | None = None,
) -> TaskResult:
    """Wait until the task stops; return its :class:`TaskResult` or raise.

    ``on_log(lines)`` gets new log lines as they appear, read at most every
    ``poll.log_every`` seconds while the task runs and to the end once it stopped (the log is
    only read when it is given, or at the end for a failure or warnings). A 400/"no such task" within
    ``dispatch_grace`` seconds of the start is the task not yet visible, and is polled again; a
    node that cannot be reached is polled again until it was silent ``unreachable_grace`` seconds.
    ``history`` (the process-wide one by default, None for none) gives the usual length of
    tasks of this kind on this host and node, and learns this one's if it succeeds.
    ``watch`` (by default the client's ``task_watch``, set for hosts with a node shell) sees
    the task's worker process end on its node and wakes the wait then (see ``PollPolicy``).
    """
    parsed = upid if isinstance(upid, Upid) else Upid.parse(upid)
    if timeout <= 0:
        raise ValidationError(f"timeout must be positive, not {timeout!r}", field="timeout")
    with _WAITS.one():
        return _wait(
            client,
            parsed,
            timeout=timeout,
            on_log=on_log,
            policy=poll or PollPolicy(),
            cancel_on_timeout=cancel_on_timeout,
            dispatch_grace=dispatch_grace,
            tail_lines=tail_lines,
            unreachable_grace=unreachable_grace,
            history=history,
            watch=watch if watch is not None else client.task_watch,
        )


def _wait(
    client: ProxmoxClient,
    parsed: Upid,
    *,
    timeout: float,
    on_log: LogCallback | None,
    policy: PollPolicy,
    cancel_on_timeout: bool,
    dispatch_grace: float,
    tail_lines: int,
    unreachable_grace: float,
    history: TaskHistory | None,
    watch: NodeTaskWatch | None,
) -> TaskResult:
    reader = _LogReader(client, parsed, on_log, max(tail_lines, 1))
    kind = (client.url, parsed.node, parsed.type)
    expected = history.expected(kind) if history is not None else None
    started = time.monotonic()
    deadline = started + timeout
    delay: float | None = None
    # Polls are planned on a timeline from the start, so request latency does not push them later.
    planned = started
    polls = 0
    silent_since: float | None = None
    running_at = started  # when the last poll that saw the task running was sent
    log_read: float | None = None  # when the log was last read
    watched: WatchedTask | None = None
    may_watch = watch is not None  # until it is tried once
    woke_at: float | None = None  # when the watch last woke this wait
    with contextlib.ExitStack() as watching:
        while True:
            polls += 1
            asked = time.monotonic()
            try:
                status: TaskStatus | None = client.task_status(parsed)
                silent_since = None
            except (InvalidParameterError, NotFoundError):
                if time.monotonic() - started >= dispatch_grace:
                    raise
                status = None
            except UnavailableError:
                # the task runs on without us; only a long silence (or the deadline) ends the wait
                now = time.monotonic()
                silent_since = now if silent_since is None else silent_since
                if now - silent_since >= unreachable_grace or now >= deadline:
                    raise
                status = None
            # Status first, then the log: once "stopped" is read, the drained log is complete.
            # While it runs, the log is read every `log_every` seconds, not on every poll.
            due = log_read is None or asked - log_read >= policy.log_every
            if status is not None and on_log is not None and (due or not status.running):
                log_read = asked
                reader.drain()
            if status is not None and not status.running:
                if history is not None and _succeeded(status):
                    # It ended between the last "running" poll and this answer (or just before the
                    # watch woke us): learn that moment.
                    ended = woke_at if woke_at is not None else (running_at + time.monotonic()) / 2
                    history.record(kind, ended - started)
                return _outcome(client, parsed, status, reader, polls=polls, started=started, tail_lines=tail_lines)
            if watched is not None and woke_at is not None:
                # Woken, and not stopped: the watch stopped (polling goes on), or the API did not
                # answer (polling sees the end), or the watch saw the process gone while the API
                # still says running. PVE's "running" is this very process check, so that node
                # does not show us its processes: not watched again.
                if status is not None and watch is not None and watch.watched(parsed.node):
                    watch.distrust(parsed.node, why=f"task {parsed} looked ended there while the API says running")
                watching.close()
                watched = None
            elif (
                status is not None
                and may_watch
                and watch is not None
                and policy.watch_helps(expected, asked - started, watch.latency)
            ):
                may_watch = False
                watched = watching.enter_context(watch.watching(parsed))
            woke_at = None
            running_at = asked
            now = time.monotonic()
            if now >= deadline:
                _give_up(client, parsed, timeout=timeout, cancel=cancel_on_timeout, status=status)
            delay = policy.next_delay(delay, planned - started, expected, _WAITS.count)
            pause = delay
            if watched is not None and watch is not None and watched.covered and delay >= watch.latency:
                # its end wakes us: poll only as a safety net, unless the policy would poll sooner
                # than the watch can tell (the first polls)
                pause = max(delay, policy.log_every if on_log is not None else policy.watched_every)
            planned = max(planned + pause, now)
            rest = max(0.0, min(planned, deadline) - now)
            if watched is None:
                time.sleep(rest)
            elif watched.wake.wait(rest):
                woke_at = planned = time.monotonic()


def _succeeded(status: TaskStatus) -> bool:
    exitstatus = status.exitstatus or ""
    return exitstatus == "OK" or _WARNINGS.match(exitstatus) is not None


def _outcome(
    client: ProxmoxClient,
    upid: Upid,
    status: TaskStatus,
    reader: _LogReader,
    *,
    polls: int,
    started: float,
    tail_lines: int,
) -> TaskResult:
    exitstatus = status.exitstatus or "unexpected status"
    warned = _WARNINGS.match(exitstatus)
    if exitstatus == "OK" or warned:
        if warned and reader.on_log is None:
            reader.drain()  # the warning lines are in the log
        return TaskResult(
            upid=upid,
            exitstatus=exitstatus,
            warnings=int(warned.group(1)) if warned else 0,
            warning_lines=list(reader.warnings),
            log_tail=list(reader.tail),
            polls=polls,
            waited=time.monotonic() - started,
        )
    if reader.on_log is None:
        with contextlib.suppress(ProximityError):  # the failure matters more than its log
            reader.drain()
    tail = _tail(reader.tail, tail_lines)
    what = f"task {upid.type}" + (f" {upid.id}" if upid.id else "") + f" on node {upid.node}"
    raise TaskFailedError(
        f"{what} failed: {exitstatus}",
        upid=upid.raw,
        exitstatus=exitstatus,
        log_tail=tail,
        method="GET",
        path=client.task_path(upid, "status"),
    )


def _tail(lines: Sequence[str], count: int) -> list[str]:
    # The closing "TASK ERROR: ..." repeats the exit status; keep it, it is what users grep for.
    return list(lines)[-count:]


def _give_up(client: ProxmoxClient, upid: Upid, *, timeout: float, cancel: bool, status: TaskStatus | None) -> None:
    what = f"task {upid.type}" + (f" {upid.id}" if upid.id else "") + f" on node {upid.node}"
    state = "not visible yet" if status is None else "still running"
    if cancel:
        client.stop_task(upid)
        raise TaskTimeoutError(
            f"{what} was {state} after {timeout:g}s; it was asked to stop",
            upid=upid.raw,
            hint="Proxmox stops the task; read its log on the node for how far it got",
        )
    raise TaskTimeoutError(f"{what} is {state} after {timeout:g}s (it was not cancelled)", upid=upid.raw)
