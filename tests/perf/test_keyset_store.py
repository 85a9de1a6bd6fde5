"""Keyset paging in the store (issue 18): ``after=`` seeks past the last row seen, in each list's own
order, ties on ``created_at`` broken by id, and the SDK's ``apps.list()`` pages that way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import update

from proximity_sdk._client import Proximity
from proximity_sdk.errors import ValidationError
from proximity_sdk.store.tables import AppRow, BackupRow, OperationRow

SAME_TIME = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def px(tmp_path: Path, database_url: str) -> Iterator[Proximity]:
    """On SQLite and on the machine's PostgreSQL (the harness's ``database_url``)."""
    with Proximity.local(
        database_url=database_url, data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False
    ) as px:
        px.hosts.add("lab", url="https://127.0.0.1:8006", token_id="root@pam!t", token_secret="s", check=False)
        yield px


def _walk(fetch: Any, size: int) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = fetch(after=after, limit=size)
        seen += [item.id for item in page]
        if len(page) < size:
            return seen
        after = (page[-1].created_at, page[-1].id)


def test_apps_keyset_walks_every_row_once_even_with_equal_times(px: Proximity) -> None:
    host = px.hosts.get("lab").id
    ids = [px.store.apps.create(hostname=f"k{i:02d}", host_id=host).id for i in range(11)]
    with px.store.session() as s:  # six apps created "at the same microsecond": only the id orders them
        s.execute(update(AppRow).where(AppRow.id.in_(ids[3:9])).values(created_at=SAME_TIME))
    expected = [a.id for a in px.store.apps.list(limit=100)]
    assert sorted(expected) == sorted(ids)
    for size in (1, 2, 4, 11):
        assert _walk(px.store.apps.list, size) == expected
    with pytest.raises(ValidationError, match="offset or after"):
        px.store.apps.list(offset=1, after=(SAME_TIME, ids[0]))
    with pytest.raises(ValidationError, match="timezone-aware"):
        px.store.apps.list(after=(datetime(2026, 1, 1), ids[0]))


def test_operations_and_backups_keyset_in_newest_first_order(px: Proximity) -> None:
    ops = [px.store.operations.create("noop", steps=["one"]).id for _ in range(7)]
    with px.store.session() as s:
        s.execute(update(OperationRow).where(OperationRow.id.in_(ops[1:5])).values(created_at=SAME_TIME))
    expected = [o.id for o in px.store.operations.list(limit=100)]
    assert sorted(expected) == sorted(ops)
    for size in (1, 3, 7):
        assert _walk(px.store.operations.list, size) == expected

    host = px.hosts.get("lab").id
    app = px.store.apps.create(hostname="b", host_id=host)
    backups = [px.store.backups.create(app_id=app.id, hostname="b", host_id=host).id for _ in range(6)]
    with px.store.session() as s:
        s.execute(update(BackupRow).where(BackupRow.id.in_(backups[:4])).values(created_at=SAME_TIME))
    expected = [b.id for b in px.store.backups.list(limit=100)]
    assert sorted(expected) == sorted(backups)
    for size in (1, 4, 6):
        assert _walk(px.store.backups.list, size) == expected


def test_sdk_apps_list_pages_past_one_store_page(px: Proximity) -> None:
    host = px.hosts.get("lab").id
    ids = [px.store.apps.create(hostname=f"many-{i:03d}", host_id=host).id for i in range(205)]  # _PAGE is 200
    listed = [a.id for a in px.apps.list()]
    assert listed == [a.id for a in px.store.apps.list(limit=205)]
    assert sorted(listed) == sorted(ids)
