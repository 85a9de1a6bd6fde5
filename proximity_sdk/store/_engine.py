"""Database URL handling and engine creation, with the SQLite settings multi-process use needs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from proximity_sdk.errors import ValidationError

__all__ = [
    "DB_FILE_NAME",
    "IMMEDIATE",
    "PG_POOL_OVERFLOW",
    "PG_POOL_SIZE",
    "READER_BUSY_TIMEOUT_MS",
    "create_reader_engine",
    "create_store_engine",
    "is_sqlite_file",
    "resolve_database_url",
]

DB_FILE_NAME = "proximity.db"
# execution option: on SQLite, open the transaction with BEGIN IMMEDIATE (take the write lock
# at once) so read-then-write sequences of concurrent processes serialize instead of failing
IMMEDIATE = "proximity_immediate"
_SQLITE_BUSY_TIMEOUT_MS = 15_000
# how long a reader connection (create_reader_engine) waits for a lock before its read fails
READER_BUSY_TIMEOUT_MS = 100
# PostgreSQL connections a Store keeps, and how many more it may open at once (create_store_engine)
PG_POOL_SIZE = 16
PG_POOL_OVERFLOW = 8


def resolve_database_url(database_url: str | None, data_dir: Path) -> URL:
    """The URL to use: the given one, or the SQLite file in ``data_dir``."""
    if database_url is None:
        return URL.create("sqlite", database=str(data_dir / DB_FILE_NAME))
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ValidationError(
            "database_url is not a URL",
            field="database_url",
            hint="Use sqlite:///path/to/file.db or postgresql+psycopg://user@host/dbname",
        ) from None
    if url.get_backend_name() == "postgresql":
        if url.get_driver_name() != "psycopg":
            # psycopg (3) is the driver we ship and test; the bare scheme would pick psycopg2
            url = url.set(drivername="postgresql+psycopg")
        return url
    if url.get_backend_name() == "sqlite":
        return url
    raise ValidationError(
        f"database {url.get_backend_name()!r} is not supported",
        field="database_url",
        hint="Use SQLite (the default) or PostgreSQL (postgresql+psycopg://...)",
    )


def create_store_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            # one shared connection, or every thread (and every session) would see its own empty database
            engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            path = Path(url.database)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # created here so it starts private; SQLite gives its -wal/-shm files the same mode. Only
            # when absent: closing any descriptor of the file drops every POSIX lock this process
            # holds on it (a second engine in a process already using it, as the agent's scheduler
            # makes), and another process would then take the WAL away from under its connections
            if not path.exists():
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    # One connection kept per operation worker (OperationEngine's 16 by default), up to 8 more
    # opened and closed above that. SQLAlchemy's default keeps 5: 16 threads writing at once opened
    # a new connection (a PostgreSQL backend started, authenticated, pinged) for one write in seven.
    # At most 24 per process: 3 agents and their helpers stay under PostgreSQL's 100 by default.
    return create_engine(url, pool_pre_ping=True, pool_size=PG_POOL_SIZE, max_overflow=PG_POOL_OVERFLOW)


def is_sqlite_file(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and bool(url.database) and url.database != ":memory:"


def create_reader_engine(url: URL) -> Engine:
    """One connection to an existing SQLite file that cannot write (``query_only``) and waits at
    most READER_BUSY_TIMEOUT_MS for a lock. In WAL mode a reader never waits for a writer; it
    waits only while a connection recovers the WAL after a crash, or opens the file as the last
    one closes it (sqlite.org/wal.html, "Sometimes Queries Return SQLITE_BUSY In WAL Mode")."""
    if not is_sqlite_file(url):
        raise ValueError(f"a reader engine needs a SQLite file, not {url.render_as_string(hide_password=True)}")
    engine = create_engine(
        url, poolclass=StaticPool, connect_args={"check_same_thread": False, "timeout": READER_BUSY_TIMEOUT_MS / 1000}
    )
    _configure_sqlite(engine, busy_timeout_ms=READER_BUSY_TIMEOUT_MS, query_only=True)
    return engine


def _configure_sqlite(
    engine: Engine, *, busy_timeout_ms: int = _SQLITE_BUSY_TIMEOUT_MS, query_only: bool = False
) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control from the sqlite3 module (it would not BEGIN before SELECT or DDL)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            if query_only:
                cursor.execute("PRAGMA query_only=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
