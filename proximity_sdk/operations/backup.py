"""Backup create and delete: vzdump of an app's container to a target, queued per node, then retention.

The backup record exists (``creating``) before the operation starts, one per request; the
operation fills it in and ends it ``completed`` (volid, location, size, duration) or ``failed``
(with the error). vzdump takes a global lock per node, so backups wait for their node's turn in
this process (events say "waiting") instead of failing; between processes PVE's own ``lockwait``
queues them. A backup made by a schedule then prunes that schedule's older backups.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from proximity_sdk.backup_targets.base import stored_location
from proximity_sdk.backup_targets.volumes import delete_backup_volume, run_vzdump
from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ProximityError
from proximity_sdk.models.backup import Backup, BackupStatus
from proximity_sdk.models.operation import Operation
from proximity_sdk.operations._targets import TargetRegistry
from proximity_sdk.operations.retention import Retention, RetentionItem, prune_plan
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow

__all__ = ["BackupKind", "DeleteBackupKind", "prune_schedule", "take_backup", "vzdump_turn"]

_turns: dict[tuple[str, str], threading.Lock] = {}
_turns_guard = threading.Lock()
_POLL = 0.5  # how often a queued backup looks for a cancel request or a takeover


@contextlib.contextmanager
def vzdump_turn(ctx: OperationContext, host_id: str, node: str) -> Iterator[None]:
    """Hold the node's vzdump turn (one backup at a time per node in this process)."""
    with _turns_guard:
        turn = _turns.setdefault((host_id, node), threading.Lock())
    if not turn.acquire(blocking=False):
        ctx.event(f"waiting: another backup is running on node {node} (vzdump runs one at a time per node)")
        while not turn.acquire(timeout=_POLL):
            ctx.checkpoint()
        ctx.event(f"node {node} is free: this backup's turn")
    try:
        yield
    finally:
        turn.release()


def _step(ctx: OperationContext, name: str | None) -> contextlib.AbstractContextManager[None]:
    return ctx.step(name) if name else contextlib.nullcontext()


def take_backup(
    ctx: OperationContext,
    targets: TargetRegistry,
    backup: Backup,
    *,
    host_id: str,
    node: str,
    vmid: int,
    steps: tuple[str | None, str | None, str | None] = ("queue", "vzdump", "store"),
) -> Backup:
    """Queue for the node, vzdump, hand the archive to the target; the record ends ``completed``.
    Each effect is journalled (kinds ``volume`` and ``location``) until the record holds it."""
    store = ctx.store
    target = targets.open(backup.target)
    access = targets.access(host_id, node, emitter(ctx))
    store.backups.update(backup.id, node=node, vmid=vmid, storage=target.dump_storage)
    with contextlib.ExitStack() as turn:
        with _step(ctx, steps[0]):
            turn.enter_context(vzdump_turn(ctx, host_id, node))
        with _step(ctx, steps[1]):
            ctx.event(f"vzdump of CT {vmid} to storage {target.dump_storage} ({backup.mode}, {backup.compression})")
            started = time.monotonic()
            archive, _ = run_vzdump(
                access.client,
                node,
                vmid,
                storage=target.dump_storage,
                mode=backup.mode,
                compression=backup.compression,
                on_log=ctx.task_log,
                on_upid=lambda upid: ctx.save_params(vzdump_upid=upid),
            )
            duration = round(time.monotonic() - started, 3)
            ctx.record("volume", host_id=host_id, node=node, volid=archive.volid, backup_id=backup.id)
            store.backups.update(backup.id, volid=archive.volid, size_bytes=archive.size_bytes)
            ctx.event(f"archive {archive.volid}: {archive.size_bytes or 0} bytes in {duration:g}s")
    with _step(ctx, steps[2]):
        location, digest = stored_location(target.store(access, archive))
        ctx.record("location", host_id=host_id, node=node, target=backup.target, location=location, backup_id=backup.id)
        if location != archive.volid:
            ctx.event(f"stored at {location} by target {target.name}")
    done = store.backups.update(
        backup.id,
        status=BackupStatus.COMPLETED,
        location=location,
        duration_seconds=duration,
        digest=digest,
        completed_at=utcnow(),
        error=None,
    )
    ctx.forget("volume", backup_id=backup.id)
    ctx.forget("location", backup_id=backup.id)
    return done


def undo_backup_effects(ctx: OperationContext, targets: TargetRegistry) -> None:
    """Remove what a failed backup left (newest first): the target's copy, then the node volume."""
    for effect in reversed(ctx.effects):
        if effect["kind"] == "location":
            access = targets.access(effect["host_id"], effect["node"], emitter(ctx))
            targets.open(effect["target"]).delete(access, effect["location"])
            ctx.forget("location", location=effect["location"])
        elif effect["kind"] == "volume":
            client = targets.access(effect["host_id"], effect["node"], emitter(ctx)).client
            delete_backup_volume(client, effect["node"], effect["volid"], emit=emitter(ctx))
            ctx.forget("volume", volid=effect["volid"])


def remove_archive(ctx: OperationContext, targets: TargetRegistry, backup: Backup) -> None:
    """Delete a backup's archive from its target (and the node volume, if the target left one);
    an archive already gone is not an error."""
    if backup.host_id is None or backup.node is None or not (backup.location or backup.volid):
        ctx.event(f"backup {backup.id} has no archive to remove")
        return
    access = targets.access(backup.host_id, backup.node, emitter(ctx))
    location = backup.location or backup.volid
    assert location is not None
    if not targets.open(backup.target).delete(access, location):
        ctx.event(f"the archive {location} was already gone")
    if backup.volid and backup.volid != location:
        delete_backup_volume(access.client, backup.node, backup.volid, emit=emitter(ctx))


def prune_schedule(ctx: OperationContext, targets: TargetRegistry, schedule_id: str) -> list[str]:
    """Delete the schedule's completed backups its retention no longer keeps; returns their ids."""
    store = ctx.store
    schedule = store.backups.get_schedule(schedule_id)
    policy = Retention(keep_last=schedule.keep_last, keep_daily=schedule.keep_daily, keep_weekly=schedule.keep_weekly)
    good = store.backups.list(schedule_id=schedule_id, status=BackupStatus.COMPLETED, limit=1000)
    _, prune = prune_plan([RetentionItem(b.id, b.created_at) for b in good], policy)
    pruned = []
    for backup_id in prune:
        try:
            backup = store.backups.transition(
                backup_id, to=BackupStatus.DELETING, allowed=[BackupStatus.COMPLETED], action="prune"
            )
        except ProximityError as exc:
            ctx.event(f"not pruning backup {backup_id}: {exc}", level="warning")
            continue
        try:
            remove_archive(ctx, targets, backup)
        except ProximityError as exc:
            store.backups.update(backup_id, status=BackupStatus.COMPLETED)
            ctx.event(f"could not prune backup {backup_id}: {exc}", level="warning")
            continue
        store.backups.delete(backup_id)
        pruned.append(backup_id)
    ctx.event(f"retention kept {len(good) - len(pruned)} backup(s), pruned {len(pruned)}")
    return pruned


class BackupKind(OperationKind):
    """``params``: ``backup_id``. ``wait()`` returns the completed :class:`Backup`."""

    name: ClassVar[str] = "backup"
    steps: ClassVar[tuple[str, ...]] = ("queue", "vzdump", "store", "prune")
    deadline_seconds: ClassVar[float] = 8 * 3600.0

    def __init__(self, services: Services, targets: TargetRegistry) -> None:
        self.services = services
        self.targets = targets

    def result(self, store: Store, operation: Operation) -> Backup:
        return store.backups.get(str(operation.result["backup_id"]))

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        store = self.services.store
        backup = store.backups.get(str(ctx.params["backup_id"]))
        app = store.apps.get(str(ctx.operation.app_id))
        if app.node is None or app.vmid is None:
            raise ProximityError(f"app {app.hostname!r} has no container to back up")
        done = take_backup(ctx, self.targets, backup, host_id=app.host_id, node=app.node, vmid=app.vmid)
        if done.schedule_id is not None:
            with ctx.step("prune"):
                try:
                    prune_schedule(ctx, self.targets, done.schedule_id)
                except ProximityError as exc:  # the backup itself is good: retention retries next time
                    ctx.event(f"retention not applied: {exc}", level="warning")
        return {"backup_id": backup.id, "app_id": app.id, "volid": done.volid, "location": done.location}

    def rollback(self, ctx: OperationContext) -> None:
        undo_backup_effects(ctx, self.targets)

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        step = f"{ctx.current_step}: " if ctx.current_step else ""
        with contextlib.suppress(ProximityError):
            self.services.store.backups.update(
                str(ctx.params["backup_id"]), status=BackupStatus.FAILED, error=f"{step}{error}"
            )


class DeleteBackupKind(OperationKind):
    """``params``: ``backup_id``, ``previous_status`` (restored when the delete fails)."""

    name: ClassVar[str] = "backup-delete"
    steps: ClassVar[tuple[str, ...]] = ("delete",)

    def __init__(self, services: Services, targets: TargetRegistry) -> None:
        self.services = services
        self.targets = targets

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        backup = self.services.store.backups.get(str(ctx.params["backup_id"]))
        with ctx.step("delete"):
            remove_archive(ctx, self.targets, backup)
            self.services.store.backups.delete(backup.id)
        return {"backup_id": backup.id, "deleted": True}

    def recover(self, ctx: OperationContext) -> dict[str, Any]:
        ctx.event("deleting again (an archive already gone is fine)")
        return self.run(ctx)

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        with contextlib.suppress(ProximityError):
            self.services.store.backups.update(
                str(ctx.params["backup_id"]),
                error=f"delete failed: {error}",
                status=BackupStatus(str(ctx.params["previous_status"])),
            )
