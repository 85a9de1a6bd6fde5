"""The outcome of ``px.hosts.test``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from proximity_sdk.models._html import HtmlRepr

__all__ = ["HostCheck", "PrivilegeGap"]


class PrivilegeGap(HtmlRepr, BaseModel):
    """A privilege the host's user or token lacks: which, on which ACL path, and what Proximity needs it for."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    privilege: str
    path: str
    used_for: str


class HostCheck(HtmlRepr, BaseModel):
    """Whether a host answered, as whom, and what it runs. ``error`` says why not when ``ok`` is False;
    ``missing_privileges`` lists what the credentials lack (then ``ok`` is False too)."""

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
    missing_privileges: list[PrivilegeGap] = []
