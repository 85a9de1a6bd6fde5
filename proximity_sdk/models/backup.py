"""Backups of apps (they belong to the app, not to a VMID), their schedules and targets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Backup", "BackupMode", "BackupSchedule", "BackupStatus", "BackupTarget", "Compression"]

BackupMode = Literal["snapshot", "suspend", "stop"]
Compression = Literal["zstd", "gzip", "lzo", "none"]


class BackupStatus(StrEnum):
    CREATING = "creating"
    COMPLETED = "completed"
    FAILED = "failed"
    RESTORING = "restoring"
    DELETING = "deleting"


class Backup(BaseModel):
    """A backup artifact of an app. ``app_id`` is None once the app itself was deleted."""

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
    created_at: datetime
    completed_at: datetime | None = None


class BackupSchedule(BaseModel):
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


class BackupTarget(BaseModel):
    """A named place backups go to. Its options may hold secrets and are never listed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    kind: str
    created_at: datetime
