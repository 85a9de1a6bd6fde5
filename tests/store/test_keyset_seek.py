"""Keyset pages (``after=``): rows created in the same instant neither repeat nor go missing, in
either order of listing, and on SQLite a page after a cursor seeks by the index instead of
walking it from the start (issue 18: page 100 of the apps cost 8x page 1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.dialects import sqlite

from proximity_sdk.store import Store
from proximity_sdk.store._keyset import after_cursor
from proximity_sdk.store.apps_repo import _APP_SELECT
from proximity_sdk.store.tables import AppRow, OperationRow

_SAME_INSTANT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture
def host(store: Store) -> str:
    return store.hosts.add(name="pve1", url="https://pve1:8006", token_id="root@pam!px", token_secret="t1").id


def test_apps_created_in_one_instant_page_through_whole(store: Store, host: str) -> None:
    made = [store.apps.create(hostname=f"app-{i}", host_id=host).id for i in range(9)]
    with store.session() as s:  # four of them share one created_at, between the others
        s.execute(update(AppRow).where(AppRow.id.in_(made[2:6])).values(created_at=_SAME_INSTANT))
        s.execute(update(AppRow).where(AppRow.id.in_(made[:2])).values(created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    everything = [a.id for a in store.apps.list(limit=100)]
    seen: list[str] = []
    page = store.apps.list(limit=2)
    while page:
        seen.extend(a.id for a in page)
        page = store.apps.list(limit=2, after=(page[-1].created_at, page[-1].id))
    assert seen == everything
    assert sorted(seen) == sorted(made)
    tied = [a.id for a in store.apps.list(limit=100) if a.created_at == _SAME_INSTANT]
    assert tied == sorted(made[2:6]), "ties are broken by id"


def test_operations_created_in_one_instant_page_newest_first_whole(store: Store) -> None:
    made = [store.operations.create("deploy", steps=["a"]).id for _ in range(7)]
    with store.session() as s:
        s.execute(update(OperationRow).where(OperationRow.id.in_(made[1:5])).values(created_at=_SAME_INSTANT))
    everything = [o.id for o in store.operations.list(limit=100)]
    seen: list[str] = []
    page = store.operations.list(limit=3)
    while page:
        seen.extend(o.id for o in page)
        page = store.operations.list(limit=3, after=(page[-1].created_at, page[-1].id))
    assert seen == everything
    assert sorted(seen) == sorted(made)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the query plan read here is SQLite's
@pytest.mark.parametrize("newest_first", [False, True])
def test_a_page_after_a_cursor_seeks_by_the_index_on_sqlite(store: Store, host: str, newest_first: bool) -> None:
    assert store.dialect == "sqlite"
    for i in range(3):
        store.apps.create(hostname=f"app-{i}", host_id=host)
    order = (AppRow.created_at.desc(), AppRow.id) if newest_first else (AppRow.created_at, AppRow.id)
    query = after_cursor(
        _APP_SELECT, AppRow.created_at, AppRow.id, (_SAME_INSTANT, "x"), newest_first=newest_first, id_descending=False
    ).order_by(*order)
    # bound parameters, as the store runs it (with literals SQLite plans the OR differently)
    compiled = query.limit(100).compile(dialect=sqlite.dialect())
    values = tuple(str(compiled.params[name]) for name in compiled.positiontup or ())
    with store.session() as s:
        plan = " ".join(str(r[-1]) for r in s.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values))
    assert "SEARCH apps USING INDEX ix_apps_created_at_id (created_at" in plan, plan
