"""The store's PostgreSQL connections: one kept per operation worker, not opened per write."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event

from proximity_sdk.store import Store
from proximity_sdk.store._engine import PG_POOL_SIZE
from proximity_sdk.store.operations_repo import NewEvent
from tests.harness.db import create_pg_database, drop_pg_database

WRITERS = 16  # an engine's default workers (OperationEngine(max_workers=16))


@pytest.mark.postgres
def test_as_many_threads_as_an_engine_has_workers_write_at_once_on_the_connections_kept(tmp_path: Path) -> None:
    """With SQLAlchemy's default pool (5 kept) these 16 writers opened a new connection, a
    PostgreSQL backend of its own, for about one write in seven (90 of 640)."""
    url = create_pg_database()
    try:
        with Store.open(url, data_dir=tmp_path, secret_key=Fernet.generate_key()) as store:
            ops = [store.operations.create("toy", steps=["work"]).id for _ in range(WRITERS)]
            opened: list[object] = []
            event.listen(store.engine, "connect", lambda *_args: opened.append(None))
            start = threading.Barrier(WRITERS)

            def write(op_id: str) -> None:
                start.wait()
                for n in range(40):
                    store.operations.append_events(op_id, [NewEvent(f"event {n}", step="work")])
                    time.sleep(0.002)  # a worker between two writes (a Proxmox request, a poll)

            threads = [threading.Thread(target=write, args=(op_id,)) for op_id in ops]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert all(len(store.operations.events(op_id)) >= 40 for op_id in ops)
            assert WRITERS <= PG_POOL_SIZE
            assert len(opened) <= WRITERS
    finally:
        drop_pg_database(url)
