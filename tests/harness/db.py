"""Harness: databases. Every fixture here runs a test on SQLite and on the machine's PostgreSQL.

- ``database_url``: an empty database (no tables): a fresh SQLite file under tmp_path, or, on
  PostgreSQL, a database of this test session emptied (schema dropped and recreated) for each test.
- ``store``: a ``Store`` (migrated, its own data dir and key file). On SQLite a fresh file; on
  PostgreSQL a session-wide migrated database whose tables are truncated before each test (much
  faster than creating databases). Tests reach the raw database through ``store.engine`` /
  ``store.url``; do not ask for ``database_url`` and ``store`` in the same test (they are separate
  databases, and you would get every combination of backends).

PostgreSQL cases carry the ``postgres`` marker (``-m "not postgres"`` leaves them out). The
admin connection is ``host=127.0.0.1 port=5432 user=postgres dbname=postgres`` unless
``PROXIMITY_TEST_PG`` gives another libpq conninfo string. Session databases are dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text

from proximity_sdk.store import KEY_ENV, Store
from proximity_sdk.store.base import Base

__all__ = [
    "create_pg_database",
    "database_url",
    "drop_pg_database",
    "executed",
    "pg_empty_database",
    "pg_store_database",
    "store",
]

_PG_ADMIN = os.environ.get("PROXIMITY_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextlib.contextmanager
def executed(store: Store) -> Iterator[list[str]]:
    """The SQL statements the store sends to its database while the block runs, in order."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def _pg_admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(_PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)  # type: ignore[arg-type]  # names are generated here, never user input


def create_pg_database() -> str:
    """Create an empty PostgreSQL database; returns its SQLAlchemy URL. Drop it with drop_pg_database."""
    import psycopg.conninfo

    name = f"px_test_{uuid.uuid4().hex[:16]}"
    _pg_admin_execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(_PG_ADMIN)
    user, host, port = info.get("user", "postgres"), info.get("host", "127.0.0.1"), info.get("port", "5432")
    return f"postgresql+psycopg://{user}@{host}:{port}/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    _pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            # a connection some earlier test leaked must fail the test, not hang it
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            for sql in statements:
                conn.execute(text(sql))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_empty_database() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def pg_store_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = create_pg_database()
    Store.open(url, data_dir=tmp_path_factory.mktemp("pg-migrate"), secret_key=_throwaway_key()).close()
    yield url
    drop_pg_database(url)


def _throwaway_key() -> str:
    from proximity_sdk.store import SecretBox

    return SecretBox.generate_key()


def _truncate_all(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    # the first migration seeds the settings row; a truncated database needs it back, key check unset
    _execute(
        url,
        f"TRUNCATE {tables} RESTART IDENTITY CASCADE",
        "INSERT INTO settings (id, data, updated_at) VALUES (1, '{}', now())",
    )


@pytest.fixture(params=_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'proximity.db'}"
    url: str = request.getfixturevalue("pg_empty_database")
    _execute(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    return url


@pytest.fixture(params=_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.delenv(KEY_ENV, raising=False)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'proximity.db'}"
    else:
        url = request.getfixturevalue("pg_store_database")
        _truncate_all(url)
    opened = Store.open(url, data_dir=tmp_path / "data")
    try:
        yield opened
    finally:
        opened.close()
