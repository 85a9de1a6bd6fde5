"""What every servicer shares: the SDK, bounded thread pools for its blocking calls, pagination.

Bounded work per caller: the SDK's blocking calls run on three pools, so that one member cannot
stall the agent for everyone:

- **auth** (``auth_workers``): token checks only; a call is admitted however busy the rest is;
- **quick** (``max_workers``): reads and submissions (an operation is submitted, not run, here);
- **long** (``long_workers``): calls that hold a thread for seconds to minutes (``GetAppLogs``
  over SSH, ``CheckAppUpdates`` with pull, a host test, discovery, the maintenance passes). Each
  user holds at most ``long_calls_per_user`` of them at once; one more answers RESOURCE_EXHAUSTED
  (``CallerOverQuota``). A long call counts until its thread is done, even when its client gave
  up: cancelling and calling again cannot pile up threads.

A member holds at most ``backup_schedules_per_user`` backup schedules (each one runs vzdump on
the nodes on its own): one more answers RESOURCE_EXHAUSTED. Admins are not counted.

Token checks are cached once, in :class:`proximity_agent.auth.TokenCache` (the interceptor's,
``TOKEN_CACHE_SECONDS``): a flood of calls with one token costs no database read each, and a
token revoked on another replica is refused here within a second.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from proximity_agent.auth import current_caller
from proximity_agent.servicers._feed import OperationFeeds
from proximity_agent.status import CallerOverQuota
from proximity_sdk._client import Proximity
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.operation import Operation, OperationEvent
from proximity_sdk.models.user import User
from proximity_sdk.store import ReadBusy

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Backend", "Page", "page_request", "paginate"]


P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class Backend:
    """The SDK behind the servicers. The SDK is synchronous: its calls run on a bounded pool of
    threads, so the event loop (and every stream watcher on it) never blocks on the database or
    on Proxmox."""

    def __init__(
        self,
        px: Proximity,
        *,
        max_workers: int,
        watch_poll_seconds: float = 0.1,
        long_workers: int = 16,
        long_calls_per_user: int = 4,
        auth_workers: int = 4,
        backup_schedules_per_user: int = 20,
    ) -> None:
        self.px = px
        self._reads_inline = px.store.reads_locally
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="px-rpc")
        self.long_executor = ThreadPoolExecutor(max_workers=long_workers, thread_name_prefix="px-rpc-long")
        self.auth_executor = ThreadPoolExecutor(max_workers=auth_workers, thread_name_prefix="px-rpc-auth")
        self.long_calls_per_user = long_calls_per_user
        self.backup_schedules_per_user = backup_schedules_per_user
        self.schedule_lock = threading.Lock()
        self._long_held: dict[str, int] = {}
        self._long_lock = threading.Lock()
        operations = px.store.operations

        async def read_op(op_id: str) -> Operation:
            return await self.run(operations.get, op_id)

        async def read_events(op_id: str, after: int) -> list[OperationEvent]:
            return await self.run(operations.events, op_id, after=after)

        # WatchOperation's shared per-operation pollers
        self.feeds = OperationFeeds(read_op=read_op, read_events=read_events, poll_seconds=watch_poll_seconds)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the pool; the caller's context (who is calling) goes along."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await loop.run_in_executor(self.executor, call)

    async def read(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn`` reading a few rows: on the event loop itself when the store is a SQLite file
        (``Store.reading()``: a connection of the loop's own, which cannot write and waits for no
        pool), else on the pool as ``run``. Handing a read of one row to the pool cost more than
        the read under load (docs/agent.md, "Reads of one row on the event loop"). ``fn`` must
        only read the store, a few rows: a write inside raises RuntimeError."""
        if self._reads_inline:
            try:
                with self.px.store.reading():
                    return fn(*args, **kwargs)
            except ReadBusy:  # the file is locked (a WAL recovery): the pool's connections wait longer
                pass
        return await self.run(fn, *args, **kwargs)

    async def run_long(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn`` on the long pool, counted against the caller's quota of long calls."""
        user = current_caller().id
        with self._long_lock:
            held = self._long_held.get(user, 0)
            if held >= self.long_calls_per_user:
                raise CallerOverQuota(
                    f"you already have {held} long calls running (logs, update checks, ...), the most one user "
                    f"may have at once on this agent ({self.long_calls_per_user})",
                    hint="Wait for one to finish, then call again",
                )
            self._long_held[user] = held + 1
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        try:
            future = self.long_executor.submit(call)
        except BaseException:
            self._release_long(user)
            raise
        future.add_done_callback(lambda _done: self._release_long(user))  # when the thread is done
        return await asyncio.wrap_future(future, loop=loop)

    def _release_long(self, user: str) -> None:
        with self._long_lock:
            left = self._long_held.get(user, 1) - 1
            if left > 0:
                self._long_held[user] = left
            else:
                self._long_held.pop(user, None)

    def long_calls(self, user_id: str) -> int:
        """How many long calls of this user hold a thread now."""
        with self._long_lock:
            return self._long_held.get(user_id, 0)

    async def authenticate(self, token: str) -> User | None:
        """The token's user, looked up on the auth pool (never behind quick or long calls)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.auth_executor, self.px.store.users.authenticate, token)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.long_executor.shutdown(wait=False, cancel_futures=True)
        self.auth_executor.shutdown(wait=False, cancel_futures=True)


# -- pagination ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """Where a page starts, how long it is, and the query it belongs to (``scope``)."""

    offset: int
    size: int
    scope: str

    def next_token(self, *, more: bool) -> str:
        if not more:
            return ""
        raw = json.dumps({"o": self.offset + self.size, "q": self.scope}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _scope(method: str, filters: Sequence[object]) -> str:
    # a token names its query, so one cannot be replayed against other filters by mistake
    return hashlib.sha256(json.dumps([method, *map(str, filters)]).encode()).hexdigest()[:16]


def page_request(page_size: int, page_token: str, *, method: str, filters: Sequence[object] = ()) -> Page:
    """Validate ``page_size`` (0: default 50; at most 1000) and the opaque ``page_token``."""
    if page_size < 0:
        raise ValidationError(
            f"page_size must be 0 (the default, {DEFAULT_PAGE_SIZE}) or more, got {page_size}", field="page_size"
        )
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    scope = _scope(method, filters)
    if not page_token:
        return Page(0, size, scope)
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = decoded["o"]
        token_scope = decoded["q"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValidationError(
            "page_token is not one this agent issued",
            field="page_token",
            hint="Pass next_page_token from the previous response unchanged",
        ) from None
    if not isinstance(offset, int) or offset < 0 or token_scope != scope:
        raise ValidationError(
            "page_token belongs to another query (filters changed between pages)",
            field="page_token",
            hint="Start again without a page_token",
        ) from None
    return Page(offset, size, scope)


def paginate(items: Sequence[T], page: Page) -> tuple[list[T], str]:
    """One page of an in-memory list and the token of the next."""
    chunk = list(items[page.offset : page.offset + page.size])
    return chunk, page.next_token(more=page.offset + page.size < len(items))
