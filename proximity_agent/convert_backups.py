"""Proto <-> pydantic conversions of BackupService (split from ``convert.py`` to keep both small;
same rules: responses ``<model>_to_pb``, requests ``*_from_pb`` refusing what they cannot express
with ``ValidationError`` naming the field). A target's options never go into a response.
"""

from __future__ import annotations

import json
from typing import Any

from proximity_agent.convert import _enum_from_pb, _enum_to_pb, _opt, _ts
from proximity_sdk._pb.proximity.v1 import backups_pb2
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.backup import Backup, BackupSchedule, BackupStats, BackupStatus, BackupTarget

__all__ = [
    "backup_compression_from_pb",
    "backup_mode_from_pb",
    "backup_schedule_to_pb",
    "backup_stats_to_pb",
    "backup_status_from_pb",
    "backup_target_to_pb",
    "backup_to_pb",
    "retention_from_pb",
    "target_options_from_pb",
]


def backup_status_from_pb(number: int) -> BackupStatus | None:
    """A status filter: unspecified means any."""
    value = _enum_from_pb("BACKUP_STATUS_", backups_pb2.BackupStatus, number, field="status")
    return BackupStatus(value) if value is not None else None


def backup_mode_from_pb(number: int) -> str:
    return _enum_from_pb("BACKUP_MODE_", backups_pb2.BackupMode, number, field="mode") or "snapshot"


def backup_compression_from_pb(number: int) -> str:
    return _enum_from_pb("BACKUP_COMPRESSION_", backups_pb2.BackupCompression, number,
                         field="compression") or "zstd"


def backup_to_pb(backup: Backup) -> backups_pb2.Backup:
    return backups_pb2.Backup(
        id=backup.id, app_id=backup.app_id, hostname=backup.hostname,
        status=_enum_to_pb("BACKUP_STATUS_", backups_pb2.BackupStatus, backup.status.value),
        mode=_enum_to_pb("BACKUP_MODE_", backups_pb2.BackupMode, backup.mode),
        compression=_enum_to_pb("BACKUP_COMPRESSION_", backups_pb2.BackupCompression, backup.compression),
        target=backup.target, host_id=backup.host_id, node=backup.node, vmid=backup.vmid, storage=backup.storage,
        volid=backup.volid, size_bytes=backup.size_bytes, note=backup.note, error=backup.error,
        schedule_id=backup.schedule_id, created_at=_ts(backup.created_at), completed_at=_ts(backup.completed_at),
        duration_seconds=backup.duration_seconds, location=backup.location)


def backup_stats_to_pb(stats: BackupStats) -> backups_pb2.BackupStats:
    counts = sorted((_enum_to_pb("BACKUP_STATUS_", backups_pb2.BackupStatus, status.value), count)
                    for status, count in stats.by_status.items() if count)
    return backups_pb2.BackupStats(
        total=stats.total, by_status=[backups_pb2.BackupStatusCount(status=s, count=c) for s, c in counts],
        completed_size_bytes=stats.completed_size_bytes, average_size_bytes=stats.average_size_bytes)


def backup_schedule_to_pb(schedule: BackupSchedule) -> backups_pb2.BackupSchedule:
    return backups_pb2.BackupSchedule(
        id=schedule.id, app_id=schedule.app_id, cron=schedule.cron, keep_last=schedule.keep_last,
        keep_daily=schedule.keep_daily, keep_weekly=schedule.keep_weekly, target=schedule.target,
        enabled=schedule.enabled, last_run_at=_ts(schedule.last_run_at), next_run_at=_ts(schedule.next_run_at),
        created_at=_ts(schedule.created_at))


def backup_target_to_pb(target: BackupTarget) -> backups_pb2.BackupTarget:
    """Name and kind only: a target's options may hold secrets and never leave the agent."""
    return backups_pb2.BackupTarget(id=target.id, name=target.name, kind=target.kind,
                                    created_at=_ts(target.created_at))


def retention_from_pb(request: backups_pb2.CreateBackupScheduleRequest) -> dict[str, int | None]:
    """``keep_*`` keyword arguments of ``px.backups.schedule``: keep_last absent is 7 and 0 turns
    the rule off; keep_daily/keep_weekly absent mean no such rule (the SDK checks the ranges)."""
    keep_last = _opt(request, "keep_last")
    return {"keep_last": 7 if keep_last is None else keep_last or None,
            "keep_daily": _opt(request, "keep_daily"), "keep_weekly": _opt(request, "keep_weekly")}


def target_options_from_pb(options_json: str) -> dict[str, Any]:
    """A target's options from their JSON text (empty: none); it must be a JSON object."""
    if not options_json.strip():
        return {}
    try:
        options = json.loads(options_json)
    except ValueError as exc:
        raise ValidationError(f"options_json is not valid JSON: {exc}", field="options_json",
                              hint='Send a JSON object, e.g. {"storage": "nas"}') from None
    if not isinstance(options, dict):
        raise ValidationError(f"options_json must hold a JSON object, not {type(options).__name__}",
                              field="options_json", hint='Send a JSON object, e.g. {"storage": "nas"}')
    return options
