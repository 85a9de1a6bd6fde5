"""Alembic environment. At runtime ``proximity_sdk.store._migrate`` hands in an open connection
(``config.attributes["connection"]``); the ``sqlalchemy.url`` path is for developers running
``alembic revision --autogenerate`` by hand."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from proximity_sdk.store import tables  # noqa: F401  (registers every table on the metadata)
from proximity_sdk.store.base import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (alembic -x or alembic.ini) to run migrations by hand")
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run them against a database")
run_migrations_online()
