"""What ``px.apps.updates()`` finds: an app with a newer catalog version or newer image digests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from proximity_sdk.models._html import HtmlRepr

__all__ = ["WEEKDAYS", "AppUpdate", "ImageUpdate", "UpdateWindow", "Weekday"]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ImageUpdate(HtmlRepr, BaseModel):
    """One image of the app's compose project whose registry digest differs from the running one."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    image: str
    current_digest: str | None
    available_digest: str


class AppUpdate(HtmlRepr, BaseModel):
    """An app that can be updated: ``available_version`` is a newer catalog version (None: the same
    version), ``images`` the floating tags (``latest``...) that point at new digests after a pull."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    app_id: str
    hostname: str
    catalog_id: str | None
    current_version: str | None
    available_version: str | None
    images: tuple[ImageUpdate, ...] = ()
    checked_at: datetime


class UpdateWindow(HtmlRepr, BaseModel):
    """When an app may be updated automatically: on ``days`` (default every day), from ``start``
    (``HH:MM``, UTC) for ``minutes``. In each window the app is checked once and, when something is
    newer, updated (with its safety net)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: tuple[Weekday, ...] = WEEKDAYS
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, UTC")
    minutes: int = Field(default=120, ge=15, le=1440)

    @field_validator("days")
    @classmethod
    def _some_days(cls, value: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        if not value:
            raise ValueError("give at least one day (mon..sun)")
        return tuple(day for day in WEEKDAYS if day in value)  # each once, in week order

    def opened_at(self, now: datetime) -> datetime | None:
        """The start of the window that ``now`` falls in, or None outside every window."""
        moment = now.astimezone(UTC)
        hour, minute = (int(part) for part in self.start.split(":"))
        for back in (0, 1):  # a window opened yesterday may still be open after midnight
            day = moment - timedelta(days=back)
            opened = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if WEEKDAYS[opened.weekday()] in self.days and opened <= moment < opened + timedelta(minutes=self.minutes):
                return opened
        return None
