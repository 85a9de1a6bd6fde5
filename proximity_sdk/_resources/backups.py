"""``px.backups``: back up apps, restore and delete backups, schedules with retention, and targets.

Everything is checked here, before a record is written or Proxmox is asked anything: unknown
modes, compressions, targets or apps are refused with a ``ValidationError``/``NotFoundError``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from proximity_sdk._api.backups import BackupsAPI, BackupTargetsAPI
from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.engine.handle import OperationHandle
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import BusyError, ConflictError, NotFoundError, ProximityError, ValidationError
from proximity_sdk.models._listing import Listing
from proximity_sdk.models._requests import check_choice, check_keep, check_note, check_target_name
from proximity_sdk.models.app import ACTIVE_APP_STATUSES, App
from proximity_sdk.models.backup import (
    BACKUP_MODES,
    COMPRESSIONS,
    Backup,
    BackupSchedule,
    BackupStats,
    BackupStatus,
    BackupTarget,
)
from proximity_sdk.operations._targets import TargetRegistry
from proximity_sdk.operations.restore import IN_PLACE_STEPS, NEW_CONTAINER_STEPS
from proximity_sdk.operations.schedules import check_cron, next_run
from proximity_sdk.proxmox.validate import check_storage_id
from proximity_sdk.store.base import utcnow

__all__ = ["BackupTargets", "Backups"]

log = logging.getLogger(__name__)

_PAGE = 200
_BUSY_RETRY = timedelta(minutes=5)  # a due schedule whose app is busy tries again this much later


class BackupTargets(BackupTargetsAPI):
    def __init__(self, services: Services, targets: TargetRegistry) -> None:
        self._services = services
        self._targets = targets

    def add(self, *, name: str, kind: str, options: Mapping[str, Any] | None = None) -> BackupTarget:
        checked = self._targets.check(kind, options or {})
        return self._services.store.backups.add_target(name=name, kind=kind, options=checked)

    def get(self, name: str) -> BackupTarget:
        return self._services.store.backups.get_target(name)

    def list(self) -> Listing[BackupTarget]:
        return Listing(self._services.store.backups.targets())

    def remove(self, name: str) -> None:
        self._services.store.backups.remove_target(name)

    def kinds(self) -> Listing[str]:
        return Listing(sorted(self._targets.kinds()))


class Backups(BackupsAPI):
    def __init__(self, services: Services, engine: OperationEngine, targets: TargetRegistry) -> None:
        self._services = services
        self._engine = engine
        self._targets = targets
        self.targets = BackupTargets(services, targets)

    # create ---------------------------------------------------------------------------------------

    def _backup_app(self, app_id: str) -> App:
        app = self._services.store.apps.get(app_id)
        if app.node is None or app.vmid is None:
            raise ValidationError(f"app {app.hostname!r} has no container to back up", field="app_id")
        if app.status in ACTIVE_APP_STATUSES:
            raise ConflictError(f"app {app.hostname!r} is {app.status.value}", hint="Wait for that to end")
        return app

    def _target_name(self, target: object) -> str | None:
        name = check_target_name(target)
        if name is None:
            return None
        record = self._services.store.backups.get_target(name)
        self._targets.kind(record.kind)  # its plugin must be installed
        return name

    def _submit(
        self,
        app: App,
        *,
        mode: str,
        compression: str,
        target: str | None,
        note: str | None,
        schedule_id: str | None = None,
    ) -> OperationHandle:
        store = self._services.store
        record = store.backups.create(
            app_id=app.id,
            hostname=app.hostname,
            host_id=app.host_id,
            node=app.node,
            vmid=app.vmid,
            mode=mode,
            compression=compression,
            target=target,
            note=note,
            schedule_id=schedule_id,
        )
        steps = ("queue", "vzdump", "store", "prune") if schedule_id else ("queue", "vzdump", "store")
        try:
            return self._engine.submit(
                "backup",
                app_id=app.id,
                host_id=app.host_id,
                vmid=app.vmid,
                owner_id=app.owner_id,
                params={"backup_id": record.id},
                steps=steps,
            )
        except BaseException:
            store.backups.delete(record.id)  # one record per request, and none for a refused one
            raise

    def create(
        self,
        app_id: str,
        *,
        mode: str = "snapshot",
        compression: str = "zstd",
        target: str | None = None,
        note: str | None = None,
    ) -> OperationHandle[Backup]:
        check_choice(mode, BACKUP_MODES, field="mode")
        check_choice(compression, COMPRESSIONS, field="compression")
        check_note(note)
        name = self._target_name(target)
        return self._submit(self._backup_app(app_id), mode=mode, compression=compression, target=name, note=note)

    # reads ----------------------------------------------------------------------------------------

    def get(self, backup_id: str) -> Backup:
        return self._services.store.backups.get(backup_id)

    def list(self, app_id: str | None = None, *, status: BackupStatus | str | None = None) -> Listing[Backup]:
        if app_id is not None:
            self._services.store.apps.get(app_id)
        wanted = None
        if status is not None:
            wanted = BackupStatus(check_choice(status, tuple(s.value for s in BackupStatus), field="status"))
        found: Listing[Backup] = Listing()
        while True:
            page = self._services.store.backups.list(app_id=app_id, status=wanted, offset=len(found), limit=_PAGE)
            found += page
            if len(page) < _PAGE:
                return found

    def stats(self, app_id: str | None = None) -> BackupStats:
        if app_id is not None:
            self._services.store.apps.get(app_id)
        return self._services.store.backups.stats(app_id=app_id)

    # restore and delete ---------------------------------------------------------------------------

    def restore(self, backup_id: str, *, in_place: bool = False, storage: str | None = None) -> OperationHandle[App]:
        store = self._services.store
        if storage is not None:
            check_storage_id(storage)
        backup = store.backups.get(backup_id)
        if backup.app_id is None:
            raise ValidationError(
                f"the app of backup {backup_id} was deleted; it cannot be restored into it", field="backup_id"
            )
        app = store.apps.get(backup.app_id)
        if app.status in ACTIVE_APP_STATUSES:
            raise ConflictError(f"app {app.hostname!r} is {app.status.value}", hint="Wait for that to end")
        if backup.target is not None:
            self._target_name(backup.target)
        store.backups.transition(
            backup_id, to=BackupStatus.RESTORING, allowed=[BackupStatus.COMPLETED], action="restore"
        )
        try:
            return self._engine.submit(
                "restore",
                app_id=app.id,
                host_id=app.host_id,
                vmid=app.vmid,
                owner_id=app.owner_id,
                params={
                    "backup_id": backup_id,
                    "in_place": bool(in_place),
                    "storage": storage,
                    "previous_status": app.status.value,
                },
                steps=IN_PLACE_STEPS if in_place else NEW_CONTAINER_STEPS,
            )
        except BaseException:
            store.backups.update(backup_id, status=BackupStatus.COMPLETED)
            raise

    def delete(self, backup_id: str) -> OperationHandle[None]:
        store = self._services.store
        backup = store.backups.get(backup_id)
        owner = None  # the app's owner follows the delete (a member watches their own operations)
        if backup.app_id is not None:
            with contextlib.suppress(NotFoundError):
                owner = store.apps.get(backup.app_id).owner_id
        store.backups.transition(
            backup_id, to=BackupStatus.DELETING, allowed=[BackupStatus.COMPLETED, BackupStatus.FAILED], action="delete"
        )
        try:
            return self._engine.submit(
                "backup-delete",
                host_id=backup.host_id,
                owner_id=owner,
                params={"backup_id": backup_id, "previous_status": backup.status.value},
            )
        except BaseException:
            store.backups.update(backup_id, status=backup.status)
            raise

    # schedules ------------------------------------------------------------------------------------

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
        check_cron(cron)
        keeps = {
            "keep_last": check_keep(keep_last, field="keep_last"),
            "keep_daily": check_keep(keep_daily, field="keep_daily"),
            "keep_weekly": check_keep(keep_weekly, field="keep_weekly"),
        }
        name = self._target_name(target)
        app = self._services.store.apps.get(app_id)
        return self._services.store.backups.create_schedule(
            app_id=app.id, cron=cron, target=name, next_run_at=next_run(cron, after=utcnow()), **keeps
        )

    def schedules(self, app_id: str | None = None) -> Listing[BackupSchedule]:
        return Listing(self._services.store.backups.schedules(app_id=app_id))

    def unschedule(self, schedule_id: str) -> None:
        self._services.store.backups.delete_schedule(schedule_id)

    def run_due(self, *, now: datetime | None = None) -> Listing[OperationHandle[Backup]]:
        moment = (now or utcnow()).astimezone(UTC)
        store = self._services.store
        handles: Listing[OperationHandle] = Listing()
        for schedule in store.backups.due_schedules(moment):
            following = next_run(schedule.cron, after=moment)
            if not store.backups.claim_run(
                schedule.id, expected_next=schedule.next_run_at, ran_at=moment, next_run_at=following
            ):
                continue
            try:
                app = self._backup_app(schedule.app_id)
                handles.append(
                    self._submit(
                        app,
                        mode="snapshot",
                        compression="zstd",
                        target=schedule.target,
                        note=f"scheduled ({schedule.cron})",
                        schedule_id=schedule.id,
                    )
                )
            except (BusyError, ConflictError) as exc:
                retry = min(following, moment + _BUSY_RETRY)
                store.backups.claim_run(schedule.id, expected_next=following, ran_at=moment, next_run_at=retry)
                log.info("backup schedule %s: app busy (%s); trying again at %s", schedule.id, exc, retry)
            except ProximityError as exc:
                log.warning("backup schedule %s could not run: %s", schedule.id, exc)
        return handles
