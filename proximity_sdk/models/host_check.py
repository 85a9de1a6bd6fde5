"""The outcome of ``px.hosts.test``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from proximity_sdk.models._html import HtmlRepr

__all__ = ["HostCheck"]


class HostCheck(HtmlRepr, BaseModel):
    """Whether a host answered, as whom, and what it runs. ``error`` says why not when ``ok`` is False."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host_id: str
    name: str
    ok: bool
    version: str | None = None
    nodes: list[str] = []
    online_nodes: list[str] = []
    elapsed_ms: float
    requests: int
    error: str | None = None
    error_kind: str | None = None
