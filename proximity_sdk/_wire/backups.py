"""``backups.proto``: backups, their stats, schedules and targets (answers, both directions), and
the parts of BackupService's requests that need converting: the status filter, mode and
compression, a schedule's retention, a target's options.

A target's options may hold secrets: they go to the agent in a request and never come back in
an answer (:func:`backup_target_to_pb` carries the name and kind only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from proximity_sdk._pb.proximity.v1 import backups_pb2
from proximity_sdk._wire._base import (
    enum_from_pb,
    enum_to_pb,
    known_enum_from_pb,
    optional_from_pb,
    required_timestamp_from_pb,
    timestamp_from_pb,
    timestamp_to_pb,
)
from proximity_sdk.errors import ValidationError
from proximity_sdk.models._requests import check_choice
from proximity_sdk.models.backup import (
    BACKUP_MODES,
    COMPRESSIONS,
    Backup,
    BackupSchedule,
    BackupStats,
    BackupStatus,
    BackupTarget,
)

__all__ = [
    "backup_compression_from_pb",
    "backup_compression_to_pb",
    "backup_from_pb",
    "backup_mode_from_pb",
    "backup_mode_to_pb",
    "backup_schedule_from_pb",
    "backup_schedule_to_pb",
    "backup_stats_from_pb",
    "backup_stats_to_pb",
    "backup_status_filter_from_pb",
    "backup_status_filter_to_pb",
    "backup_status_from_pb",
    "backup_status_to_pb",
    "backup_target_from_pb",
    "backup_target_to_pb",
    "backup_to_pb",
    "retention_from_pb",
    "retention_to_pb",
    "target_options_from_pb",
    "target_options_to_pb",
]


# -- status, mode, compression -------------------------------------------------------------------

_BACKUP_STATUSES = tuple(s.value for s in BackupStatus)


def backup_status_to_pb(status: BackupStatus) -> backups_pb2.BackupStatus.ValueType:
    return enum_to_pb("BACKUP_STATUS_", backups_pb2.BackupStatus, status.value)


def backup_status_from_pb(number: int) -> BackupStatus:
    """A backup's status in an answer; one this client does not know reads as ``failed``."""
    return BackupStatus(
        known_enum_from_pb("BACKUP_STATUS_", backups_pb2.BackupStatus, number, known=_BACKUP_STATUSES, default="failed")
    )


def backup_status_filter_to_pb(status: BackupStatus | str | None) -> backups_pb2.BackupStatus.ValueType:
    """ListBackups' status filter: None (any status) is unspecified; a string must name a status."""
    if status is None:
        return backups_pb2.BACKUP_STATUS_UNSPECIFIED
    value = check_choice(status.value if isinstance(status, BackupStatus) else status, _BACKUP_STATUSES, field="status")
    return enum_to_pb("BACKUP_STATUS_", backups_pb2.BackupStatus, value)


def backup_status_filter_from_pb(number: int) -> BackupStatus | None:
    """ListBackups' status filter: unspecified means any; an unknown number is refused (field ``status``)."""
    value = enum_from_pb("BACKUP_STATUS_", backups_pb2.BackupStatus, number, field="status")
    return BackupStatus(value) if value is not None else None


def backup_mode_to_pb(mode: object) -> backups_pb2.BackupMode.ValueType:
    return enum_to_pb("BACKUP_MODE_", backups_pb2.BackupMode, check_choice(mode, BACKUP_MODES, field="mode"))


def backup_mode_from_pb(number: int) -> str:
    """CreateBackup's mode: unspecified is ``snapshot``; an unknown number is refused (field ``mode``)."""
    return enum_from_pb("BACKUP_MODE_", backups_pb2.BackupMode, number, field="mode") or "snapshot"


def backup_compression_to_pb(compression: object) -> backups_pb2.BackupCompression.ValueType:
    return enum_to_pb(
        "BACKUP_COMPRESSION_",
        backups_pb2.BackupCompression,
        check_choice(compression, COMPRESSIONS, field="compression"),
    )


def backup_compression_from_pb(number: int) -> str:
    """CreateBackup's compression: unspecified is ``zstd``; an unknown number is refused (field ``compression``)."""
    return enum_from_pb("BACKUP_COMPRESSION_", backups_pb2.BackupCompression, number, field="compression") or "zstd"


# -- backups, stats, schedules, targets (answers) ------------------------------------------------


def backup_to_pb(backup: Backup) -> backups_pb2.Backup:
    return backups_pb2.Backup(
        id=backup.id,
        app_id=backup.app_id,
        hostname=backup.hostname,
        status=backup_status_to_pb(backup.status),
        mode=enum_to_pb("BACKUP_MODE_", backups_pb2.BackupMode, backup.mode),
        compression=enum_to_pb("BACKUP_COMPRESSION_", backups_pb2.BackupCompression, backup.compression),
        target=backup.target,
        host_id=backup.host_id,
        node=backup.node,
        vmid=backup.vmid,
        storage=backup.storage,
        volid=backup.volid,
        size_bytes=backup.size_bytes,
        note=backup.note,
        error=backup.error,
        schedule_id=backup.schedule_id,
        created_at=timestamp_to_pb(backup.created_at),
        completed_at=timestamp_to_pb(backup.completed_at),
        duration_seconds=backup.duration_seconds,
        location=backup.location,
    )


def backup_from_pb(m: backups_pb2.Backup) -> Backup:
    mode = known_enum_from_pb("BACKUP_MODE_", backups_pb2.BackupMode, m.mode, known=BACKUP_MODES, default="snapshot")
    compression = known_enum_from_pb(
        "BACKUP_COMPRESSION_", backups_pb2.BackupCompression, m.compression, known=COMPRESSIONS, default="zstd"
    )
    return Backup(
        id=m.id,
        app_id=optional_from_pb(m, "app_id"),
        hostname=m.hostname,
        status=backup_status_from_pb(m.status),
        mode=mode,
        compression=compression,
        target=optional_from_pb(m, "target"),
        host_id=optional_from_pb(m, "host_id"),
        node=optional_from_pb(m, "node"),
        vmid=optional_from_pb(m, "vmid"),
        storage=optional_from_pb(m, "storage"),
        volid=optional_from_pb(m, "volid"),
        size_bytes=optional_from_pb(m, "size_bytes"),
        note=optional_from_pb(m, "note"),
        error=optional_from_pb(m, "error"),
        schedule_id=optional_from_pb(m, "schedule_id"),
        location=optional_from_pb(m, "location"),
        duration_seconds=optional_from_pb(m, "duration_seconds"),
        created_at=required_timestamp_from_pb(m, "created_at"),
        completed_at=timestamp_from_pb(m, "completed_at"),
    )


def backup_stats_to_pb(stats: BackupStats) -> backups_pb2.BackupStats:
    counts = sorted((backup_status_to_pb(status), count) for status, count in stats.by_status.items() if count)
    return backups_pb2.BackupStats(
        total=stats.total,
        by_status=[backups_pb2.BackupStatusCount(status=s, count=c) for s, c in counts],
        completed_size_bytes=stats.completed_size_bytes,
        average_size_bytes=stats.average_size_bytes,
    )


def backup_stats_from_pb(m: backups_pb2.BackupStats) -> BackupStats:
    by_status = {backup_status_from_pb(c.status): c.count for c in m.by_status}
    return BackupStats(
        total=m.total,
        by_status=by_status,
        completed_size_bytes=m.completed_size_bytes,
        average_size_bytes=optional_from_pb(m, "average_size_bytes"),
    )


def backup_schedule_to_pb(schedule: BackupSchedule) -> backups_pb2.BackupSchedule:
    return backups_pb2.BackupSchedule(
        id=schedule.id,
        app_id=schedule.app_id,
        cron=schedule.cron,
        keep_last=schedule.keep_last,
        keep_daily=schedule.keep_daily,
        keep_weekly=schedule.keep_weekly,
        target=schedule.target,
        enabled=schedule.enabled,
        last_run_at=timestamp_to_pb(schedule.last_run_at),
        next_run_at=timestamp_to_pb(schedule.next_run_at),
        created_at=timestamp_to_pb(schedule.created_at),
    )


def backup_schedule_from_pb(m: backups_pb2.BackupSchedule) -> BackupSchedule:
    return BackupSchedule(
        id=m.id,
        app_id=m.app_id,
        cron=m.cron,
        keep_last=optional_from_pb(m, "keep_last"),
        keep_daily=optional_from_pb(m, "keep_daily"),
        keep_weekly=optional_from_pb(m, "keep_weekly"),
        target=optional_from_pb(m, "target"),
        enabled=m.enabled,
        last_run_at=timestamp_from_pb(m, "last_run_at"),
        next_run_at=timestamp_from_pb(m, "next_run_at"),
        created_at=required_timestamp_from_pb(m, "created_at"),
    )


def backup_target_to_pb(target: BackupTarget) -> backups_pb2.BackupTarget:
    """Name and kind only: a target's options may hold secrets and never leave the agent."""
    return backups_pb2.BackupTarget(
        id=target.id, name=target.name, kind=target.kind, created_at=timestamp_to_pb(target.created_at)
    )


def backup_target_from_pb(m: backups_pb2.BackupTarget) -> BackupTarget:
    return BackupTarget(id=m.id, name=m.name, kind=m.kind, created_at=required_timestamp_from_pb(m, "created_at"))


# -- request parts: retention, target options ----------------------------------------------------


def retention_to_pb(*, keep_last: int | None, keep_daily: int | None, keep_weekly: int | None) -> dict[str, int | None]:
    """The ``keep_*`` fields of CreateBackupScheduleRequest: keep_last None (no such rule) is 0,
    since an absent keep_last means the default, 7."""
    return {"keep_last": keep_last or 0, "keep_daily": keep_daily, "keep_weekly": keep_weekly}


def retention_from_pb(request: backups_pb2.CreateBackupScheduleRequest) -> dict[str, int | None]:
    """``keep_*`` keyword arguments of ``px.backups.schedule``: keep_last absent is 7 and 0 turns
    the rule off; keep_daily/keep_weekly absent mean no such rule (the SDK checks the ranges)."""
    keep_last = optional_from_pb(request, "keep_last")
    return {
        "keep_last": 7 if keep_last is None else keep_last or None,
        "keep_daily": optional_from_pb(request, "keep_daily"),
        "keep_weekly": optional_from_pb(request, "keep_weekly"),
    }


def target_options_to_pb(options: Mapping[str, Any] | None) -> str:
    """A target's options as JSON text (None: none); values JSON cannot hold are refused (field ``options``)."""
    try:
        return json.dumps(dict(options or {}))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"options must be JSON values: {exc}", field="options") from None


def target_options_from_pb(options_json: str) -> dict[str, Any]:
    """A target's options from their JSON text (empty: none); it must be a JSON object."""
    if not options_json.strip():
        return {}
    try:
        options = json.loads(options_json)
    except ValueError as exc:
        raise ValidationError(
            f"options_json is not valid JSON: {exc}",
            field="options_json",
            hint='Send a JSON object, e.g. {"storage": "nas"}',
        ) from None
    if not isinstance(options, dict):
        raise ValidationError(
            f"options_json must hold a JSON object, not {type(options).__name__}",
            field="options_json",
            hint='Send a JSON object, e.g. {"storage": "nas"}',
        )
    return options
