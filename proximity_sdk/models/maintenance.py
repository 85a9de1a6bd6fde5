"""What the periodic jobs report (``px.maintenance``): reconcile, janitor, node sync.

Also the two records they keep in an app's ``config``:

- ``config["usage"]``: the container's last observed usage (:class:`AppUsage`), written by reconcile.
- ``config["retired"]``: containers an app no longer uses but keeps for a while (a restore into a
  new container keeps the previous one stopped for the grace period), a list of
  :class:`RetiredContainer` as JSON; the janitor destroys each once its ``until`` has passed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from proximity_sdk.models._html import HtmlRepr
from proximity_sdk.models.app import App, AppStatus

__all__ = [
    "AppChange",
    "AppUsage",
    "HostNodeSync",
    "HostReconcile",
    "JanitorReport",
    "NodeSyncReport",
    "ReconcileReport",
    "RetiredContainer",
    "RetiredDestroyed",
]


class AppUsage(HtmlRepr, BaseModel):
    """A container's usage as ``/cluster/resources`` showed it at ``sampled_at``.
    ``cpu`` is the share of its cores in use (0.0-1.0 per core, Proxmox's figure); bytes otherwise."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    cpu: float | None = None
    mem: int | None = None
    maxmem: int | None = None
    disk: int | None = None
    maxdisk: int | None = None
    uptime: int | None = None
    sampled_at: datetime

    @classmethod
    def of(cls, app: App) -> AppUsage | None:
        """The app's last observed usage, or None when reconcile has not seen its container yet."""
        raw = app.config.get("usage")
        return cls.model_validate(raw) if isinstance(raw, dict) else None


class RetiredContainer(HtmlRepr, BaseModel):
    """A container kept after its app moved to another one (e.g. a restore into a new container).

    Written by whoever retires the container (``proximity_sdk.store.maintenance_repo.add_retired``),
    as one entry of the app's ``config["retired"]``; the janitor destroys it once ``until`` has
    passed, only if it is still named ``hostname`` (a reused VMID is never destroyed) and no app
    record uses that VMID. The retiring operation should keep the VMID's reservation attached to
    the app meanwhile; the janitor releases it with the container."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host_id: str
    node: str
    vmid: int = Field(ge=100, le=999_999_999)
    hostname: str = Field(min_length=1, max_length=63)
    until: datetime

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class AppChange(HtmlRepr, BaseModel):
    """One app whose record reconcile changed (status and/or node)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    app_id: str
    hostname: str
    host_id: str
    vmid: int
    status_before: AppStatus
    status_after: AppStatus
    node_before: str | None = None
    node_after: str | None = None

    @property
    def moved(self) -> bool:
        return self.node_before != self.node_after

    @property
    def vanished(self) -> bool:
        return self.status_after == AppStatus.VANISHED and self.status_before != AppStatus.VANISHED

    @property
    def returned(self) -> bool:
        return self.status_before == AppStatus.VANISHED and self.status_after != AppStatus.VANISHED


class HostReconcile(HtmlRepr, BaseModel):
    """What reconcile saw of one host. An unreachable host (``reachable=False``) changed nothing."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host_id: str
    host: str
    reachable: bool
    error: str | None = None
    error_kind: str | None = None
    requests: int = 0
    containers: int = 0
    apps: int = 0
    updated: int = 0
    skipped_busy: int = 0
    unknown: int = 0
    elapsed_ms: float = 0.0


class ReconcileReport(HtmlRepr, BaseModel):
    """One reconcile pass: per host what was seen, and every app record it changed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    started_at: datetime
    elapsed_ms: float
    hosts: list[HostReconcile]
    changes: list[AppChange] = Field(default_factory=list)

    @property
    def unreachable(self) -> list[HostReconcile]:
        return [h for h in self.hosts if not h.reachable]

    @property
    def vanished(self) -> list[AppChange]:
        return [c for c in self.changes if c.vanished]

    @property
    def returned(self) -> list[AppChange]:
        return [c for c in self.changes if c.returned]

    @property
    def moved(self) -> list[AppChange]:
        return [c for c in self.changes if c.moved]

    @property
    def requests(self) -> int:
        return sum(h.requests for h in self.hosts)


class RetiredDestroyed(HtmlRepr, BaseModel):
    """A retired container the janitor removed (``gone``: it had already disappeared)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    app_id: str
    container: RetiredContainer
    gone: bool = False


class JanitorReport(HtmlRepr, BaseModel):
    """One janitor pass.

    ``failed``: operations past their deadline that the janitor failed and rolled back (their
    runner had died or hung past the hard deadline); ``asked_to_stop``: past their deadline with
    a live runner, which was asked to cancel (it rolls back itself); ``resumed``: operations whose
    runner died, taken over (their kind finishes or rolls them back); ``retired_destroyed``:
    retired containers removed after their grace period; ``cleaned_up``: ended operations whose
    failed rollback the janitor finished (nothing is left in their journal); ``cleanup_failed``:
    those whose cleanup attempt failed again (retried after a backoff); ``errors``: what could not
    be done now (retried by the next pass)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    started_at: datetime
    elapsed_ms: float
    failed: list[str] = Field(default_factory=list)
    asked_to_stop: list[str] = Field(default_factory=list)
    resumed: list[str] = Field(default_factory=list)
    retired_destroyed: list[RetiredDestroyed] = Field(default_factory=list)
    cleaned_up: list[str] = Field(default_factory=list)
    cleanup_failed: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


class HostNodeSync(HtmlRepr, BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    host_id: str
    host: str
    ok: bool
    nodes: list[str] = Field(default_factory=list)
    online: list[str] = Field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None


class NodeSyncReport(HtmlRepr, BaseModel):
    """Node capacity and status stored for every host; a host that cannot be reached keeps its
    last stored nodes and is reported."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    hosts: list[HostNodeSync]
