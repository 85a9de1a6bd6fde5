"""BackupService: ``px.backups`` over gRPC.

Ownership goes through each backup's (and schedule's) app: members reach the backups and
schedules of their own apps only; another's, or a backup whose app was deleted, answers NOT_FOUND
exactly like an id that does not exist. Configuring and removing targets and RunDueBackups are
admin-only (auth.POLICY); reading targets (name and kind, never options) is open to members, who
name a target when they back up. Long actions answer with the Operation at once.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Callable

from proximity_agent.auth import current_caller, hidden
from proximity_agent.servicers._base import MAX_PAGE_SIZE, Backend, page_request, paginate
from proximity_agent.servicers._keyset import keyset_request
from proximity_agent.status import CallerOverQuota
from proximity_sdk._pb.proximity.v1 import backups_pb2, backups_pb2_grpc, operations_pb2
from proximity_sdk._wire.backups import (
    backup_compression_from_pb,
    backup_mode_from_pb,
    backup_schedule_to_pb,
    backup_stats_to_pb,
    backup_status_filter_from_pb,
    backup_target_to_pb,
    backup_to_pb,
    retention_from_pb,
    target_options_from_pb,
)
from proximity_sdk._wire.common import timestamp_from_pb
from proximity_sdk._wire.operations import operation_to_pb
from proximity_sdk.engine.handle import OperationHandle
from proximity_sdk.errors import NotFoundError, ValidationError
from proximity_sdk.models.app import App
from proximity_sdk.models.backup import Backup, BackupSchedule, BackupStats, BackupStatus
from proximity_sdk.store._keyset import Cursor

__all__ = ["BackupServicer"]

_Ctx = object
_APPS_PAGE = 500


def _required(value: str, field: str) -> str:
    if not value:
        raise ValidationError(f"{field} is required", field=field)
    return value


def _merge_stats(parts: builtins.list[BackupStats]) -> BackupStats:
    by_status: Counter[BackupStatus] = Counter()
    for part in parts:
        by_status.update(part.by_status)
    size = sum(p.completed_size_bytes for p in parts)
    completed = by_status[BackupStatus.COMPLETED]
    return BackupStats(
        total=sum(by_status.values()),
        by_status=dict(by_status),
        completed_size_bytes=size,
        average_size_bytes=size // completed if completed else None,
    )


class BackupServicer(backups_pb2_grpc.BackupServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self._b = backend

    # ownership (these run on the pool) ------------------------------------------------------------

    def _app(self, app_id: str) -> App:
        with hidden("app", app_id):
            app = self._b.px.apps.get(_required(app_id, "app_id"))
        current_caller().check_owner(app.owner_id, what="app", ident=app_id)
        return app

    def _owner_of_app(self, app_id: str | None) -> str | None:
        if app_id is None:
            return None  # the app was deleted: its backups are the admins' to handle
        try:
            return self._b.px.store.apps.get(app_id).owner_id
        except NotFoundError:
            return None

    def _backup(self, backup_id: str) -> Backup:
        with hidden("backup", backup_id):
            backup = self._b.px.backups.get(_required(backup_id, "backup_id"))
        caller = current_caller()
        if not caller.is_admin:
            caller.check_owner(self._owner_of_app(backup.app_id), what="backup", ident=backup_id)
        return backup

    def _schedule(self, schedule_id: str) -> BackupSchedule:
        with hidden("backup schedule", schedule_id):
            schedule = self._b.px.store.backups.get_schedule(_required(schedule_id, "schedule_id"))
        caller = current_caller()
        if not caller.is_admin:
            caller.check_owner(self._owner_of_app(schedule.app_id), what="backup schedule", ident=schedule_id)
        return schedule

    def _own_app_ids(self) -> builtins.list[str]:
        """The ids of the member's apps, oldest first."""
        owner = current_caller().id
        ids: builtins.list[str] = []
        after: Cursor | None = None
        while True:
            page = self._b.px.store.apps.list(owner_id=owner, after=after, limit=_APPS_PAGE)
            ids += [a.id for a in page]
            if len(page) < _APPS_PAGE:
                return ids
            after = (page[-1].created_at, page[-1].id)

    async def _act(self, check: Callable[[], object], start: Callable[[], OperationHandle]) -> operations_pb2.Operation:
        def run() -> operations_pb2.Operation:
            check()
            return operation_to_pb(start().get())

        return await self._b.run(run)

    # backups ------------------------------------------------------------------------------------

    async def CreateBackup(
        self,
        request: backups_pb2.CreateBackupRequest,
        context: _Ctx,
    ) -> backups_pb2.CreateBackupResponse:
        mode = backup_mode_from_pb(request.mode)
        compression = backup_compression_from_pb(request.compression)
        note = request.note if request.HasField("note") else None
        op = await self._act(
            lambda: self._app(request.app_id),
            lambda: self._b.px.backups.create(
                request.app_id, mode=mode, compression=compression, target=request.target or None, note=note
            ),
        )
        return backups_pb2.CreateBackupResponse(operation=op)

    async def ListBackups(
        self,
        request: backups_pb2.ListBackupsRequest,
        context: _Ctx,
    ) -> backups_pb2.ListBackupsResponse:
        caller = current_caller()
        status = backup_status_filter_from_pb(request.status)
        page = keyset_request(
            request.page_size,
            request.page_token,
            method="ListBackups",
            filters=(request.app_id, status, caller.owner_filter()),
        )
        repo = self._b.px.store.backups

        def fetch() -> tuple[builtins.list[Backup], bool]:
            if request.app_id or caller.is_admin:
                if request.app_id:
                    self._app(request.app_id)
                app_id = request.app_id or None
                if page.size < MAX_PAGE_SIZE:  # one more row tells whether another page follows
                    found = repo.list(app_id=app_id, status=status, after=page.after, limit=page.size + 1)
                    return found[: page.size], len(found) > page.size
                found = repo.list(app_id=app_id, status=status, after=page.after, limit=page.size)
                last = (found[-1].created_at, found[-1].id) if len(found) == page.size else None
                return found, bool(last and repo.list(app_id=app_id, status=status, after=last, limit=1))
            # a member, everything they may see: their apps' backups, in the repository's order
            mine = [b for app_id in self._own_app_ids() for b in self._b.px.backups.list(app_id, status=status)]
            mine.sort(key=lambda b: (b.created_at, b.id), reverse=True)
            if page.after is not None:
                mine = [b for b in mine if (b.created_at, b.id) < page.after]
            return mine[: page.size], len(mine) > page.size

        backups, more = await self._b.run(fetch)
        token = page.next_token((backups[-1].created_at, backups[-1].id) if more and backups else None)
        return backups_pb2.ListBackupsResponse(backups=[backup_to_pb(b) for b in backups], next_page_token=token)

    async def GetBackup(self, request: backups_pb2.GetBackupRequest, context: _Ctx) -> backups_pb2.GetBackupResponse:
        backup = await self._b.run(self._backup, request.backup_id)
        return backups_pb2.GetBackupResponse(backup=backup_to_pb(backup))

    async def GetBackupStats(
        self,
        request: backups_pb2.GetBackupStatsRequest,
        context: _Ctx,
    ) -> backups_pb2.GetBackupStatsResponse:
        caller = current_caller()

        def stats() -> BackupStats:
            if request.app_id:
                self._app(request.app_id)
                return self._b.px.backups.stats(request.app_id)
            if caller.is_admin:
                return self._b.px.backups.stats()
            return _merge_stats([self._b.px.backups.stats(app_id) for app_id in self._own_app_ids()])

        return backups_pb2.GetBackupStatsResponse(stats=backup_stats_to_pb(await self._b.run(stats)))

    async def RestoreBackup(
        self,
        request: backups_pb2.RestoreBackupRequest,
        context: _Ctx,
    ) -> backups_pb2.RestoreBackupResponse:
        op = await self._act(
            lambda: self._backup(request.backup_id),
            lambda: self._b.px.backups.restore(
                request.backup_id, in_place=request.in_place, storage=request.storage or None
            ),
        )
        return backups_pb2.RestoreBackupResponse(operation=op)

    async def DeleteBackup(
        self,
        request: backups_pb2.DeleteBackupRequest,
        context: _Ctx,
    ) -> backups_pb2.DeleteBackupResponse:
        op = await self._act(
            lambda: self._backup(request.backup_id), lambda: self._b.px.backups.delete(request.backup_id)
        )
        return backups_pb2.DeleteBackupResponse(operation=op)

    # schedules ----------------------------------------------------------------------------------

    async def CreateBackupSchedule(
        self,
        request: backups_pb2.CreateBackupScheduleRequest,
        context: _Ctx,
    ) -> backups_pb2.CreateBackupScheduleResponse:
        keeps = retention_from_pb(request)

        def create() -> BackupSchedule:
            self._app(request.app_id)
            caller = current_caller()
            if caller.is_admin:
                return self._b.px.backups.schedule(
                    request.app_id, cron=request.cron, target=request.target or None, **keeps
                )
            with self._b.schedule_lock:  # count and create as one step in this process
                mine = set(self._own_app_ids())
                held = sum(1 for s in self._b.px.store.backups.schedules() if s.app_id in mine)
                limit = self._b.backup_schedules_per_user
                if held >= limit:
                    raise CallerOverQuota(
                        f"you already have {held} backup schedules, the most one user may have on this agent ({limit})",
                        hint="Delete one you no longer need (DeleteBackupSchedule), or ask an admin",
                    )
                return self._b.px.backups.schedule(
                    request.app_id, cron=request.cron, target=request.target or None, **keeps
                )

        schedule = await self._b.run(create)
        return backups_pb2.CreateBackupScheduleResponse(schedule=backup_schedule_to_pb(schedule))

    async def ListBackupSchedules(
        self,
        request: backups_pb2.ListBackupSchedulesRequest,
        context: _Ctx,
    ) -> backups_pb2.ListBackupSchedulesResponse:
        caller = current_caller()
        page = page_request(
            request.page_size,
            request.page_token,
            method="ListBackupSchedules",
            filters=(request.app_id, caller.owner_filter()),
        )

        def fetch() -> builtins.list[BackupSchedule]:
            if request.app_id:
                self._app(request.app_id)
                return self._b.px.backups.schedules(request.app_id)
            everything = self._b.px.backups.schedules()
            if caller.is_admin:
                return everything
            mine = set(self._own_app_ids())
            return [s for s in everything if s.app_id in mine]

        schedules, token = paginate(await self._b.run(fetch), page)
        return backups_pb2.ListBackupSchedulesResponse(
            schedules=[backup_schedule_to_pb(s) for s in schedules], next_page_token=token
        )

    async def DeleteBackupSchedule(
        self,
        request: backups_pb2.DeleteBackupScheduleRequest,
        context: _Ctx,
    ) -> backups_pb2.DeleteBackupScheduleResponse:
        def delete() -> None:
            self._schedule(request.schedule_id)
            self._b.px.backups.unschedule(request.schedule_id)

        await self._b.run(delete)
        return backups_pb2.DeleteBackupScheduleResponse()

    async def RunDueBackups(
        self,
        request: backups_pb2.RunDueBackupsRequest,
        context: _Ctx,
    ) -> backups_pb2.RunDueBackupsResponse:
        now = timestamp_from_pb(request, "now")

        def run_due() -> builtins.list[operations_pb2.Operation]:
            return [operation_to_pb(handle.get()) for handle in self._b.px.backups.run_due(now=now)]

        return backups_pb2.RunDueBackupsResponse(operations=await self._b.run_long(run_due))

    # targets ------------------------------------------------------------------------------------

    async def CreateBackupTarget(
        self,
        request: backups_pb2.CreateBackupTargetRequest,
        context: _Ctx,
    ) -> backups_pb2.CreateBackupTargetResponse:
        options = target_options_from_pb(request.options_json)
        _required(request.name, "name")
        _required(request.kind, "kind")
        target = await self._b.run(
            lambda: self._b.px.backups.targets.add(name=request.name, kind=request.kind, options=options)
        )
        return backups_pb2.CreateBackupTargetResponse(target=backup_target_to_pb(target))

    async def GetBackupTarget(
        self,
        request: backups_pb2.GetBackupTargetRequest,
        context: _Ctx,
    ) -> backups_pb2.GetBackupTargetResponse:
        target = await self._b.run(self._b.px.backups.targets.get, _required(request.name, "name"))
        return backups_pb2.GetBackupTargetResponse(target=backup_target_to_pb(target))

    async def ListBackupTargets(
        self,
        request: backups_pb2.ListBackupTargetsRequest,
        context: _Ctx,
    ) -> backups_pb2.ListBackupTargetsResponse:
        page = page_request(request.page_size, request.page_token, method="ListBackupTargets")
        targets, token = paginate(await self._b.run(self._b.px.backups.targets.list), page)
        return backups_pb2.ListBackupTargetsResponse(
            targets=[backup_target_to_pb(t) for t in targets], next_page_token=token
        )

    async def ListBackupTargetKinds(
        self,
        request: backups_pb2.ListBackupTargetKindsRequest,
        context: _Ctx,
    ) -> backups_pb2.ListBackupTargetKindsResponse:
        page = page_request(request.page_size, request.page_token, method="ListBackupTargetKinds")
        kinds, token = paginate(await self._b.run(self._b.px.backups.targets.kinds), page)
        return backups_pb2.ListBackupTargetKindsResponse(kinds=kinds, next_page_token=token)

    async def DeleteBackupTarget(
        self,
        request: backups_pb2.DeleteBackupTargetRequest,
        context: _Ctx,
    ) -> backups_pb2.DeleteBackupTargetResponse:
        await self._b.run(self._b.px.backups.targets.remove, _required(request.name, "name"))
        return backups_pb2.DeleteBackupTargetResponse()
