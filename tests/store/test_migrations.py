"""Migrations: empty -> head, down to base and back, models match migrations, concurrent starts."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.engine import make_url

from proximity_sdk.store import _migrate
from proximity_sdk.store._engine import create_store_engine
from proximity_sdk.store.base import Base
from proximity_sdk.store.tables import SettingsRow


def _engine(database_url: str) -> Engine:
    return create_store_engine(make_url(database_url))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_empty_database_to_head(database_url: str) -> None:
    engine = _engine(database_url)
    try:
        assert _tables(engine) == set()
        assert _migrate.current_revision(engine) is None
        _migrate.upgrade(engine)
        assert _migrate.current_revision(engine) == _migrate.head_revision()
        assert _tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
        with engine.connect() as conn:
            assert conn.execute(select(SettingsRow.id, SettingsRow.data)).all() == [(1, {})]
        _migrate.upgrade(engine)  # already at head: a no-op
        assert _migrate.current_revision(engine) == _migrate.head_revision()
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(database_url: str) -> None:
    engine = _engine(database_url)
    try:
        _migrate.upgrade(engine)
        _migrate.downgrade(engine, "base")
        assert _migrate.current_revision(engine) is None
        assert _tables(engine) <= {"alembic_version"}
        _migrate.upgrade(engine)
        assert _migrate.current_revision(engine) == _migrate.head_revision()
        assert _tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
    finally:
        engine.dispose()


def test_models_match_migrations(database_url: str) -> None:
    engine = _engine(database_url)
    try:
        _migrate.upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"tables.py and the migrations differ; write a migration for: {diff}"
    finally:
        engine.dispose()


def test_concurrent_upgrades_do_not_race(database_url: str) -> None:
    engines = [_engine(database_url) for _ in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def run(engine: Engine) -> None:
        try:
            start.wait()
            _migrate.upgrade(engine)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert _migrate.current_revision(engines[0]) == _migrate.head_revision()
    finally:
        for e in engines:
            e.dispose()


def test_migrations_ship_inside_the_package() -> None:
    assert (_migrate.MIGRATIONS_DIR / "env.py").is_file()
    versions = sorted(p.name for p in (_migrate.MIGRATIONS_DIR / "versions").glob("*.py"))
    assert versions
    assert versions[0].startswith("0001_")
    assert Path(_migrate.__file__).parent == _migrate.MIGRATIONS_DIR.parent
