"""Bring a database to the newest schema, safely when several processes start at once.

The Alembic configuration is built in code and points at the migrations shipped inside the
package, so no ``alembic.ini`` is needed at runtime.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "downgrade", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# An arbitrary constant identifying "Proximity schema migration" among advisory locks.
_PG_LOCK_KEY = 0x5072_6F78_696D  # "Proxim"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that no other migrating process can enter at the same time."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            # released by the commit/rollback at the end of the block; DDL is transactional on PostgreSQL
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            yield conn
        return
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with engine.begin() as conn:
                yield conn
        finally:
            os.close(fd)
        return
    with engine.begin() as conn:
        yield conn


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (a no-op when already there)."""
    with _exclusive(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Revert migrations down to ``revision`` (``base``: an empty database). For tests and repairs."""
    with _exclusive(engine) as conn:
        command.downgrade(alembic_config(conn), revision)
