"""The Store: one database (SQLite by default, or PostgreSQL), migrated on open, with repositories."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from proximity_sdk.store import _migrate
from proximity_sdk.store._common import StoreContext
from proximity_sdk.store._engine import (
    IMMEDIATE,
    create_reader_engine,
    create_store_engine,
    is_sqlite_file,
    resolve_database_url,
)
from proximity_sdk.store._keys import open_secret_box
from proximity_sdk.store.apps_repo import AppsRepository
from proximity_sdk.store.crypto import SecretBox
from proximity_sdk.store.hosts_repo import HostsRepository, NodesRepository
from proximity_sdk.store.settings_repo import SettingsRepository
from proximity_sdk.store.users_repo import UsersRepository

if TYPE_CHECKING:
    from proximity_sdk.store.backups_repo import BackupsRepository
    from proximity_sdk.store.operations_repo import OperationsRepository
    from proximity_sdk.store.reservations_repo import ReservationsRepository
    from proximity_sdk.store.update_policies_repo import UpdatePoliciesRepository

__all__ = ["ReadBusy", "Store", "default_data_dir"]


class ReadBusy(RuntimeError):
    """A read inside ``Store.reading()`` found the SQLite file locked longer than its reader
    waits (READER_BUSY_TIMEOUT_MS): make the same call again outside ``reading()``."""


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("proximity"))


class Store:
    """Proximity's state. Open with ``Store.open()``; use the repositories; ``close()`` at the end.

    Repositories return pydantic models; no session or row ever leaves the store. Secrets are
    encrypted at rest and only returned by the calls made for them (``hosts.credentials``,
    ``apps.secrets``, ``apps.root_password``).
    """

    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._immediate = sessionmaker(engine.execution_options(**{IMMEDIATE: True}), expire_on_commit=False)
        self._ctx = StoreContext(self._begin, box)
        self._closed = False
        self._readers = threading.local()  # this thread's reader sessionmaker (reading())
        self._reader_engines: list[Engine] = []
        self._readers_lock = threading.Lock()
        self.settings = SettingsRepository(self._ctx)
        self.hosts = HostsRepository(self._ctx)
        self.nodes = NodesRepository(self._ctx)
        self.users = UsersRepository(self._ctx)
        self.apps = AppsRepository(self._ctx)

    @classmethod
    def open(
        cls,
        database_url: str | None = None,
        *,
        data_dir: Path | str | None = None,
        secret_key: str | bytes | None = None,
    ) -> Store:
        """Open (and create or migrate) the database.

        ``database_url``: None for the SQLite file ``proximity.db`` in ``data_dir`` (default: the
        user data dir, e.g. ``~/.local/share/proximity``), or ``postgresql+psycopg://...``.
        ``secret_key``: a Fernet key; else ``$PROXIMITY_SECRET_KEY``; else ``secret.key`` in
        ``data_dir`` (created, mode 0600, on a fresh database). Raises ``SecretKeyError`` at once
        when the key is not the one the database's secrets were encrypted with.
        """
        directory = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        url = resolve_database_url(database_url, directory)
        engine = create_store_engine(url)
        try:
            _migrate.upgrade(engine)
            box = open_secret_box(engine, secret_key, directory)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, box)

    # Repositories written alongside the operation engine; imported on first use so the core
    # store does not depend on them being importable.
    @functools.cached_property
    def operations(self) -> OperationsRepository:
        from proximity_sdk.store.operations_repo import OperationsRepository

        return OperationsRepository(self._ctx)

    @functools.cached_property
    def reservations(self) -> ReservationsRepository:
        from proximity_sdk.store.reservations_repo import ReservationsRepository

        return ReservationsRepository(self._ctx)

    @functools.cached_property
    def backups(self) -> BackupsRepository:
        """Backup records, backup schedules and backup targets."""
        from proximity_sdk.store.backups_repo import BackupsRepository

        return BackupsRepository(self._ctx)

    @functools.cached_property
    def update_policies(self) -> UpdatePoliciesRepository:
        """Automatic update windows of apps."""
        from proximity_sdk.store.update_policies_repo import UpdatePoliciesRepository

        return UpdatePoliciesRepository(self._ctx)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def secrets(self) -> SecretBox:
        """The SecretBox in use (it changes after ``rotate_secret_key``)."""
        return self._ctx.box

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @contextlib.contextmanager
    def session(self, *, immediate: bool = False) -> Iterator[Session]:
        """A session in a transaction: committed when the block ends, rolled back on an exception
        (inside ``unit()``: the unit's session and transaction).

        ``immediate=True`` takes SQLite's write lock at the start (BEGIN IMMEDIATE), for
        read-then-write sequences that must not interleave with other processes; on PostgreSQL
        use ``SELECT ... FOR UPDATE`` (``with_for_update()``) for the same effect.
        """
        with self._ctx.session(immediate=immediate) as s:
            yield s

    @property
    def reads_locally(self) -> bool:
        """Whether the database is a SQLite file on this machine, so that ``reading()`` is there."""
        return is_sqlite_file(self.engine.url)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Every store call of this thread inside the block reads through a connection of this
        thread's own, opened on first use and kept until ``close()``: it never waits behind the
        connection pool, cannot write (SQLite's ``query_only``; a write, a ``unit()`` or an
        ``immediate`` session inside raises RuntimeError) and waits at most 0.1 s for a lock
        (``ReadBusy`` then: make the same call again outside the block). For a thread that must
        not block, as the agent's event loop, reading a few rows. SQLite files only
        (``reads_locally``); ValueError otherwise."""
        if self._closed:
            raise RuntimeError("the store is closed")
        reader: tuple[sessionmaker[Session], sqlite3.Connection] | None = getattr(self._readers, "reader", None)
        try:
            if reader is None:
                engine = create_reader_engine(self.engine.url)
                with self._readers_lock:
                    self._reader_engines.append(engine)
                # one connection (StaticPool): the sessions' and the raw one are the same; checked
                # back in at once, the pool keeps it open
                proxy = engine.raw_connection()
                raw = proxy.driver_connection
                proxy.close()
                assert isinstance(raw, sqlite3.Connection)
                reader = self._readers.reader = (sessionmaker(engine, expire_on_commit=False), raw)
            with self._ctx.reading_with(reader[0].begin, reader[1]):
                yield
        except (OperationalError, sqlite3.OperationalError) as exc:
            cause = exc.orig if isinstance(exc, OperationalError) else exc
            if "locked" in str(cause) or "busy" in str(cause):
                raise ReadBusy(
                    f"the database file was locked for longer than a reader waits ({cause}); "
                    "make the same call again outside Store.reading()"
                ) from exc
            raise

    def unit(self) -> contextlib.AbstractContextManager[None]:
        """A unit of work: every store call of this thread inside the block is one transaction,
        committed when the block ends (all of it or nothing). For a few writes that belong
        together (a step's journal entry, record change and events); never around a Proxmox
        request. See ``StoreContext.unit``."""
        return self._ctx.unit()

    def after_commit(self, call: Callable[[], object]) -> None:
        """Call ``call`` once this thread's writes are committed: at once outside a unit of work,
        when the unit commits inside one, never if it rolls back. See ``StoreContext.after_commit``."""
        self._ctx.after_commit(call)

    @contextlib.contextmanager
    def _begin(self, *, immediate: bool = False) -> Iterator[Session]:
        if self._closed:
            raise RuntimeError("the store is closed")
        factory = self._immediate if immediate else self._sessions
        with factory.begin() as s:
            yield s

    def rotate_secret_key(self, new_key: str | bytes | None = None) -> str:
        """Re-encrypt every secret with a new key; returns the new key.

        With a key file, the key may be generated here (None) and the file is updated safely.
        With a key from ``secret_key=`` or the environment, pass ``new_key`` (saved by you
        beforehand) and switch your configuration to it afterwards. See ``_rotate`` for why
        an interruption at any point loses nothing.
        """
        return self.settings.rotate_secret_key(new_key)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.engine.dispose()
            with self._readers_lock:
                for engine in self._reader_engines:
                    engine.dispose()
                self._reader_engines.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
