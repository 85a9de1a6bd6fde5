"""Tasks as real processes: what the node-side task watch observes (``worker_processes``).

On PVE a task is ``running`` exactly while the worker process its UPID names lives: the status API
reads ``/proc/<pid>/stat`` and compares its start time with the UPID's ``pstart`` (pve-manager
``PVE/API2/Tasks.pm`` read_task_status; pve-common ``PVE/ProcFSTools.pm`` read_proc_starttime).
fakepve names no process (its pid is a counter, its pstart pid x 7). With ``worker_processes``
on, each task is a ``sleep`` process of this machine (the machine the sandbox's node shell runs
its commands on), its pid and /proc start time in the UPID, ended right after the task reads
``stopped`` (never before: for PVE a gone process *is* a stopped task).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["WorkerProcessesMixin", "proc_starttime"]


def proc_starttime(pid: int) -> int:
    """A process's start time as /proc/<pid>/stat gives it (clock ticks after boot; the 22nd field,
    after the command name's last ``) ``): a PVE UPID's ``pstart``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(") ", 1)[1].split()[19])


class WorkerProcessesMixin:
    """For a fakepve subclass: ``worker_processes = True`` runs each task as a real process."""

    tasks: dict[str, dict[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_processes = False
        self._workers: dict[str, subprocess.Popen[bytes]] = {}
        self._ending: set[asyncio.Future[None]] = set()

    def _upid(self, node: str, ttype: str, tid: Any, user: str) -> tuple[str, int, int]:
        if not self.worker_processes:
            upid, pid, start = super()._upid(node, ttype, tid, user)  # type: ignore[misc]
            return str(upid), int(pid), int(start)
        worker = subprocess.Popen(  # a day outlives any task; killed with its task, or at stop
            ["sleep", "86400"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        start = int(time.time())
        upid = f"UPID:{node}:{worker.pid:08X}:{proc_starttime(worker.pid):08X}:{start:08X}:{ttype}:{tid}:{user}:"
        self._workers[upid] = worker
        return upid, worker.pid, start

    async def task(self, *args: Any, **kwargs: Any) -> str:
        upid = str(await super().task(*args, **kwargs))  # type: ignore[misc]
        self.follow_worker(upid)
        return upid

    def follow_worker(self, upid: str) -> None:
        """Once a task's record exists: its pstart as /proc says, and its process ended with it."""
        worker = self._workers.get(upid)
        if worker is None or upid not in self.tasks:
            return
        self.tasks[upid]["pstart"] = proc_starttime(worker.pid)
        ending = asyncio.ensure_future(self._end_worker(upid, worker))
        self._ending.add(ending)
        ending.add_done_callback(self._ending.discard)

    async def _end_worker(self, upid: str, worker: subprocess.Popen[bytes]) -> None:
        while self.tasks.get(upid, {}).get("status") == "running":
            await asyncio.sleep(0.002)
        worker.kill()
        worker.wait()
        self._workers.pop(upid, None)

    def end_workers(self) -> None:
        """Kill the processes of tasks still running (the server stops)."""
        for worker in list(self._workers.values()):
            worker.kill()
            worker.wait()
        self._workers.clear()
