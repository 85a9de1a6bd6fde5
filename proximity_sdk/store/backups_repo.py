"""Backup records, backup schedules and backup targets (their options encrypted)."""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from proximity_sdk.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from proximity_sdk.models.backup import (
    Backup,
    BackupMode,
    BackupSchedule,
    BackupStats,
    BackupStatus,
    BackupTarget,
    Compression,
)
from proximity_sdk.store._common import StoreContext, validate_request
from proximity_sdk.store._keyset import Cursor, after_cursor
from proximity_sdk.store.tables import AppRow, BackupRow, BackupScheduleRow, BackupTargetRow

__all__ = ["BackupCreate", "BackupPatch", "BackupsRepository", "ScheduleCreate"]

MAX_PAGE_SIZE = 1000
_NAME = r"^[a-z][a-z0-9-]{0,62}$"


class BackupCreate(BaseModel):
    """Request (internal, from the façade): a new backup record, ``creating`` until its operation ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str
    hostname: str
    host_id: str
    node: str | None = None
    vmid: int | None = Field(default=None, ge=100, le=999_999_999)
    mode: BackupMode = "snapshot"
    compression: Compression = "zstd"
    target: str | None = None
    storage: str | None = None
    note: str | None = Field(default=None, max_length=1024)
    schedule_id: str | None = None
    status: BackupStatus = BackupStatus.CREATING


class BackupPatch(BaseModel):
    """Request (internal): fields of a backup record to change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: BackupStatus | None = None
    node: str | None = None
    vmid: int | None = Field(default=None, ge=100, le=999_999_999)
    storage: str | None = None
    volid: str | None = Field(default=None, max_length=512)
    location: str | None = Field(default=None, max_length=1024)
    size_bytes: int | None = Field(default=None, ge=0)
    duration_seconds: float | None = Field(default=None, ge=0)
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    error: str | None = None
    completed_at: datetime | None = None


class ScheduleCreate(BaseModel):
    """Request (internal): a backup schedule (the cron text was checked by the caller)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str
    cron: str = Field(min_length=1, max_length=128)
    keep_last: int | None = Field(default=None, ge=1, le=10_000)
    keep_daily: int | None = Field(default=None, ge=1, le=10_000)
    keep_weekly: int | None = Field(default=None, ge=1, le=10_000)
    target: str | None = None
    next_run_at: datetime


def _backup(row: BackupRow) -> Backup:
    return Backup.model_validate(
        {c: getattr(row, c) for c in (
            "id", "app_id", "hostname", "status", "mode", "compression", "target", "host_id", "node", "vmid",
            "storage", "volid", "size_bytes", "note", "error", "schedule_id", "location", "duration_seconds",
            "digest", "created_at", "completed_at")})  # fmt: skip


def _schedule(row: BackupScheduleRow) -> BackupSchedule:
    return BackupSchedule.model_validate(
        {c: getattr(row, c) for c in (
            "id", "app_id", "cron", "keep_last", "keep_daily", "keep_weekly", "target", "enabled", "last_run_at",
            "next_run_at", "created_at")})  # fmt: skip


def _target(row: BackupTargetRow) -> BackupTarget:
    return BackupTarget(id=row.id, name=row.name, kind=row.kind, created_at=row.created_at)


def _find(s: Session, backup_id: str) -> BackupRow:
    row = s.get(BackupRow, backup_id)
    if row is None:
        raise NotFoundError(f"no backup {backup_id!r}", hint="List them with px.backups.list()")
    return row


def _check_page(offset: int, limit: int) -> None:
    if offset < 0:
        raise ValidationError(f"offset must be 0 or more, got {offset}", field="offset")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}", field="limit")


class BackupsRepository:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    # backups ---------------------------------------------------------------------------------

    def create(self, request: BackupCreate | None = None, /, **fields: Any) -> Backup:
        req = validate_request(BackupCreate, request, fields, what="backup")
        with self._ctx.session(immediate=True) as s:
            if s.get(AppRow, req.app_id) is None:
                raise NotFoundError(f"no app {req.app_id!r}", hint="List the apps with px.apps.list()")
            row = BackupRow(**req.model_dump())
            s.add(row)
            s.flush()
            return _backup(row)

    def get(self, backup_id: str) -> Backup:
        with self._ctx.session() as s:
            return _backup(_find(s, backup_id))

    def list(
        self,
        *,
        app_id: str | None = None,
        status: BackupStatus | None = None,
        schedule_id: str | None = None,
        offset: int = 0,
        limit: int = 100,
        after: Cursor | None = None,
    ) -> list[Backup]:
        """One page of backups, newest first. ``after`` (the previous page's last
        ``(created_at, id)``) seeks instead of ``offset``."""
        _check_page(offset, limit)
        if after is not None and offset:
            raise ValidationError("give offset or after, not both", field="after")
        query = after_cursor(
            select(BackupRow), BackupRow.created_at, BackupRow.id, after, newest_first=True, id_descending=True
        )
        if app_id is not None:
            query = query.where(BackupRow.app_id == app_id)
        if status is not None:
            query = query.where(BackupRow.status == status)
        if schedule_id is not None:
            query = query.where(BackupRow.schedule_id == schedule_id)
        query = query.order_by(BackupRow.created_at.desc(), BackupRow.id.desc()).offset(offset).limit(limit)
        with self._ctx.session() as s:
            return [_backup(r) for r in s.execute(query).scalars()]

    def update(self, backup_id: str, request: BackupPatch | None = None, /, **fields: Any) -> Backup:
        req = validate_request(BackupPatch, request, fields, what="backup update")
        with self._ctx.session(immediate=True) as s:
            row = _find(s, backup_id)
            for name in req.model_fields_set:
                setattr(row, name, getattr(req, name))
            s.flush()
            return _backup(row)

    def transition(self, backup_id: str, *, to: BackupStatus, allowed: Collection[BackupStatus], action: str) -> Backup:
        """Move to ``to`` only from one of ``allowed`` (compare-and-set: two callers cannot both win)."""
        with self._ctx.session(immediate=True) as s:
            row = _find(s, backup_id)
            done = s.execute(
                update(BackupRow)
                .where(BackupRow.id == backup_id, BackupRow.status.in_(list(allowed)))
                .values(status=to)
            ).rowcount  # type: ignore[attr-defined]
            if not done:
                raise ConflictError(
                    f"cannot {action} backup {backup_id}: it is {row.status.value}",
                    hint="Wait for the operation on it to end"
                    if row.status in (BackupStatus.CREATING, BackupStatus.RESTORING, BackupStatus.DELETING)
                    else "Only completed backups can be used",
                )
            s.expire(row)
            return _backup(_find(s, backup_id))

    def delete(self, backup_id: str) -> None:
        with self._ctx.session(immediate=True) as s:
            s.execute(delete(BackupRow).where(BackupRow.id == backup_id))

    def stats(self, *, app_id: str | None = None) -> BackupStats:
        query = select(BackupRow.status, func.count(), func.coalesce(func.sum(BackupRow.size_bytes), 0))
        if app_id is not None:
            query = query.where(BackupRow.app_id == app_id)
        with self._ctx.session() as s:
            rows = s.execute(query.group_by(BackupRow.status)).all()
        by_status = {BackupStatus(status): int(count or 0) for status, count, _ in rows}
        completed = next(
            ((int(count or 0), int(size or 0)) for status, count, size in rows if status == BackupStatus.COMPLETED),
            (0, 0),
        )
        return BackupStats(
            total=sum(by_status.values()),
            by_status=by_status,
            completed_size_bytes=completed[1],
            average_size_bytes=completed[1] // completed[0] if completed[0] else None,
        )

    # schedules -------------------------------------------------------------------------------

    def create_schedule(self, request: ScheduleCreate | None = None, /, **fields: Any) -> BackupSchedule:
        req = validate_request(ScheduleCreate, request, fields, what="backup schedule")
        with self._ctx.session(immediate=True) as s:
            if s.get(AppRow, req.app_id) is None:
                raise NotFoundError(f"no app {req.app_id!r}", hint="List the apps with px.apps.list()")
            row = BackupScheduleRow(**req.model_dump(), enabled=True)
            s.add(row)
            s.flush()
            return _schedule(row)

    def get_schedule(self, schedule_id: str) -> BackupSchedule:
        with self._ctx.session() as s:
            row = s.get(BackupScheduleRow, schedule_id)
            if row is None:
                raise NotFoundError(f"no backup schedule {schedule_id!r}", hint="List them with px.backups.schedules()")
            return _schedule(row)

    def schedules(self, *, app_id: str | None = None) -> builtins.list[BackupSchedule]:
        query = select(BackupScheduleRow).order_by(BackupScheduleRow.created_at, BackupScheduleRow.id)
        if app_id is not None:
            query = query.where(BackupScheduleRow.app_id == app_id)
        with self._ctx.session() as s:
            return [_schedule(r) for r in s.execute(query).scalars()]

    def delete_schedule(self, schedule_id: str) -> None:
        self.get_schedule(schedule_id)
        with self._ctx.session(immediate=True) as s:
            s.execute(delete(BackupScheduleRow).where(BackupScheduleRow.id == schedule_id))

    def due_schedules(self, now: datetime) -> builtins.list[BackupSchedule]:
        query = (
            select(BackupScheduleRow)
            .where(BackupScheduleRow.enabled.is_(True), BackupScheduleRow.next_run_at <= now)
            .order_by(BackupScheduleRow.next_run_at, BackupScheduleRow.id)
        )
        with self._ctx.session() as s:
            return [_schedule(r) for r in s.execute(query).scalars()]

    def claim_run(
        self, schedule_id: str, *, expected_next: datetime | None, ran_at: datetime, next_run_at: datetime
    ) -> bool:
        """Advance a due schedule; False when another runner advanced it first (compare-and-set)."""
        with self._ctx.session(immediate=True) as s:
            done = s.execute(
                update(BackupScheduleRow)
                .where(BackupScheduleRow.id == schedule_id, BackupScheduleRow.next_run_at == expected_next)
                .values(last_run_at=ran_at, next_run_at=next_run_at)
            ).rowcount  # type: ignore[attr-defined]
            return bool(done)

    # targets ---------------------------------------------------------------------------------

    def add_target(self, *, name: str, kind: str, options: Mapping[str, Any]) -> BackupTarget:
        if not isinstance(name, str) or not re.match(_NAME, name):
            raise ValidationError(
                f"target name {name!r} must be lower-case letters, digits and '-', starting with a letter (at most 63)",
                field="name",
            )
        try:
            sealed = self._ctx.box.encrypt(json.dumps(dict(options), sort_keys=True))
        except TypeError as exc:
            raise ValidationError(f"target options must be JSON values: {exc}", field="options") from None
        try:
            with self._ctx.session(immediate=True) as s:
                row = BackupTargetRow(name=name, kind=kind, options=sealed)
                s.add(row)
                s.flush()
                return _target(row)
        except IntegrityError:
            raise AlreadyExistsError(
                f"a backup target named {name!r} already exists",
                hint="Remove it first with px.backups.targets.remove(name)",
            ) from None

    def _target_row(self, s: Session, name: str) -> BackupTargetRow:
        row = s.execute(select(BackupTargetRow).where(BackupTargetRow.name == name)).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"no backup target {name!r}", hint="List them with px.backups.targets.list()")
        return row

    def get_target(self, name: str) -> BackupTarget:
        with self._ctx.session() as s:
            return _target(self._target_row(s, name))

    def target_options(self, name: str) -> dict[str, Any]:
        """The target's options, decrypted (for opening the target only: never return them to users)."""
        with self._ctx.session() as s:
            row = self._target_row(s, name)
            options: dict[str, Any] = json.loads(self._ctx.box.decrypt(row.options, what=f"backup target {name}"))
            return options

    def targets(self) -> builtins.list[BackupTarget]:
        with self._ctx.session() as s:
            return [_target(r) for r in s.execute(select(BackupTargetRow).order_by(BackupTargetRow.name)).scalars()]

    def remove_target(self, name: str) -> None:
        with self._ctx.session(immediate=True) as s:
            row = self._target_row(s, name)
            used = s.execute(
                select(func.count())
                .select_from(BackupRow)
                .where(BackupRow.target == name, BackupRow.status != BackupStatus.FAILED)
            ).scalar_one()
            scheduled = s.execute(
                select(func.count()).select_from(BackupScheduleRow).where(BackupScheduleRow.target == name)
            ).scalar_one()
            if used or scheduled:
                raise ConflictError(
                    f"backup target {name!r} still holds {used} backup(s) and is used by {scheduled} schedule(s)",
                    hint="Delete those backups and schedules first",
                )
            s.delete(row)
