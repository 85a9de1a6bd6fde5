"""``px.backups`` (and ``px.backups.targets``) over the agent."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from proximity_sdk._api.backups import BackupsAPI, BackupTargetsAPI
from proximity_sdk._pb.proximity.v1 import backups_pb2, backups_pb2_grpc, operations_pb2
from proximity_sdk._remote._channel import Connection
from proximity_sdk._remote._handle import RemoteOperationHandle
from proximity_sdk._wire.backups import (
    backup_compression_to_pb,
    backup_from_pb,
    backup_mode_to_pb,
    backup_schedule_from_pb,
    backup_stats_from_pb,
    backup_status_filter_to_pb,
    backup_target_from_pb,
    retention_to_pb,
    target_options_to_pb,
)
from proximity_sdk._wire.common import timestamp_to_pb
from proximity_sdk.models._listing import Listing
from proximity_sdk.models._requests import check_keep, check_note, check_target_name
from proximity_sdk.models.app import App
from proximity_sdk.models.backup import Backup, BackupSchedule, BackupStats, BackupStatus, BackupTarget

__all__ = ["RemoteBackupTargets", "RemoteBackups"]


class RemoteBackupTargets(BackupTargetsAPI):
    def __init__(self, conn: Connection, stub: backups_pb2_grpc.BackupServiceStub) -> None:
        self._conn = conn
        self._stub = stub

    def add(self, *, name: str, kind: str, options: Mapping[str, Any] | None = None) -> BackupTarget:
        request = backups_pb2.CreateBackupTargetRequest(
            name=name, kind=kind, options_json=target_options_to_pb(options)
        )
        return backup_target_from_pb(self._conn.call(self._stub.CreateBackupTarget, request).target)

    def get(self, name: str) -> BackupTarget:
        request = backups_pb2.GetBackupTargetRequest(name=name)
        return backup_target_from_pb(self._conn.call(self._stub.GetBackupTarget, request).target)

    def list(self) -> builtins.list[BackupTarget]:
        request = backups_pb2.ListBackupTargetsRequest()
        return Listing(
            backup_target_from_pb(t) for t in self._conn.pages(self._stub.ListBackupTargets, request, "targets")
        )

    def remove(self, name: str) -> None:
        self._conn.call(self._stub.DeleteBackupTarget, backups_pb2.DeleteBackupTargetRequest(name=name))

    def kinds(self) -> builtins.list[str]:
        request = backups_pb2.ListBackupTargetKindsRequest()
        return Listing(sorted(self._conn.pages(self._stub.ListBackupTargetKinds, request, "kinds")))


class RemoteBackups(BackupsAPI):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = backups_pb2_grpc.BackupServiceStub(conn.channel)
        self.targets = RemoteBackupTargets(conn, self._stub)

    def _handle(self, op: operations_pb2.Operation) -> RemoteOperationHandle:
        return RemoteOperationHandle(self._conn, op.id)

    def create(
        self,
        app_id: str,
        *,
        mode: str = "snapshot",
        compression: str = "zstd",
        target: str | None = None,
        note: str | None = None,
    ) -> RemoteOperationHandle[Backup]:
        check_note(note)
        check_target_name(target)
        request = backups_pb2.CreateBackupRequest(
            app_id=app_id,
            mode=backup_mode_to_pb(mode),
            compression=backup_compression_to_pb(compression),
            target=target or "",
            note=note,
        )
        return self._handle(self._conn.call(self._stub.CreateBackup, request).operation)

    def get(self, backup_id: str) -> Backup:
        request = backups_pb2.GetBackupRequest(backup_id=backup_id)
        return backup_from_pb(self._conn.call(self._stub.GetBackup, request).backup)

    def list(self, app_id: str | None = None, *, status: BackupStatus | str | None = None) -> builtins.list[Backup]:
        request = backups_pb2.ListBackupsRequest(app_id=app_id or "", status=backup_status_filter_to_pb(status))
        return Listing(backup_from_pb(b) for b in self._conn.pages(self._stub.ListBackups, request, "backups"))

    def stats(self, app_id: str | None = None) -> BackupStats:
        request = backups_pb2.GetBackupStatsRequest(app_id=app_id or "")
        return backup_stats_from_pb(self._conn.call(self._stub.GetBackupStats, request).stats)

    def restore(
        self, backup_id: str, *, in_place: bool = False, storage: str | None = None
    ) -> RemoteOperationHandle[App]:
        request = backups_pb2.RestoreBackupRequest(backup_id=backup_id, in_place=bool(in_place), storage=storage or "")
        return self._handle(self._conn.call(self._stub.RestoreBackup, request).operation)

    def delete(self, backup_id: str) -> RemoteOperationHandle[None]:
        request = backups_pb2.DeleteBackupRequest(backup_id=backup_id)
        return self._handle(self._conn.call(self._stub.DeleteBackup, request).operation)

    def schedule(
        self,
        app_id: str,
        *,
        cron: str,
        keep_last: int | None = 7,
        keep_daily: int | None = None,
        keep_weekly: int | None = None,
        target: str | None = None,
    ) -> BackupSchedule:
        for field, value in (("keep_last", keep_last), ("keep_daily", keep_daily), ("keep_weekly", keep_weekly)):
            check_keep(value, field=field)
        retention = retention_to_pb(keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly)
        request = backups_pb2.CreateBackupScheduleRequest(app_id=app_id, cron=cron, target=target or "", **retention)
        return backup_schedule_from_pb(self._conn.call(self._stub.CreateBackupSchedule, request).schedule)

    def schedules(self, app_id: str | None = None) -> builtins.list[BackupSchedule]:
        request = backups_pb2.ListBackupSchedulesRequest(app_id=app_id or "")
        return Listing(
            backup_schedule_from_pb(s) for s in self._conn.pages(self._stub.ListBackupSchedules, request, "schedules")
        )

    def unschedule(self, schedule_id: str) -> None:
        self._conn.call(
            self._stub.DeleteBackupSchedule, backups_pb2.DeleteBackupScheduleRequest(schedule_id=schedule_id)
        )

    def run_due(self, *, now: datetime | None = None) -> builtins.list[RemoteOperationHandle[Backup]]:
        request = backups_pb2.RunDueBackupsRequest()
        if now is not None:
            request.now.CopyFrom(timestamp_to_pb(now))
        return Listing(self._handle(op) for op in self._conn.call(self._stub.RunDueBackups, request).operations)
