"""Backups of apps (they belong to the app, not to a VMID), their schedules and targets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from proximity_sdk.models._html import HtmlRepr

__all__ = [
    "BACKUP_MODES",
    "COMPRESSIONS",
    "Backup",
    "BackupMode",
    "BackupSchedule",
    "BackupStats",
    "BackupStatus",
    "BackupTarget",
    "Compression",
]

BackupMode = Literal["snapshot", "suspend", "stop"]
Compression = Literal["zstd", "gzip", "lzo", "none"]
BACKUP_MODES: tuple[str, ...] = ("snapshot", "suspend", "stop")
COMPRESSIONS: tuple[str, ...] = ("zstd", "gzip", "lzo", "none")


class BackupStatus(StrEnum):
    CREATING = "creating"
    COMPLETED = "completed"
    FAILED = "failed"
    RESTORING = "restoring"
    DELETING = "deleting"


class Backup(HtmlRepr, BaseModel):
    """A backup artifact of an app. ``app_id`` is None once the app itself was deleted.

    ``target`` is the configured target's name (None: the built-in Proxmox storage ``local``);
    ``volid`` the vzdump volume on ``node`` (``<storage>:backup/vzdump-lxc-...``) and
    ``location`` where the target keeps the archive (for a Proxmox storage, the volid itself);
    ``duration_seconds`` is how long vzdump took, queueing excluded; ``digest`` the archive's
    ``sha256:...`` as this process saw it when the target stored it (None when the target keeps
    the archive where vzdump wrote it): a restore refuses an archive that no longer matches it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    app_id: str | None
    hostname: str
    status: BackupStatus
    mode: BackupMode = "snapshot"
    compression: Compression = "zstd"
    target: str | None = None
    host_id: str | None = None
    node: str | None = None
    vmid: int | None = None
    storage: str | None = None
    volid: str | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    note: str | None = None
    error: str | None = None
    schedule_id: str | None = None
    location: str | None = None
    duration_seconds: float | None = Field(default=None, ge=0)
    digest: str | None = None
    created_at: datetime
    completed_at: datetime | None = None

    @property
    def size_mb(self) -> float:
        return round((self.size_bytes or 0) / 1024**2, 2)


class BackupStats(HtmlRepr, BaseModel):
    """Counts by status and sizes of completed backups (of one app, or all)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    total: int = Field(ge=0)
    by_status: dict[BackupStatus, int]
    completed_size_bytes: int = Field(ge=0)
    average_size_bytes: int | None = Field(default=None, ge=0)

    @property
    def in_progress(self) -> int:
        return sum(
            self.by_status.get(s, 0) for s in (BackupStatus.CREATING, BackupStatus.RESTORING, BackupStatus.DELETING)
        )


class BackupSchedule(HtmlRepr, BaseModel):
    """A cron schedule with retention, run by the agent's scheduler (or ``px.backups.run_due()``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    app_id: str
    cron: str
    keep_last: int | None = Field(default=None, ge=1)
    keep_daily: int | None = Field(default=None, ge=1)
    keep_weekly: int | None = Field(default=None, ge=1)
    target: str | None = None
    enabled: bool = True
    last_run_at: datetime | None = None
    next_run_at: datetime | None = None
    created_at: datetime


class BackupTarget(HtmlRepr, BaseModel):
    """A named place backups go to (``kind``: ``proxmox`` built in, ``sftp``/``directory`` from the
    proximity-sftp plugin, ...). Its options may hold secrets: stored encrypted, never listed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    kind: str
    created_at: datetime
