"""Retention (pure): Proxmox's prune rules applied to a history of backups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proximity_sdk.errors import ValidationError
from proximity_sdk.operations.retention import Retention, RetentionItem, prune_plan


def _history(*moments: datetime) -> list[RetentionItem]:
    return [RetentionItem(m.strftime("%m-%d %H"), m) for m in moments]


def _days(first: datetime, count: int, *hours: int) -> list[RetentionItem]:
    return _history(*(first + timedelta(days=d, hours=h) for d in range(count) for h in hours))


JAN1 = datetime(2025, 1, 1, tzinfo=UTC)  # a Wednesday, ISO week 1


def test_keep_last_keeps_the_newest() -> None:
    keep, prune = prune_plan(_days(JAN1, 10, 3), Retention(keep_last=3))
    assert keep == ["01-10 03", "01-09 03", "01-08 03"]
    assert prune == [f"01-{d:02d} 03" for d in range(7, 0, -1)]


def test_keep_daily_keeps_the_newest_of_each_day_not_covered_by_keep_last() -> None:
    keep, prune = prune_plan(_days(JAN1, 5, 3, 15), Retention(keep_last=1, keep_daily=3))
    assert keep == ["01-05 15", "01-04 15", "01-03 15", "01-02 15"]
    assert prune == ["01-05 03", "01-04 03", "01-03 03", "01-02 03", "01-01 15", "01-01 03"]


def test_keep_weekly_counts_iso_weeks_after_the_daily_ones() -> None:
    keep, _ = prune_plan(_days(JAN1, 21, 3), Retention(keep_daily=2, keep_weekly=2))
    # Jan 20-21 are week 4 (kept daily), Jan 19 is the newest of week 3, Jan 12 of week 2
    assert keep == ["01-21 03", "01-20 03", "01-19 03", "01-12 03"]


def test_no_rule_keeps_everything_and_the_newest_is_never_pruned() -> None:
    history = _days(JAN1, 4, 3)
    assert prune_plan(history, Retention()) == ([i.id for i in reversed(history)], [])
    assert prune_plan([], Retention(keep_last=1)) == ([], [])
    assert prune_plan(history[:1], Retention(keep_weekly=1)) == (["01-01 03"], [])
    # order of the input does not matter; naive times count as UTC
    naive = [RetentionItem(i.id, i.created_at.replace(tzinfo=None)) for i in reversed(history)]
    assert prune_plan(naive, Retention(keep_last=2)) == prune_plan(history, Retention(keep_last=2))


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "3"])
def test_rules_must_be_positive_whole_numbers(bad: object) -> None:
    with pytest.raises(ValidationError, match="keep_daily"):
        Retention(keep_daily=bad)  # type: ignore[arg-type]


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=90 * 24 * 60), min_size=1, max_size=40, unique=True),
    last=st.none() | st.integers(1, 5),
    daily=st.none() | st.integers(1, 7),
    weekly=st.none() | st.integers(1, 4),
)
def test_any_history_splits_cleanly_and_keeps_the_newest(
    offsets: list[int], last: int | None, daily: int | None, weekly: int | None
) -> None:
    history = [RetentionItem(str(m), JAN1 + timedelta(minutes=m)) for m in offsets]
    keep, prune = prune_plan(history, Retention(keep_last=last, keep_daily=daily, keep_weekly=weekly))
    assert sorted(keep + prune) == sorted(i.id for i in history)
    assert not set(keep) & set(prune)
    assert keep[0] == str(max(offsets))
    if last or daily or weekly:
        assert len(keep) <= max(1, (last or 0) + (daily or 0) + (weekly or 0))
        assert len(keep) >= min(len(history), last or 1)
