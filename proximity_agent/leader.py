"""Leader election: with several agents on one database, exactly one runs the periodic jobs.

- **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) held on a dedicated
  connection (autocommit, TCP keepalives, its own ``application_name`` so ``pg_stat_activity``
  shows who leads). PostgreSQL releases the lock when that connection dies (a killed process's
  socket is closed by the kernel; a vanished machine's by the keepalives), and another agent,
  trying every ``check_interval``, takes it.
- **SQLite file**: an exclusive ``flock`` on ``<database>.leader-lock`` (released by the kernel
  when the process dies); SQLite in memory: this process is the leader.

The leader checks its lock every ``check_interval`` too (the connection still answers and still
holds the lock); when it finds it lost (database restarted, network cut) it steps down at once,
calling ``on_lost``, and competes again. Between the loss and that check two agents may both
run a job: every periodic job is safe to run twice (operations are claimed in the database).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

__all__ = ["LeaderElection", "lock_key"]

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """The advisory-lock key (a positive bigint) for an election called ``name``."""
    digest = hashlib.sha256(f"proximity-agent:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


class _Lock(Protocol):
    def try_acquire(self) -> bool: ...
    def still_held(self) -> bool: ...
    def release(self) -> None: ...


class _PgLock:
    def __init__(self, url: URL, key: int, application_name: str, *, timeout: float) -> None:
        self._key = key
        seconds = max(1, int(timeout))
        self._engine = create_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "application_name": application_name[:63],
                "connect_timeout": seconds,
                "keepalives": 1,
                "keepalives_idle": seconds,
                "keepalives_interval": seconds,
                "keepalives_count": 3,
                "options": f"-c statement_timeout={seconds * 1000}",
            },
        )
        self._conn: Connection | None = None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # a dead connection may fail to close; closing it is all we wanted
                log.debug("closing the leader connection failed", exc_info=True)

    def try_acquire(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            return bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar())
        except Exception as exc:
            log.warning("cannot compete for leadership now: %s", exc)
            self._drop()
            return False

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        # pg_locks shows a bigint advisory key as two 32-bit halves
        query = text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1)"
        )
        try:
            return bool(self._conn.execute(query, {"hi": self._key >> 32, "lo": self._key & 0xFFFF_FFFF}).scalar())
        except Exception as exc:
            log.warning("the leader connection failed: %s", exc)
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            except Exception:  # closing the session releases it anyway
                log.debug("unlock failed", exc_info=True)
        self._drop()
        self._engine.dispose()


class _FileLock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock


class _ProcessLock:
    """SQLite in memory: nobody else can share the database, so this process leads."""

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        pass


def _lock_for(url: URL, name: str, identity: str, timeout: float) -> _Lock:
    if url.get_backend_name() == "postgresql":
        return _PgLock(url, lock_key(name), f"proximity-agent {name} {identity}", timeout=timeout)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return _FileLock(Path(url.database).with_name(f"{Path(url.database).name}.{name}-leader-lock"))
    return _ProcessLock()


class LeaderElection:
    """Competes for leadership of ``name`` on the database at ``url`` in a background thread.

    ``on_elected`` / ``on_lost`` run in that thread when this process becomes / stops being the
    leader (``on_lost`` also at ``stop()`` when leading). When ``on_elected`` raises, the lock is
    released (another agent may do better) and the election is tried again after ``check_interval``.
    ``identity`` names this process in logs and in ``pg_stat_activity.application_name``.
    """

    def __init__(
        self,
        url: URL | str,
        *,
        identity: str,
        name: str = "scheduler",
        check_interval: float = 5.0,
        on_elected: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        if check_interval <= 0:
            raise ValueError("check_interval must be positive")
        self.name = name
        self.identity = identity
        self._lock = _lock_for(make_url(url) if isinstance(url, str) else url, name, identity, check_interval)
        self._interval = check_interval
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._leading = threading.Event()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this election is already running")
        self._thread = threading.Thread(target=self._loop, name=f"proximity-leader-{self.name}", daemon=True)
        self._thread.start()

    def wait_until(self, leading: bool, timeout: float) -> bool:
        """Wait until this process leads (``leading``) or not; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.is_leader == leading, timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._check()
            except Exception:  # never let the election thread die: the next round tries again
                log.exception("leader election round failed")
            self._stop.wait(self._interval)

    def _check(self) -> None:
        if self.is_leader:
            if not self._lock.still_held():
                log.error(
                    "lost the %s leadership (its database connection or lock is gone)",
                    self.name,
                    extra={"agent": self.identity},
                )
                self._step_down(release=True)
            return
        if not self._lock.try_acquire():
            return
        if self._stop.is_set():  # stop() came while we acquired
            self._lock.release()
            return
        log.info("elected %s leader", self.name, extra={"agent": self.identity})
        if self._on_elected is not None:
            try:
                self._on_elected()
            except Exception:
                log.exception("could not take up the %s leadership; handing it back", self.name)
                self._step_down(release=True)
                return
        self._set(True)  # after on_elected: whoever waits for the leader finds it leading

    def _set(self, leading: bool) -> None:
        with self._changed:
            if leading:
                self._leading.set()
            else:
                self._leading.clear()
            self._changed.notify_all()

    def _step_down(self, *, release: bool) -> None:
        self._set(False)
        if self._on_lost is not None:
            try:
                self._on_lost()
            except Exception:
                log.exception("stepping down from the %s leadership failed", self.name)
        if release:
            self._lock.release()

    def stop(self) -> None:
        """Stop competing; when leading, step down (``on_lost``) and release the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 30)
            self._thread = None
        if self.is_leader:
            log.info("releasing the %s leadership", self.name, extra={"agent": self.identity})
            self._step_down(release=True)
        else:
            self._lock.release()
