"""Restore an app from one of its backups: into a new container (default) or in place.

New container (``in_place=False``): the archive is restored to a new VMID (same hostname, a new
MAC), and only once that worked is the old container stopped and the new one started; when it
runs and answers, the app's record moves to it and the old container is kept, stopped and tagged
``proximity-retired``, for ``settings.restore_grace_hours`` (an entry of ``app.config["retired"]``
written with ``maintenance_repo.add_retired``: the janitor destroys it later). A bad archive
therefore never touches the working app.

In place: a safety backup of the container first, then stop, then PVE's overwrite restore
(``force=1``, which destroys the old volumes before extracting); if anything fails after that,
the safety backup is restored the same way and the app started again.

The disk storage is always passed (PVE would default to ``local``): the ``storage`` asked for, else
the storage of the app's current root disk, else ``settings.rootfs_storage``.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any, ClassVar

from proximity_sdk.backup_targets.base import fetch_checked
from proximity_sdk.backup_targets.volumes import delete_backup_volume
from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import AlreadyExistsError, NotFoundError, ProximityError
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.backup import Backup, BackupStatus
from proximity_sdk.models.maintenance import RetiredContainer
from proximity_sdk.models.operation import Operation
from proximity_sdk.operations._stop import shutdown_seconds
from proximity_sdk.operations._targets import TargetRegistry
from proximity_sdk.operations.backup import take_backup, undo_backup_effects
from proximity_sdk.operations.deploy.common import app_url
from proximity_sdk.operations.oci import drop_console, has_console_log, is_oci, keep_console, oci_health
from proximity_sdk.operations.provision import Provisioner, app_project
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.containers import (
    container_status,
    destroy_container,
    shutdown_container,
    start_container,
    wait_for_address,
)
from proximity_sdk.proxmox.tasks import wait_task
from proximity_sdk.proxmox.vmids import VmidAllocator
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.maintenance_repo import add_retired

__all__ = ["IN_PLACE_STEPS", "NEW_CONTAINER_STEPS", "RETIRED_TAG", "RestoreKind", "app_disk_storage", "restore_archive"]

NEW_CONTAINER_STEPS = ("check", "reserve", "fetch", "restore", "switch", "start", "address", "health", "retire")
IN_PLACE_STEPS = ("check", "fetch", "safety", "stop", "restore", "start", "address", "health")
RETIRED_TAG = "proximity-retired"
_RESTORE_TIMEOUT = 6 * 3600.0


def restore_archive(
    ctx: OperationContext, client: ProxmoxClient, node: str, vmid: int, volid: str, *, storage: str, overwrite: bool
) -> None:
    params: dict[str, Any] = {"vmid": vmid, "ostemplate": volid, "restore": 1, "storage": storage}
    if overwrite:
        params["force"] = 1
    else:
        params["unique"] = 1  # a new MAC: the old container keeps its own
    ctx.event(f"restoring {volid} into CT {vmid} (disks on {storage})")
    upid = client.post(f"/nodes/{node}/lxc", **params)
    wait_task(client, str(upid), timeout=_RESTORE_TIMEOUT, on_log=ctx.task_log)


def app_disk_storage(services: Services, app: App) -> str:
    """The storage of the app's root disk now (a restore must name it: PVE would default to ``local``),
    else ``settings.rootfs_storage``."""
    assert app.node is not None and app.vmid is not None
    with contextlib.suppress(ProximityError):
        rootfs = services.clients.get(app.host_id).lxc_config(app.node, app.vmid).mounts.get("rootfs", "")
        if ":" in rootfs:
            return rootfs.split(":", 1)[0]
    return services.store.settings.get().rootfs_storage


class RestoreKind(OperationKind):
    """``params``: ``backup_id``, ``in_place``, ``storage`` (or None), ``previous_status``.
    ``wait()`` returns the restored :class:`App`."""

    name: ClassVar[str] = "restore"
    steps: ClassVar[tuple[str, ...]] = NEW_CONTAINER_STEPS
    deadline_seconds: ClassVar[float] = 12 * 3600.0

    def __init__(self, services: Services, targets: TargetRegistry) -> None:
        self.services = services
        self.targets = targets

    def result(self, store: Store, operation: Operation) -> App:
        return store.apps.get(str(operation.result["app_id"]))

    # shared steps -------------------------------------------------------------------------------

    def _check(self, ctx: OperationContext, app: App, backup: Backup) -> tuple[str, int, str]:
        with ctx.step("check"):
            if app.node is None or app.vmid is None:
                raise NotFoundError(f"app {app.hostname!r} has no container", hint="Delete the app record")
            location = backup.location or backup.volid
            if backup.node is None or location is None:
                raise NotFoundError(f"backup {backup.id} has no archive")
            access = self.targets.access(app.host_id, backup.node, emitter(ctx))
            size = self.targets.open(backup.target).verify(access, location)
            if size is None:
                raise NotFoundError(
                    f"the archive of backup {backup.id} ({location}) is missing or damaged",
                    hint="Restore another backup; this one cannot be used",
                )
            ctx.event(f"archive {location} is there ({size} bytes)")
            storage = ctx.params.get("storage") or app_disk_storage(self.services, app)
            ctx.save_params(disk_storage=storage)
            return location, size, storage

    def _fetch(self, ctx: OperationContext, app: App, backup: Backup, location: str) -> str:
        assert backup.node is not None
        with ctx.step("fetch"):
            access = self.targets.access(app.host_id, backup.node, emitter(ctx))
            fetched = fetch_checked(self.targets.open(backup.target), access, location, backup.digest)
            if fetched.temporary:
                ctx.record("temp_volume", host_id=app.host_id, node=backup.node, volid=fetched.volid)
                ctx.event(f"archive fetched to {fetched.volid} for this restore")
            return fetched.volid

    def _run_app(self, ctx: OperationContext, app: App, node: str, vmid: int) -> str:
        client = self.services.clients.get(app.host_id)
        settings = ctx.settings
        with ctx.step("start"), ctx.node_slot(app.host_id, node):
            if has_console_log(app):
                # PVE restores raw lxc.* keys for root@pam only (Create.pm restore_configuration: "skipping
                # custom lxc options"): the restored config names no console log until it is written again
                console = keep_console(ctx, self.services, app, node, vmid, journal=False)
                store = self.services.store
                store.apps.update(app.id, config={**store.apps.get(app.id).config, **console})
            start_container(client, node, vmid, emit=emitter(ctx))
        with ctx.step("address"):
            static = app.address if settings.pool() is not None else None
            address = wait_for_address(client, node, vmid, emit=emitter(ctx), static_address=static)
            ctx.event(f"address {address}")
        main_port = app.config.get("main_port")
        with ctx.step("health"):
            if is_oci(app):
                oci_health(ctx, client, node, vmid)  # no shell in an application container
            elif main_port:
                Provisioner(
                    self.services.shells.get(app.host_id),
                    node,
                    vmid,
                    project=app_project(app),
                    emit=lambda line: ctx.event(line, level="debug"),
                ).wait_healthy(
                    int(main_port), attempts=settings.health_timeout_seconds, path=app.config.get("health_path")
                )
        return address

    def _drop_temp(self, ctx: OperationContext) -> None:
        for effect in ctx.effects:
            if effect["kind"] == "temp_volume":
                client = self.services.clients.get(effect["host_id"])
                delete_backup_volume(client, effect["node"], effect["volid"], emit=emitter(ctx))
                ctx.forget("temp_volume", volid=effect["volid"])

    # run ----------------------------------------------------------------------------------------

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        store = self.services.store
        app = store.apps.get(str(ctx.operation.app_id))
        backup = store.backups.get(str(ctx.params["backup_id"]))
        store.apps.update(app.id, status=AppStatus.RESTORING)
        if ctx.params.get("in_place"):
            self._in_place(ctx, app, backup)
        else:
            self._new_container(ctx, app, backup)
        self._drop_temp(ctx)
        store.backups.update(backup.id, status=BackupStatus.COMPLETED)
        return {"app_id": app.id, "backup_id": backup.id, "vmid": store.apps.get(app.id).vmid}

    def _new_container(self, ctx: OperationContext, app: App, backup: Backup) -> None:
        store = self.services.store
        location, _, storage = self._check(ctx, app, backup)
        assert app.node is not None and app.vmid is not None and backup.node is not None
        node, old_vmid = backup.node, app.vmid
        client = self.services.clients.get(app.host_id)
        settings = ctx.settings
        allocator = VmidAllocator(
            client, store.reservations, host_id=app.host_id, vmid_min=settings.vmid_min, vmid_max=settings.vmid_max
        )
        with ctx.step("reserve"):
            vmid = allocator.reserve(operation_id=ctx.id, app_id=app.id)
            ctx.record("vmid", host_id=app.host_id, vmid=vmid)
            ctx.event(f"VMID {vmid} reserved for the restored container")
        volid = self._fetch(ctx, app, backup, location)
        with ctx.step("restore"):
            for _attempt in range(5):
                ctx.record("container", host_id=app.host_id, node=node, vmid=vmid)  # before the request
                try:
                    with ctx.node_slot(app.host_id, node):
                        restore_archive(ctx, client, node, vmid, volid, storage=storage, overwrite=False)
                    break
                except AlreadyExistsError:  # someone else took the id between reserve and restore
                    ctx.forget("container", vmid=vmid)
                    taken = vmid
                    vmid = allocator.reserve(operation_id=ctx.id, app_id=app.id, after=taken)
                    ctx.record("vmid", host_id=app.host_id, vmid=vmid)
                    store.reservations.release_vmid(app.host_id, taken)
                    ctx.forget("vmid", vmid=taken)
            else:
                raise AlreadyExistsError(f"no free VMID for the restore after 5 tries on node {node}")
        with ctx.step("switch"):
            status = container_status(client, app.node, old_vmid)
            was_running = bool(status and status.running)
            ctx.record("old_stopped", host_id=app.host_id, node=app.node, vmid=old_vmid, was_running=was_running)
            if was_running:
                with ctx.node_slot(app.host_id, app.node):
                    shutdown_container(client, app.node, old_vmid, timeout=shutdown_seconds(app, 60), emit=emitter(ctx))
                ctx.event(f"old container {old_vmid} stopped (kept until the restored one runs)")
        address = self._run_app(ctx, app, node, vmid)
        with ctx.step("retire"):
            until = utcnow() + timedelta(hours=settings.restore_grace_hours)
            with contextlib.suppress(ProximityError):  # a missing tag must not undo a good restore
                tags = client.lxc_config(app.node, old_vmid).tags or ""
                wanted = ";".join(dict.fromkeys([*filter(None, tags.replace(",", ";").split(";")), RETIRED_TAG]))
                client.put(f"/nodes/{app.node}/lxc/{old_vmid}/config", tags=wanted)
            store.apps.update(
                app.id,
                status=AppStatus.RUNNING,
                vmid=vmid,
                node=node,
                address=address,
                url=app_url(address, app.config.get("main_port")),
            )
            # the janitor destroys it once `until` passed; the old VMID stays reserved for the app until then
            add_retired(
                store,
                app.id,
                RetiredContainer(host_id=app.host_id, node=app.node, vmid=old_vmid, hostname=app.hostname, until=until),
            )
            if has_console_log(app):  # the app's console is the new container's now
                drop_console(ctx, self.services, app, app.node, old_vmid)
            store.reservations.attach_vmid(app.host_id, vmid, app_id=app.id)
            ctx.forget_kinds("container", "vmid", "old_stopped")
            ctx.event(
                f"app {app.hostname} now runs in CT {vmid}; CT {old_vmid} is kept, stopped, until "
                f"{until.isoformat(timespec='minutes')}"
            )

    def _in_place(self, ctx: OperationContext, app: App, backup: Backup) -> None:
        store = self.services.store
        location, _, storage = self._check(ctx, app, backup)
        assert app.node is not None and app.vmid is not None
        node, vmid = app.node, app.vmid
        client = self.services.clients.get(app.host_id)
        volid = self._fetch(ctx, app, backup, location)
        with ctx.step("safety"):
            safety = store.backups.create(
                app_id=app.id,
                hostname=app.hostname,
                host_id=app.host_id,
                node=node,
                vmid=vmid,
                note=f"safety backup before restoring backup {backup.id}",
            )
            ctx.record("safety", backup_id=safety.id)
            safety = take_backup(
                ctx, self.targets, safety, host_id=app.host_id, node=node, vmid=vmid, steps=(None, None, None)
            )
        with ctx.step("stop"):
            status = container_status(client, node, vmid)
            was_running = bool(status and status.running)
            ctx.record("old_stopped", host_id=app.host_id, node=node, vmid=vmid, was_running=was_running)
            if was_running:
                with ctx.node_slot(app.host_id, node):
                    shutdown_container(client, node, vmid, timeout=shutdown_seconds(app, 60), emit=emitter(ctx))
        with ctx.step("restore"):
            ctx.record(
                "overwritten", host_id=app.host_id, node=node, vmid=vmid, storage=storage, safety_volid=safety.volid
            )
            with ctx.node_slot(app.host_id, node):
                restore_archive(ctx, client, node, vmid, volid, storage=storage, overwrite=True)
        address = self._run_app(ctx, app, node, vmid)
        store.apps.update(
            app.id, status=AppStatus.RUNNING, address=address, url=app_url(address, app.config.get("main_port"))
        )
        ctx.forget_kinds("safety", "old_stopped", "overwritten")

    # failure ------------------------------------------------------------------------------------

    def rollback(self, ctx: OperationContext) -> None:
        store = self.services.store
        app = store.apps.get(str(ctx.operation.app_id))
        undo_backup_effects(ctx, self.targets)  # an unfinished safety backup
        for effect in reversed(ctx.effects):
            kind = effect["kind"]
            client = self.services.clients.get(effect["host_id"]) if "host_id" in effect else None
            if kind == "container" and client is not None:
                destroy_container(
                    client, effect["node"], int(effect["vmid"]), emit=emitter(ctx), expect_hostname=app.hostname
                )
                ctx.forget("container", vmid=effect["vmid"])
            elif kind == "vmid":
                store.reservations.release_vmid(effect["host_id"], int(effect["vmid"]))
                ctx.forget("vmid", vmid=effect["vmid"])
            elif kind == "overwritten" and client is not None:
                self._back_to_safety(ctx, client, effect)
                ctx.forget("overwritten")
            elif kind == "old_stopped" and client is not None:
                status = container_status(client, effect["node"], int(effect["vmid"]))
                if effect["was_running"] and status is not None and not status.running:
                    start_container(client, effect["node"], int(effect["vmid"]), emit=emitter(ctx))
                    ctx.event(f"CT {effect['vmid']} started again")
                ctx.forget("old_stopped")
            elif kind == "safety":
                safety = store.backups.get(effect["backup_id"])
                if safety.status != BackupStatus.COMPLETED:
                    store.backups.update(
                        safety.id,
                        status=BackupStatus.FAILED,
                        error="the restore failed before its safety backup was complete",
                    )
                ctx.forget("safety")
        self._drop_temp(ctx)

    def _back_to_safety(self, ctx: OperationContext, client: ProxmoxClient, effect: dict[str, Any]) -> None:
        node, vmid = effect["node"], int(effect["vmid"])
        status = container_status(client, node, vmid)
        if status is not None and status.running:
            shutdown_container(client, node, vmid, timeout=30, emit=emitter(ctx))
        ctx.event(f"rolling back to the safety backup {effect['safety_volid']}", level="warning")
        restore_archive(
            ctx, client, node, vmid, str(effect["safety_volid"]), storage=str(effect["storage"]), overwrite=True
        )

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        store = self.services.store
        with contextlib.suppress(ProximityError):
            store.backups.update(str(ctx.params["backup_id"]), status=BackupStatus.COMPLETED)
        with contextlib.suppress(ProximityError):
            app = store.apps.get(str(ctx.operation.app_id))
            status = (
                container_status(self.services.clients.get(app.host_id), str(app.node), int(app.vmid or 0))
                if app.node and app.vmid
                else None
            )
            real = AppStatus(str(ctx.params.get("previous_status") or AppStatus.ERROR))
            if status is None:
                real = AppStatus.ERROR
            elif real in (AppStatus.RUNNING, AppStatus.STOPPED):
                real = AppStatus.RUNNING if status.running else AppStatus.STOPPED
            store.apps.update(app.id, status=real)
