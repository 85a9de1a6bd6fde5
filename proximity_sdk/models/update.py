"""What ``px.apps.updates()`` finds: an app with a newer catalog version or newer image digests."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from proximity_sdk.models._html import HtmlRepr

__all__ = ["AppUpdate", "ImageUpdate"]


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
