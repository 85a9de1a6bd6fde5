"""Operations in Jupyter: a progress card, static or updated live as the operation's events arrive.

Everything here works on any object with the ``OperationHandle`` API (``id``, ``get()``,
``events(after, follow=, timeout=)``, ``wait(timeout)``), so the local handle and the remote
(agent) handle share it. IPython is imported only when something is displayed.

How a handle displays itself (``OperationHandle._ipython_display_``): a finished operation shows
a static card; a pending or running one shows a card that follows it live until it ends (the
cell stays busy meanwhile; interrupting the cell stops the watching, never the operation). It
never raises for a failed operation: the card shows the failure. :func:`display_live` is the
explicit form that returns the result and raises like ``wait()``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from proximity_sdk.errors import OperationTimeout, ValidationError

if TYPE_CHECKING:
    from proximity_sdk.models.operation import Operation, OperationEvent

__all__ = ["OperationLike", "display_live", "render_operation_html", "show_operation"]

TAIL = 8  # event lines shown on a card
_FLUSH = 0.5  # while the log is quiet, the card is refreshed this often (seconds)
_MIN_INTERVAL = 0.1  # and at most this often while events pour in


class OperationLike(Protocol):
    """What the notebook helpers need of a handle (local or remote)."""

    @property
    def id(self) -> str: ...

    def get(self) -> Operation: ...

    def events(
        self, after: int = 0, *, follow: bool = True, timeout: float | None = None
    ) -> Iterator[OperationEvent]: ...

    def wait(self, timeout: float | None = None) -> Any: ...


def render_operation_html(target: OperationLike | Operation, *, tail: int = TAIL) -> str:
    """A static progress card of an operation (a handle, or an ``Operation`` record): status,
    progress, steps, the last ``tail`` events (handles only) and the error if it failed."""
    from proximity_sdk.models._html import operation_card
    from proximity_sdk.models.operation import Operation

    if isinstance(target, Operation):
        return operation_card(target)
    op = target.get()
    events = list(target.events(after=0, follow=False))
    return operation_card(op, events[-tail:] if tail > 0 else ())


def _bundle(op: Operation, events: list[OperationEvent], *, note: str | None = None) -> dict[str, str]:
    from proximity_sdk.models._html import operation_card, operation_text

    return {"text/html": operation_card(op, events[-TAIL:], note=note), "text/plain": operation_text(op, events)}


def _display_function() -> Any:
    """IPython's ``display`` when running in an IPython shell (a kernel), else None."""
    try:
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.display import display
    except ModuleNotFoundError:
        return None
    return display if InteractiveShell.initialized() else None


def show_operation(handle: OperationLike, *, timeout: float | None = None) -> Operation:
    """Display the operation's card: static when it has finished, else live until it ends.
    Returns the final record; never raises for a failed or cancelled operation."""
    op = handle.get()
    if not op.finished:
        return _follow(handle, timeout=timeout)
    display = _display_function()
    if display is not None:
        display(_bundle(op, list(handle.events(after=0, follow=False))), raw=True)
    return op


def display_live(handle: OperationLike, *, timeout: float | None = None) -> Any:
    """Show a progress card in the cell, updated as events arrive, then return the operation's
    result like ``handle.wait()`` (an ``App``, a ``Backup``, or None), raising ``OperationFailed``
    / ``OperationCancelled`` when it did not succeed, ``OperationTimeout`` when ``timeout``
    seconds pass first (the operation goes on). Outside a notebook it only waits."""
    if timeout is not None and timeout < 0:
        raise ValidationError("timeout must be positive", field="timeout")
    _follow(handle, timeout=timeout)
    return handle.wait(0)  # finished: its outcome at once, with wait()'s result and errors


def _follow(handle: OperationLike, *, timeout: float | None) -> Operation:
    display = _display_function()
    deadline = None if timeout is None else time.monotonic() + timeout
    events: list[OperationEvent] = []
    op = handle.get()
    # outside a kernel nothing is shown: the loop below then only waits
    shown = None if display is None else display(_bundle(op, events), raw=True, display_id=True)

    def refresh(note: str | None = None) -> None:
        if shown is not None:
            shown.update(_bundle(handle.get(), events, note=note), raw=True)

    last = time.monotonic()
    dirty = False
    try:
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                refresh("stopped watching (timeout); the operation goes on")
                raise OperationTimeout(f"no end of operation {handle.id} within {timeout} s", operation_id=handle.id)
            wait = _FLUSH if remaining is None else min(_FLUSH, remaining)
            after = events[-1].seq if events else 0
            try:
                # a short bounded stream, restarted: a quiet log still refreshes the card
                for event in handle.events(after=after, follow=True, timeout=wait):
                    events.append(event)
                    dirty = True
                    if time.monotonic() - last >= _MIN_INTERVAL:
                        refresh()
                        last, dirty = time.monotonic(), False
                break  # the operation finished and its log is drained
            except OperationTimeout:
                if dirty:
                    refresh()
                    last, dirty = time.monotonic(), False
    except KeyboardInterrupt:
        refresh("stopped watching (interrupted); the operation goes on")
        raise
    final = handle.get()
    if shown is not None:
        shown.update(_bundle(final, events), raw=True)
    return final
