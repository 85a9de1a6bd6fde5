"""Cron schedules: standard cron meaning (weekday 0 = Sunday, day-of-month OR weekday), UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from proximity_sdk.errors import ValidationError
from proximity_sdk.operations.schedules import check_cron, next_run

FRIDAY_LATE = datetime(2025, 1, 3, 23, 50, tzinfo=UTC)


@pytest.mark.parametrize(("cron", "expected"), [
    ("0 3 * * *", datetime(2025, 1, 4, 3, 0)),
    ("*/15 * * * 1-5", datetime(2025, 1, 6, 0, 0)),      # Monday to Friday, as cron means it
    ("0 3 * * 0", datetime(2025, 1, 5, 3, 0)),           # 0 is Sunday
    ("0 3 * * 7", datetime(2025, 1, 5, 3, 0)),           # and so is 7
    ("0 3 * * sat,sun", datetime(2025, 1, 4, 3, 0)),
    ("0 3 * * */2", datetime(2025, 1, 4, 3, 0)),         # sun, tue, thu, sat
    ("0 3 13 * 5", datetime(2025, 1, 10, 3, 0)),         # the 13th OR a Friday
    ("55 23 * * *", datetime(2025, 1, 3, 23, 55)),
    ("50 23 3 1 *", datetime(2026, 1, 3, 23, 50)),       # strictly after: not the same minute again
])  # fmt: skip
def test_next_run_follows_cron(cron: str, expected: datetime) -> None:
    assert next_run(cron, after=FRIDAY_LATE) == expected.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "cron", ["", "0 3 * *", "0 3 * * * *", "61 * * * *", "0 3 * * 8", "0 3 * * 5-1", "0 3 * * funday", "0 3 32 * *", 42]
)
def test_bad_cron_lines_are_refused_with_the_field(cron: object) -> None:
    with pytest.raises(ValidationError) as refused:
        check_cron(cron)
    assert refused.value.field == "cron"
