"""Column types: timestamps are stored in UTC and come back timezone-aware, on every database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from proximity_sdk.models.user import Role
from proximity_sdk.store import Store
from proximity_sdk.store.tables import UserRow


def test_timestamps_are_utc_and_aware(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=plus_two)
    with store.session() as s:
        s.add(UserRow(id="u1", name="alice", role=Role.ADMIN, created_at=local))
    with store.session() as s:
        row = s.get(UserRow, "u1")
        assert row is not None
        assert row.created_at == local
        assert row.created_at.tzinfo == UTC
        assert row.created_at.hour == 10
    assert store.users.get("alice").created_at.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive datetime"), store.session() as s:
        s.add(UserRow(id="u2", name="bob", role=Role.MEMBER, created_at=datetime(2026, 1, 1)))
