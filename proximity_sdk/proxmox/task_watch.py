"""Seeing on the node that a task ended, by Proxmox's own test, instead of polling for it.

Proxmox has no notice for a task's end: its status API *computes* "running" at each request,
as "the worker process named in the UPID still lives" — ``/proc/<pid>/stat`` exists and its
start time equals the UPID's ``pstart`` (pve-manager ``PVE/API2/Tasks.pm``, ``read_task_status``;
pve-common ``PVE/ProcFSTools.pm``, ``read_proc_starttime``). The worker writes its last log line
(``TASK OK`` / ``TASK ERROR: ...``) before it exits (pve-common ``PVE/UPID.pm``, ``read_status``
reads that line), so once the process is gone the exit status is final.

A :class:`NodeTaskWatch` runs that same test on the node through the node shell: one command per
node checks the processes of every task of that node this process waits for, every
``check_every`` seconds for ``slice_seconds``, says at once which process is gone (and goes on
for the others), and ends with the slice or the last process; the next takes in the waits that
began meanwhile (until then a wait polls as it would unwatched). Every SSH command costs the
agent CPU: one per slice, not one per task end or per wait that joins, keeps it to about one
per 2 s per node while tasks are waited for (``bench/scale_out.py --node-shell``). The waiter of a
task whose process is gone is woken and reads the status once from the API. So a long task is
seen to end within about ``check_every`` plus one SSH round trip and one API request, with a few
safety polls instead of dozens (:class:`~proximity_sdk.proxmox.tasks.PollPolicy`
``watched_every``; ``bench/task_wait.py``: 30 s tasks seen at most 56 ms late with at most 10
polls, against 840 ms and 22 polls unwatched).

Every failure falls back to polling the API, never to a wrong answer: a watch that cannot run
(no shell, SSH down, a command that fails) wakes its waiters, who poll as before, and that node
is not watched for ``retry_after`` seconds; a watch that says "gone" while the API still says
"running" cannot see that node's processes (another machine behind the address, ``/proc``
mounted with ``hidepid``): that node is not watched again by this watch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proximity_sdk.proxmox.upid import Upid

if TYPE_CHECKING:  # the node shell (paramiko) loads with the first watch, not with this module
    from proximity_sdk.proxmox.shell import NodeShell

__all__ = ["NodeTaskWatch", "WatchedTask"]

_log = logging.getLogger(__name__)

# $1: checks before the command ends, $2: seconds between checks, then one "pid:pstart" per task
# (decimal). A line "gone pid:pstart" as soon as a process is gone (the command goes on for the
# others), "end" at the end. Builtins only inside the loop (`read`, parameter expansion, `case`,
# a function call): one check of many tasks forks nothing but `sleep`. The field after the command name's last ") " is
# /proc/<pid>/stat's 3rd; starttime is the 22nd, so the 20th after it (proc(5); PVE's regex in
# read_proc_pid_stat takes the same field). A zombie keeps its stat line: PVE counts it as running
# too.
_SCRIPT = r"""
left=$1; every=$2; shift 2
pick() { if [ $# -ge 20 ]; then shift 19; now=$1; fi; }
ended=" "
while :; do
  alive=0
  for task in "$@"; do
    case "$ended" in *" $task "*) continue ;; esac
    pid=${task%%:*}; start=${task#*:}; now=
    if read -r stat < "/proc/$pid/stat"; then pick ${stat##*) }; fi 2>/dev/null
    if [ "$now" = "$start" ]; then alive=1; else echo "gone $task"; ended="$ended$task "; fi
  done
  left=$((left - 1))
  if [ "$alive" = 0 ] || [ "$left" -le 0 ]; then echo end; exit 0; fi
  sleep "$every"
done
"""


@dataclass(eq=False)
class WatchedTask:
    """One wait's entry: ``wake`` is set when the waiter should read the API now (the task's
    process is gone, or the watch stopped); ``covered`` once a check on the node includes it."""

    upid: Upid
    wake: threading.Event = field(default_factory=threading.Event)
    covered: bool = False

    @property
    def key(self) -> str:
        return f"{self.upid.pid}:{self.upid.pstart}"


@dataclass(eq=False)
class _Node:
    tasks: dict[int, WatchedTask] = field(default_factory=dict)
    thread: threading.Thread | None = None
    not_before: float = 0.0  # time.monotonic() from which the node is watched again (inf: never)


class NodeTaskWatch:
    """Watches the worker processes of the tasks waited for, on their nodes, through a node shell.

    ``shell`` gives the host's node shell (called when a node's first watch starts: the shell
    pool opens connections lazily). One thread per node runs while tasks of that node are
    watched, and ends with the last."""

    def __init__(
        self,
        shell: Callable[[], NodeShell],
        *,
        check_every: float = 0.05,
        slice_seconds: float = 2.0,
        retry_after: float = 60.0,
    ) -> None:
        if not 0 < check_every <= slice_seconds or retry_after < 0:
            raise ValueError("a task watch needs 0 < check_every <= slice_seconds and retry_after >= 0")
        self._shell = shell
        #: About how late a watch reports an end: a check's interval, the command's answer and a
        #: thread's wake-up (measured 40-60 ms with checks every 50 ms over a local sshd:
        #: bench/task_wait.py). A wait polls itself where its schedule would poll sooner.
        self.latency = 2 * check_every
        self.check_every = check_every
        self.slice_seconds = slice_seconds
        self.retry_after = retry_after
        self._nodes: dict[str, _Node] = {}
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def watching(self, upid: Upid) -> Iterator[WatchedTask | None]:
        """Watch ``upid``'s worker process for the block; None when it cannot be watched (a PBS
        task, a node not watched any more, a closed watch): poll as without a watch."""
        if upid.product != "pve":
            yield None
            return
        entry = WatchedTask(upid)
        with self._lock:
            node = self._nodes.setdefault(upid.node, _Node())
            turned_down = self._closed or time.monotonic() < node.not_before
            if not turned_down:
                node.tasks[id(entry)] = entry
                if node.thread is None:
                    node.thread = threading.Thread(
                        target=self._run, args=(upid.node, node), name=f"task-watch-{upid.node}", daemon=True
                    )
                    node.thread.start()
        if turned_down:  # yielded outside the lock: the caller polls for as long as its task runs
            yield None
            return
        try:
            yield entry
        finally:
            with self._lock:
                node.tasks.pop(id(entry), None)

    def distrust(self, node: str, *, why: str, seconds: float = math.inf) -> None:
        """Stop watching ``node``'s tasks for ``seconds`` (for good by default: what the watch
        sees there is not what the API sees); its waiters are woken and poll."""
        with self._lock:
            state = self._nodes.setdefault(node, _Node())
            until = time.monotonic() + seconds
            if state.not_before >= until:
                return
            state.not_before = until
            waiting = list(state.tasks.values())
        if math.isinf(seconds):
            _log.warning("not watching tasks on node %s any more (%s); their status is polled", node, why)
        else:
            _log.warning("not watching tasks on node %s for %g s (%s); their status is polled", node, seconds, why)
        for entry in waiting:
            entry.wake.set()

    def watched(self, node: str) -> bool:
        """False while ``node`` is not watched (after a failure, or for good)."""
        with self._lock:
            state = self._nodes.get(node)
            return not self._closed and (state is None or time.monotonic() >= state.not_before)

    def close(self) -> None:
        """Wake every waiter (they poll from now on); running node commands end within a slice."""
        with self._lock:
            self._closed = True
            waiting = [entry for state in self._nodes.values() for entry in state.tasks.values()]
        for entry in waiting:
            entry.wake.set()

    def _run(self, name: str, node: _Node) -> None:
        while True:
            with self._lock:
                entries = list(node.tasks.values())
                if not entries or self._closed or time.monotonic() < node.not_before:
                    node.thread = None
                    return
                for entry in entries:
                    entry.covered = True
            by_key: dict[str, list[WatchedTask]] = {}
            for entry in entries:
                by_key.setdefault(entry.key, []).append(entry)
            try:
                self._check(name, by_key)
            except Exception as exc:  # any failure of the node command means: poll instead
                if self._closed:  # the shell closes with the watch: nothing failed
                    with self._lock:
                        node.thread = None
                    return
                why = f"the watch command failed: {type(exc).__name__}: {exc}"
                self.distrust(name, why=why, seconds=self.retry_after)

    def _check(self, node: str, tasks: dict[str, list[WatchedTask]]) -> set[str]:
        """One command on ``node`` for a slice: wakes each task's waits as its process goes (the
        command goes on for the others); the keys of those gone."""
        gone: set[str] = set()

        def line(stream: str, text: str) -> None:
            word, _, key = text.partition(" ")
            if stream == "stdout" and word == "gone" and key in tasks:
                gone.add(key)
                for entry in tasks[key]:
                    entry.wake.set()

        checks = max(1, round(self.slice_seconds / self.check_every))
        result = self._shell().run(
            node,
            ["sh", "-c", _SCRIPT, "sh", str(checks), f"{self.check_every:g}", *sorted(tasks)],
            timeout=self.slice_seconds + 30,
            on_output=line,
        )
        if not result.stdout.endswith("end\n"):
            raise RuntimeError(f"unexpected answer {result.stdout[-200:]!r}")
        return gone
