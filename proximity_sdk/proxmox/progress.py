"""How the Proxmox building blocks report progress: an ``emit`` callback given by the caller.

The operation engine turns each call into an event of the running step (it adds the step name,
sequence number and time); a script can pass ``print``-like functions. Proxmox task log lines
are forwarded as they appear, ``WARN`` lines at level ``warning``.
"""

from __future__ import annotations

import re
from typing import Literal, Protocol

from proximity_sdk.proxmox.tasks import LogCallback

__all__ = ["Emit", "EventLevel", "emit_to", "task_log_forwarder"]

EventLevel = Literal["debug", "info", "warning", "error"]

_WARN_LINE = re.compile(r"^\s*WARN(ING)?\b", re.IGNORECASE)


class Emit(Protocol):
    """``emit(message, level="info")``: one progress line. Must not raise (it is best effort)."""

    def __call__(self, message: str, /, level: EventLevel = "info") -> object: ...


def emit_to(emit: Emit | None, message: str, level: EventLevel = "info") -> None:
    """Call ``emit`` if there is one."""
    if emit is not None:
        emit(message, level)


def task_log_forwarder(emit: Emit | None) -> LogCallback | None:
    """A ``wait_task(on_log=...)`` callback that emits each task log line (None without emit,
    so that wait_task does not read the log at all)."""
    if emit is None:
        return None
    target = emit

    def forward(lines: list[str]) -> None:
        for line in lines:
            target(line, "warning" if _WARN_LINE.match(line) else "info")

    return forward
