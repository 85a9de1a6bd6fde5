"""Reads of apps, once asked to keep them (``store.apps.keep_reads``, as the agent does), keep the
App of each row they made (store/apps_repo._AppCache) and give it again only for the same content:
an unchanged row becomes the same model again, and any change to what an App is made of, by this
store, by another agent on the same database, or by an UPDATE that leaves updated_at alone, is read
as it is now"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Text, cast, insert, select, update

from proximity_sdk.errors import ValidationError
from proximity_sdk.models.app import App, Port
from proximity_sdk.store import Store
from proximity_sdk.store.apps_repo import _APP_COLUMNS
from proximity_sdk.store.tables import AppRow, PortRow


def _create(store: Store) -> App:
    store.hosts.add(name="pve1", url="https://pve1:8006", token_id="root@pam!px", token_secret="t1")
    return store.apps.create(
        hostname="git-1",
        host_id="pve1",
        vmid=105,
        ports=[Port(service="web", port=3000)],
        config={"compose_text": "services: {}\n", "main_port": 3000},
        root_password="hunter2-root",
    )


@pytest.fixture
def app(store: Store) -> App:
    store.apps.keep_reads()
    return _create(store)


def test_by_default_every_read_is_a_new_app_that_its_reader_may_change(store: Store) -> None:
    """A script or a notebook may change an App's config dict in place (it is a plain dict):
    without keep_reads, that never shows in another read."""
    app = _create(store)
    first = store.apps.get(app.id)
    first.config["main_port"] = 1
    again = store.apps.get(app.id)
    assert again is not first and again.config["main_port"] == 3000
    assert store.apps.list()[0] is not again


def test_keep_reads_takes_a_count_and_zero_stops_keeping(store: Store, app: App) -> None:
    first = store.apps.get(app.id)
    assert store.apps.get(app.id) is first
    store.apps.keep_reads(0)
    assert store.apps.get(app.id) is not first
    with pytest.raises(ValidationError, match="count"):
        store.apps.keep_reads(-1)


def test_an_unchanged_row_is_read_as_the_same_model(store: Store, app: App) -> None:
    first = store.apps.get(app.id)
    assert first == app
    assert store.apps.get(app.id) is first
    assert store.apps.list()[0] is first


def test_a_write_by_another_agent_on_the_same_database_is_read(store: Store, app: App, tmp_path: Path) -> None:
    cached = store.apps.get(app.id)
    other = Store.open(store.url, data_dir=tmp_path / "data")  # another replica: the same database and key
    try:
        other.apps.update(app.id, address="10.0.0.9", config={"compose_text": "services: {a: {}}\n"})
    finally:
        other.close()
    now = store.apps.get(app.id)
    assert now is not cached
    assert (now.address, now.config) == ("10.0.0.9", {"compose_text": "services: {a: {}}\n"})
    assert store.apps.list()[0] == now
    assert len(store.apps._apps._kept) == 1  # the new version replaced the old one, not beside it


def test_a_change_that_keeps_updated_at_is_read(store: Store, app: App) -> None:
    """Not every writer stamps updated_at (a raw UPDATE, a port row): the key is the content."""
    cached = store.apps.get(app.id)
    with store.engine.begin() as conn:
        conn.execute(
            update(AppRow)
            .where(AppRow.id == app.id)
            .values(config={"compose_text": "changed\n"}, updated_at=cached.updated_at)
        )
    assert store.apps.get(app.id).config == {"compose_text": "changed\n"}
    assert store.apps.get(app.id).updated_at == cached.updated_at
    with store.engine.begin() as conn:
        conn.execute(insert(PortRow).values(app_id=app.id, service="ssh", port=22, protocol="tcp"))
    assert [p.port for p in store.apps.get(app.id).ports] == [3000, 22]
    assert [p.port for p in store.apps.list()[0].ports] == [3000, 22]


def test_the_cache_is_made_of_what_an_app_holds_no_secret(store: Store, app: App) -> None:
    assert "root_password" not in _APP_COLUMNS
    assert set(_APP_COLUMNS) - {"cores", "memory_mb", "swap_mb", "disk_gb"} <= set(App.model_fields)
    assert store.apps.root_password(app.id) is not None
    assert "hunter2-root" not in repr(store.apps.get(app.id))


def test_the_config_text_a_kept_app_was_read_from_is_given_for_that_app_only(store: Store, app: App) -> None:
    def held() -> str:
        with store.engine.connect() as conn:
            text = conn.execute(select(cast(AppRow.config, Text)).where(AppRow.id == app.id)).scalar_one()
        assert isinstance(text, str)
        return text

    read = store.apps.get(app.id)
    assert store.apps.stored_config(read) == held()
    assert json.loads(held()) == read.config == {"compose_text": "services: {}\n", "main_port": 3000}
    # an App that is not the one kept for its row: a copy with another config, an older read
    assert store.apps.stored_config(read.model_copy(update={"config": {"main_port": 1}})) is None
    store.apps.update(app.id, config={"main_port": 8080})
    now = store.apps.get(app.id)
    assert store.apps.stored_config(read) is None
    assert store.apps.stored_config(now) == held() and json.loads(held()) == {"main_port": 8080}
    store.apps.keep_reads(0)  # nothing kept: nothing to give
    assert store.apps.stored_config(store.apps.get(app.id)) is None
