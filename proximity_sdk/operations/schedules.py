"""Backup schedules: standard 5-field cron lines, stepped by APScheduler 3's ``CronTrigger`` (UTC).

Two differences between APScheduler 3 and cron are bridged here: APScheduler numbers weekdays
from Monday = 0 (cron: Sunday = 0 or 7; ``from_crontab`` passes the numbers through, so
``0 3 * * 1`` would fire on Tuesdays), so the weekday field is translated to day names; and when
both day-of-month and day-of-week are restricted, cron fires on either (APScheduler on both), so
the earlier of the two triggers wins.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from proximity_sdk.errors import ValidationError

__all__ = ["check_cron", "next_run"]

_EPSILON = timedelta(microseconds=1)
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_HINT = "For example '0 3 * * *' (every day at 03:00 UTC) or '30 2 * * 0' (Sundays at 02:30 UTC)"


def _bad(cron: object, why: str) -> ValidationError:
    return ValidationError(f"cron {cron!r} is not valid: {why}", field="cron", hint=_HINT)


def _weekday(token: str, cron: str) -> int:
    token = token.lower()
    if token in _DAYS:
        return _DAYS.index(token)
    if token.isdigit() and int(token) <= 7:
        return int(token) % 7
    raise _bad(cron, f"{token!r} is not a day of the week (0-7 or sun-sat)")


def _weekdays(field: str, cron: str) -> str:
    """cron's day-of-week field as APScheduler day names (``*`` stays)."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        found = re.fullmatch(r"(\*|[A-Za-z0-9]+)(?:-([A-Za-z0-9]+))?(?:/(\d+))?", part)
        if not found:
            raise _bad(cron, f"day-of-week part {part!r}")
        first, last, step = found.groups()
        if first == "*":
            start, end = 0, 6
        else:
            start = _weekday(first, cron)
            end = (7 if last.strip() == "7" else _weekday(last, cron)) if last else (start if not step else 6)
        if end < start:
            raise _bad(cron, f"day-of-week range {part!r} runs backwards")
        days.update(d % 7 for d in range(start, end + 1, int(step or 1)))
    return ",".join(_DAYS[d] for d in sorted(days))


def _triggers(cron: object) -> list[CronTrigger]:
    if not isinstance(cron, str) or len(cron.split()) != 5:
        raise ValidationError(
            f"cron {cron!r} must have 5 fields: minute hour day-of-month month day-of-week", field="cron", hint=_HINT
        )
    minute, hour, day, month, dow = cron.split()
    names = _weekdays(dow, cron)
    variants = [(day, names)] if day == "*" or names == "*" else [(day, "*"), ("*", names)]
    try:
        return [
            CronTrigger(minute=minute, hour=hour, day=d, month=month, day_of_week=w, timezone=UTC) for d, w in variants
        ]
    except ValueError as exc:
        raise _bad(cron, str(exc)) from None


def check_cron(cron: object) -> str:
    """The cron line, checked (raises ``ValidationError`` naming what is wrong)."""
    _triggers(cron)
    return str(cron)


def next_run(cron: str, *, after: datetime) -> datetime:
    """The first time strictly after ``after`` that the schedule fires (UTC)."""
    moment = after.astimezone(UTC) + _EPSILON  # a trigger fires at or after `now`: never the same time twice
    fires = (trigger.get_next_fire_time(None, moment) for trigger in _triggers(cron))
    times: list[datetime] = [t for t in fires if t is not None]
    if not times:
        raise ValidationError(f"cron {cron!r} never fires again", field="cron", hint=_HINT)
    return min(times).astimezone(UTC)
