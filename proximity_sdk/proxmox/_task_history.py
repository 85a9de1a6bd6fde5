"""How long Proxmox tasks of one kind took lately, per API host, node and task type.

``wait_task`` records each successful task's length here and asks for the expected range
before polling the next one of the same kind, so it can poll sparsely before the usual end
and densely around it (see :class:`proximity_sdk.proxmox.tasks.PollPolicy`).

The history lives in memory, one per process (:data:`SHARED`). The agent is a long-lived
process and learns within a few tasks; a one-shot CLI command waits for one or two tasks
and would gain little from a file it must lock, read and write on every run, so it simply
uses the policy without history. Failed tasks are not recorded: a task that errors out
early says nothing about how long a good one takes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

from proximity_sdk.errors import ValidationError

__all__ = ["SHARED", "Expected", "TaskHistory", "TaskKey"]

# (API base URL, node, task type), e.g. ("https://pve:8006", "pve1", "vzstart").
TaskKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Expected:
    """The recent range of a task kind's length, in seconds since the wait began."""

    low: float
    high: float
    samples: int


class TaskHistory:
    """The last ``keep`` lengths of each task kind, for at most ``max_kinds`` kinds (least recent dropped)."""

    def __init__(self, *, keep: int = 16, max_kinds: int = 4096) -> None:
        if keep < 1 or max_kinds < 1:
            raise ValidationError("keep and max_kinds must be at least 1", field="keep")
        self._keep = keep
        self._max_kinds = max_kinds
        self._lock = threading.Lock()
        self._lengths: OrderedDict[TaskKey, deque[float]] = OrderedDict()

    def record(self, key: TaskKey, seconds: float) -> None:
        if not seconds >= 0:  # also refuses NaN
            return
        with self._lock:
            lengths = self._lengths.get(key)
            if lengths is None:
                lengths = self._lengths[key] = deque(maxlen=self._keep)
                while len(self._lengths) > self._max_kinds:
                    self._lengths.popitem(last=False)
            else:
                self._lengths.move_to_end(key)
            lengths.append(seconds)

    def expected(self, key: TaskKey) -> Expected | None:
        """The shortest and longest recent length of this kind, or None when none is known."""
        with self._lock:
            lengths = self._lengths.get(key)
            if not lengths:
                return None
            return Expected(low=min(lengths), high=max(lengths), samples=len(lengths))

    def clear(self) -> None:
        with self._lock:
            self._lengths.clear()


SHARED = TaskHistory()
