"""The thread that writes an operation's deferred events once they have waited long enough.

A running operation does not write each event in a transaction of its own: the event waits for
the operation's next write (a step's start, a journal entry, params, the finish), which carries it
in its transaction. When no such write comes within ``delay`` (the worker waits on Proxmox or
the node shell), this thread writes what waited, so a watcher still sees every event at most
``delay`` (plus one store write) after it happened.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Protocol

__all__ = ["DEFAULT_EVENT_DELAY", "DeferredWriter", "Flushable"]

#: how long an event may wait for the operation's next write before it is written alone
DEFAULT_EVENT_DELAY = 0.1
# a flush that found the operation writing (its worker holds the write lock) looks again this soon
_RETRY = 0.02


class Flushable(Protocol):
    def flush_deferred(self) -> bool:
        """Write what waits, unless the owner is writing right now: then return False (try later)."""
        ...


class DeferredWriter:
    """One daemon thread per engine; ``due(owner)`` asks it to flush ``owner`` in ``delay`` s."""

    def __init__(self, *, delay: float = DEFAULT_EVENT_DELAY) -> None:
        self.delay = delay
        self._queue: list[tuple[float, int, Flushable]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def due(self, owner: Flushable, *, delay: float | None = None) -> None:
        when = time.monotonic() + (self.delay if delay is None else delay)
        with self._wake:
            if self._closed:
                return
            heapq.heappush(self._queue, (when, next(self._order), owner))
            if self._thread is None:  # started on first use: an engine that runs nothing has none
                self._thread = threading.Thread(target=self._run, name="proximity-events", daemon=True)
                self._thread.start()
            elif self._queue[0][2] is owner:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    if self._queue and self._queue[0][0] <= now:
                        owner = heapq.heappop(self._queue)[2]
                        break
                    self._wake.wait(self._queue[0][0] - now if self._queue else None)
            try:
                done = owner.flush_deferred()
            except Exception:  # a store that failed now: the owner's next write carries the events
                done = True
            if not done:
                self.due(owner, delay=_RETRY)

    def close(self) -> None:
        """Stop the thread; what still waits is the owners' to write (or to drop)."""
        with self._wake:
            self._closed = True
            self._queue.clear()
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
