"""Live progress of an operation: a spinner and bar with the current step, and its events as lines.

Reusable outside the commands (``proximity sandbox`` uses it)::

    from rich.console import Console
    from proximity_sdk.cli._progress import follow

    app = follow(px.apps.deploy("gitea", hostname="git-1"), console=Console(stderr=True))

``follow`` works with any ``OperationHandle`` (local or from an agent): it reads
``handle.events()`` until the operation ends, then returns ``handle.wait()`` (the result, or
raises ``OperationFailed``/``OperationCancelled``). On a terminal the bar is redrawn in place and
cleared at the end; elsewhere (a pipe, a log) only the event lines are written.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from proximity_sdk.engine.handle import OperationHandle
    from proximity_sdk.models.operation import OperationEvent

__all__ = ["event_line", "follow", "follow_json"]

_LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


def event_line(event: OperationEvent) -> Any:
    """One event as a rich Text: local time, step, message (coloured by level)."""
    from rich.text import Text

    line = Text()
    line.append(event.time.astimezone().strftime("%H:%M:%S"), style="dim")
    line.append(f" {event.step or '-':<10} ", style="cyan")
    line.append(event.message, style=_LEVEL_STYLE.get(event.level, ""))
    return line


def _describe(kind: str, steps: tuple[str, ...], step: str | None) -> str:
    if step is None:
        return f"{kind}: waiting"
    if step in steps:
        return f"{kind}: {step} ({steps.index(step) + 1}/{len(steps)})"
    return f"{kind}: {step}"


def follow(handle: OperationHandle, *, console: Console, timeout: float | None = None, verbose: bool = False) -> Any:
    """Show ``handle``'s progress on ``console`` until the operation ends; return its result.

    ``timeout``: stop following after this many seconds (``OperationTimeout``; the operation goes
    on). ``verbose``: also print debug events (Proxmox task log lines).
    """
    from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

    op = handle.get()
    steps = tuple(op.steps)
    started = time.monotonic()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(_describe(op.kind, steps, op.current_step), total=1.0)
        for event in handle.events(timeout=timeout):
            if event.step is not None:
                progress.update(task, description=_describe(op.kind, steps, event.step))
            if event.progress is not None:
                progress.update(task, completed=event.progress)
            if event.level != "debug" or verbose:
                progress.console.print(event_line(event))
        progress.update(task, completed=1.0)
    remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
    return handle.wait(timeout=remaining)


def follow_json(handle: OperationHandle, *, timeout: float | None = None) -> Any:
    """Print each event as one JSON line (``{"event": {...}}``) on stdout; return the result."""
    from proximity_sdk.cli._output import print_json_line

    started = time.monotonic()
    for event in handle.events(timeout=timeout):
        print_json_line({"event": event})
    remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
    return handle.wait(timeout=remaining)
