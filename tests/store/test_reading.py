"""``Store.reading()``: reads on a connection of the thread's own that cannot write and does not
wait long for a lock (the agent's event loop reads a few rows this way)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from proximity_sdk.errors import NotFoundError
from proximity_sdk.models.app import Port
from proximity_sdk.store import ReadBusy, Store


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """reading() is for SQLite files; the test of what PostgreSQL does runs on both backends."""
    monkeypatch.delenv("PROXIMITY_SECRET_KEY", raising=False)
    opened = Store.open(f"sqlite:///{tmp_path / 'db' / 'proximity.db'}", data_dir=tmp_path / "data")
    try:
        yield opened
    finally:
        opened.close()


def _app(store: Store) -> str:
    store.hosts.add(name="pve1", url="https://pve1:8006", token_id="root@pam!px", token_secret="t1")
    return store.apps.create(hostname="git-1", host_id="pve1").id


@pytest.fixture
def app_id(sqlite_store: Store) -> str:
    return _app(sqlite_store)


def test_reads_inside_see_what_other_threads_committed(sqlite_store: Store, app_id: str) -> None:
    store = sqlite_store
    with store.reading():
        assert store.apps.get(app_id).vmid is None
    writer = threading.Thread(target=lambda: store.apps.patch(app_id, vmid=150))
    writer.start()
    writer.join()
    with store.reading():
        assert store.apps.get(app_id).vmid == 150
        with pytest.raises(NotFoundError, match="no-such-app"):
            store.apps.get("no-such-app")


def test_an_app_read_inside_is_the_app_read_outside(sqlite_store: Store, app_id: str) -> None:
    """apps.get reads on the reader's own connection without SQLAlchemy: same App, same errors."""
    store = sqlite_store
    store.apps.update(app_id, address="10.0.0.7", ports=[Port(service="web", port=80), Port(service="ssh", port=22)])
    bare = store.apps.create(hostname="bare-1", host_id="pve1")  # no ports
    for ident in (app_id, bare.id):
        with store.reading():
            inside = store.apps.get(ident)
        assert inside == store.apps.get(ident)
    assert [p.port for p in store.apps.get(app_id).ports] == [80, 22]  # what was compared has ports
    with pytest.raises(NotFoundError) as outside_error:
        store.apps.get("gone")
    with pytest.raises(NotFoundError) as inside_error, store.reading():
        store.apps.get("gone")
    assert str(inside_error.value) == str(outside_error.value)
    store.apps.keep_reads()  # a server's kept Apps: the reader's read gives the App the pool's gave
    kept = store.apps.get(app_id)
    with store.reading():
        assert store.apps.get(app_id) is kept


def test_a_write_inside_is_refused_and_writes_nothing(sqlite_store: Store, app_id: str) -> None:
    store = sqlite_store
    with pytest.raises(RuntimeError, match="reads only"), store.reading():
        store.apps.patch(app_id, vmid=150)  # an immediate session
    with pytest.raises(RuntimeError, match="reads only"), store.reading(), store.unit():
        pass
    # a plain session that writes: SQLite's query_only refuses it
    with pytest.raises(Exception, match="readonly"), store.reading(), store.session() as s:
        s.execute(text("UPDATE apps SET vmid = 151"))
    assert store.apps.get(app_id).vmid is None


def test_a_locked_file_gives_read_busy_within_the_reader_wait_not_the_pool_wait(
    sqlite_store: Store, app_id: str
) -> None:
    store = sqlite_store
    store.engine.dispose()  # an exclusive lock needs every other connection closed (the pool's)
    database = store.engine.url.database
    assert database is not None
    locker = sqlite3.connect(database, isolation_level=None)
    try:
        # exclusive locking mode holds the lock past the transaction: every other connection,
        # WAL reader included, is then busy (sqlite.org/wal.html, "SQLITE_BUSY in WAL mode")
        locker.execute("PRAGMA locking_mode=EXCLUSIVE")
        locker.execute("BEGIN EXCLUSIVE")
        locker.execute("UPDATE apps SET vmid = 7")
        locker.execute("COMMIT")
        began = time.monotonic()
        with pytest.raises(ReadBusy, match="outside"), store.reading():
            store.apps.get(app_id)
        assert time.monotonic() - began < 2, "the reader waits 0.1 s for a lock, not the pool's 15 s"
    finally:
        locker.close()
    with store.reading():  # the lock is gone: the same reader reads again
        assert store.apps.get(app_id).vmid == 7


def test_reading_is_for_sqlite_files(store: Store, tmp_path: Path) -> None:
    if store.dialect == "postgresql":
        assert not store.reads_locally
        with pytest.raises(ValueError, match="SQLite file"), store.reading():
            pass
        return
    assert store.reads_locally
    memory = Store.open("sqlite://", data_dir=tmp_path / "memory")
    try:
        assert not memory.reads_locally
        with pytest.raises(ValueError, match="SQLite file"), memory.reading():
            pass
    finally:
        memory.close()


def test_blocks_do_not_nest_and_a_closed_store_refuses(sqlite_store: Store, app_id: str) -> None:
    store = sqlite_store
    with pytest.raises(RuntimeError, match="another reading"), store.reading(), store.reading():
        pass
    with store.reading():  # the failed nesting left the thread as it was
        store.apps.get(app_id)
    store.apps.patch(app_id, vmid=300)  # and writes outside go to the pool's connections
    store.close()
    with pytest.raises(RuntimeError, match="closed"), store.reading():
        pass
