"""Helpers every repository shares: request validation, session plumbing and the unit of work."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy.orm import Session

# re-exported: the repositories validate their requests with them
from proximity_sdk.models._requests import checked, validate_request
from proximity_sdk.store.crypto import SecretBox

__all__ = ["Reader", "SessionFactory", "StoreContext", "UnitOfWorkFailed", "checked", "validate_request"]


class SessionFactory(Protocol):
    def __call__(self, *, immediate: bool = False) -> AbstractContextManager[Session]: ...


# a session of a reader connection (Store.reading), in a transaction of its own
Reader = Callable[[], AbstractContextManager[Session]]


class UnitOfWorkFailed(RuntimeError):
    """A store call inside a unit of work raised and its caller went on: nothing of the unit was
    written (its transaction no longer holds what the calls before it expect)."""


class _Unit:
    __slots__ = ("committed", "failed", "session")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.failed = False
        self.committed: list[Callable[[], object]] = []  # what to call once the unit is committed


class StoreContext:
    """What repositories share: the way to a session and the current SecretBox (rotation swaps it).

    ``session`` opens a transaction of its own, except inside ``unit()`` on the same thread: there
    every repository call joins the unit's one transaction, committed when the block ends."""

    def __init__(self, begin: SessionFactory, box: SecretBox) -> None:
        self._begin = begin
        self.box = box
        self._local = threading.local()

    @contextlib.contextmanager
    def session(self, *, immediate: bool = False) -> Iterator[Session]:
        unit: _Unit | None = getattr(self._local, "unit", None)
        reader: Reader | None = getattr(self._local, "reader", None)
        if reader is not None:
            if immediate or unit is not None:
                raise RuntimeError("a store write inside Store.reading(): reading() is for reads only")
            with reader() as s:
                yield s
            return
        if unit is None:
            with self._begin(immediate=immediate) as s:
                yield s
            return
        s = unit.session
        try:
            yield s
            # what a call leaves pending must reach the database before the next call's plain
            # statements (which do not autoflush) run; and the next call must read rows afresh,
            # not from this one's identity map, as it would in a transaction of its own
            s.flush()
            s.expunge_all()
        except BaseException:
            unit.failed = True
            raise

    @contextlib.contextmanager
    def reading_with(self, reader: Reader, raw: sqlite3.Connection) -> Iterator[None]:
        """Every store call of this thread inside the block opens its session with ``reader``;
        ``raw`` is the same connection without SQLAlchemy, for the hottest reads (``raw_reader``)."""
        if getattr(self._local, "unit", None) is not None or getattr(self._local, "reader", None) is not None:
            raise RuntimeError("Store.reading() inside a unit of work or another reading() block")
        self._local.reader, self._local.raw = reader, raw
        try:
            yield
        finally:
            self._local.reader = self._local.raw = None

    def raw_reader(self) -> sqlite3.Connection | None:
        """Inside ``Store.reading()``: its SQLite connection, in autocommit mode (a read of several
        statements opens its own transaction), which refuses writes. Else None."""
        raw: sqlite3.Connection | None = getattr(self._local, "raw", None)
        return raw

    @contextlib.contextmanager
    def unit(self) -> Iterator[None]:
        """One transaction for every store call of this thread inside the block: committed at its
        end (all or nothing), rolled back when it raises. It takes the write lock at BEGIN
        (SQLite) because it writes; keep it to store calls (no Proxmox request inside: a side
        effect's journal entry must be committed before the request that makes it). A unit
        inside a unit is the outer one."""
        if getattr(self._local, "unit", None) is not None:
            yield
            return
        if getattr(self._local, "reader", None) is not None:
            raise RuntimeError("a unit of work inside Store.reading(): reading() is for reads only")
        with self._begin(immediate=True) as s:
            unit = self._local.unit = _Unit(s)
            try:
                yield
            finally:
                self._local.unit = None
            if unit.failed:  # a call raised and its caller went on: commit none of it
                raise UnitOfWorkFailed("a store call failed inside a unit of work; nothing of the unit was written")
        for call in unit.committed:
            call()

    @contextlib.contextmanager
    def apart(self) -> Iterator[Session]:
        """A transaction of its own, even inside a unit of work: for a read after a statement that
        failed there left the unit's transaction unusable. It sees what is committed only."""
        with self._begin(immediate=False) as s:
            yield s

    def after_commit(self, call: Callable[[], object]) -> None:
        """Call ``call`` once what this thread wrote is committed: now outside a unit of work, when
        the unit commits inside one (in the order given), never when it rolls back. For what
        another thread or process must find written (an operation a worker claims)."""
        unit: _Unit | None = getattr(self._local, "unit", None)
        if unit is None:
            call()
        else:
            unit.committed.append(call)
