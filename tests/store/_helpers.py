"""Shared bits of the store tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from proximity_sdk.store import Store

__all__ = ["logical_dump", "raw_dump", "raw_query", "url_of"]


def url_of(store: Store) -> str:
    """The store's database URL with its password, to open the same database again."""
    return store.engine.url.render_as_string(hide_password=False)


def raw_query(database_url: str, sql: str) -> list[tuple[object, ...]]:
    """Rows from a plain SQL query on a connection of our own (no Store involved)."""
    url = make_url(database_url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def raw_dump(database_url: str) -> bytes:
    """Everything the database holds, as bytes: the SQLite files (main, WAL), or a text dump of
    every column of every table on PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        db = Path(url.database)
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())
    return logical_dump(database_url).encode()


def logical_dump(database_url: str) -> str:
    """Every row of every table, sorted: equal dumps mean equal contents."""
    engine = create_engine(make_url(database_url))
    try:
        with engine.connect() as conn:
            out = []
            for table in sorted(inspect(conn).get_table_names()):
                rows = conn.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608 - names from the inspector
                out.extend(sorted(f"{table}: {tuple(r)!r}" for r in rows))
            return "\n".join(out)
    finally:
        engine.dispose()
