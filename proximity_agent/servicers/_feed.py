"""Event feeds for WatchOperation: one database poller per watched operation, shared by every
watcher of it, all on the event loop.

Hundreds of watchers of one deploy cost one query pair per poll interval, not one thread or one
query each: a feed reads the operation's new events (from the store, so events written by
another agent replica show up too), appends them to its in-memory log, and wakes its watchers,
which read from that log at their own pace, each from its own ``after_seq``. The feed stops
when the operation has finished and its log is drained, or when its last watcher leaves.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncGenerator, Awaitable, Callable

from proximity_sdk.models.operation import Operation, OperationEvent

__all__ = ["OperationFeeds"]


class _Feed:
    def __init__(self) -> None:
        self.events: list[OperationEvent] = []
        self.seqs: list[int] = []
        self.done = False
        self.error: BaseException | None = None
        self.watchers = 0
        self.signal = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        # watchers hold the current signal; replace it, then set the old one
        signal, self.signal = self.signal, asyncio.Event()
        signal.set()


class OperationFeeds:
    """``watch(op_id, after=n)``: the operation's events with ``seq > n`` in order, live until it
    has finished. ``read_op`` and ``read_events(op_id, after)`` read the store (off the loop)."""

    def __init__(
        self,
        *,
        read_op: Callable[[str], Awaitable[Operation]],
        read_events: Callable[[str, int], Awaitable[list[OperationEvent]]],
        poll_seconds: float = 0.1,
    ) -> None:
        self._read_op = read_op
        self._read_events = read_events
        self._poll = poll_seconds
        self._feeds: dict[str, _Feed] = {}

    @property
    def active(self) -> int:
        """Operations being polled now (for metrics and tests)."""
        return len(self._feeds)

    async def watch(self, op_id: str, *, after: int = 0) -> AsyncGenerator[OperationEvent, None]:
        feed = self._feeds.get(op_id)
        if feed is None or feed.done:
            feed = _Feed()
            self._feeds[op_id] = feed
            feed.task = asyncio.create_task(self._poll_loop(op_id, feed), name=f"watch-{op_id}")
        feed.watchers += 1
        try:
            last = after
            while True:
                signal = feed.signal
                # by seq, not by index: a new feed's log fills from seq 1 whatever ``after`` is
                position = bisect.bisect_right(feed.seqs, last)
                while position < len(feed.events):
                    event = feed.events[position]
                    yield event
                    last = event.seq
                    position += 1
                if feed.done:
                    if feed.error is not None:
                        raise feed.error
                    return
                if signal is feed.signal:
                    await signal.wait()
        finally:
            feed.watchers -= 1
            if feed.watchers == 0 and not feed.done and feed.task is not None:
                feed.task.cancel()
                feed.done = True
            if feed.watchers == 0 and self._feeds.get(op_id) is feed:
                del self._feeds[op_id]

    async def _poll_loop(self, op_id: str, feed: _Feed) -> None:
        last = 0
        try:
            while True:
                # the status is read before draining: an operation seen finished has written its
                # last event already (the store writes both in one transaction)
                op = await self._read_op(op_id)
                batch = await self._read_events(op_id, last)
                if batch:
                    for event in batch:
                        feed.events.append(event)
                        feed.seqs.append(event.seq)
                    last = batch[-1].seq
                    feed.wake()
                    continue
                if op.finished:
                    break
                await asyncio.sleep(self._poll)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # surfaced to every watcher, mapped to a status code there
            feed.error = exc
        feed.done = True
        feed.wake()
