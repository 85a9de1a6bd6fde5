"""Resources of a container: cores, memory, swap and disk."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from proximity_sdk.models._html import HtmlRepr

__all__ = ["Resources"]


class Resources(HtmlRepr, BaseModel):
    """What a container gets. ``None`` means: take the default from settings (or the catalog minimum)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cores: int | None = Field(default=None, ge=1, le=8192)
    memory_mb: int | None = Field(default=None, ge=16, le=4 * 1024 * 1024)
    swap_mb: int | None = Field(default=None, ge=0, le=4 * 1024 * 1024)
    disk_gb: int | None = Field(default=None, ge=1, le=128 * 1024)
