"""Resize: an app's cores, memory, swap (``PUT /config``) and disk (``PUT /resize``, grow only).

A running container takes the new cores, memory and swap at once (PVE changes the cgroup
limits of a running LXC container); the root disk grows online too. More memory is checked
against the room on the app's node first; a smaller disk is refused before anything is sent.
Each step compares with what Proxmox holds now and changes only what differs, so running it
again (after a crash) re-applies what is missing and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ConflictError, NotFoundError, ProximityError, ValidationError
from proximity_sdk.models._requests import check_resources
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.operation import Operation
from proximity_sdk.models.resources import Resources
from proximity_sdk.operations._capacity import require_room
from proximity_sdk.proxmox.guests import container_node, disk_size_gb, grow_disk, set_config
from proximity_sdk.store import Store

if TYPE_CHECKING:
    from proximity_sdk.engine.engine import OperationEngine
    from proximity_sdk.engine.handle import OperationHandle

__all__ = ["ResizeKind", "submit_resize"]

_FIELDS = ("cores", "memory_mb", "swap_mb", "disk_gb")


def submit_resize(services: Services, engine: OperationEngine, app_id: str, *, resources: Resources) -> OperationHandle:
    """Check the request and submit the resize; see ``Apps.resize``."""
    store = services.store
    check_resources(resources)
    wanted = {k: v for k, v in resources.model_dump().items() if v is not None}
    if not wanted:
        raise ValidationError("nothing to resize: give cores, memory_mb, swap_mb or disk_gb", field="resources")
    app = store.apps.get(app_id)
    if app.status not in (AppStatus.RUNNING, AppStatus.STOPPED):
        raise ConflictError(
            f"app {app.hostname!r} is {app.status.value}: only a running or stopped app can be resized",
            hint="Wait for its operation to end first",
        )
    if app.vmid is None or app.node is None:
        raise ConflictError(f"app {app.hostname!r} has no container to resize")
    current = app.resources
    if "disk_gb" in wanted and current.disk_gb is not None and wanted["disk_gb"] < current.disk_gb:
        raise ValidationError(
            f"disk_gb {wanted['disk_gb']} is below the app's {current.disk_gb} GiB: disks only grow",
            field="resources.disk_gb",
            hint="Give at least the current size; to get a smaller disk, back up and restore into a new app",
        )
    extra = wanted.get("memory_mb", 0) - (current.memory_mb or 0) if "memory_mb" in wanted else 0
    client = services.clients.get(app.host_id)
    # a first look (read only); the check step looks again against the container's real config
    require_room(client, store, host_id=app.host_id, node=app.node, memory_mb=max(extra, 0))
    return engine.submit(
        "resize", app_id=app.id, host_id=app.host_id, vmid=app.vmid, owner_id=app.owner_id, params=wanted
    )


class ResizeKind(OperationKind):
    name: ClassVar[str] = "resize"
    steps: ClassVar[tuple[str, ...]] = ("check", "config", "disk")
    deadline_seconds: ClassVar[float] = 3600.0

    def __init__(self, services: Services) -> None:
        self.services = services

    def result(self, store: Store, operation: Operation) -> App:
        return store.apps.get(str(operation.app_id))

    def recover(self, ctx: OperationContext) -> dict[str, Any]:
        ctx.event("applying again what the container does not have yet")
        return self.run(ctx)

    def _where(self, ctx: OperationContext) -> tuple[App, str, int]:
        app = self.services.store.apps.get(str(ctx.operation.app_id))
        if app.vmid is None:
            raise NotFoundError(f"app {app.hostname!r} has no container")
        node = container_node(self.services.clients.get(app.host_id), app.vmid)
        if node is None:
            raise NotFoundError(f"CT {app.vmid} of app {app.hostname!r} is not in the cluster any more")
        return app, node, app.vmid

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        store = self.services.store
        app, node, vmid = self._where(ctx)
        client = self.services.clients.get(app.host_id)
        wanted: dict[str, int] = {k: int(v) for k, v in ctx.params.items() if k in _FIELDS and v is not None}

        with ctx.step("check"):
            config = client.lxc_config(node, vmid)
            live = {"cores": config.cores, "memory_mb": config.memory, "swap_mb": config.swap}
            disk = disk_size_gb(config)
            if "disk_gb" in wanted and disk is not None and wanted["disk_gb"] < disk:
                raise ValidationError(
                    f"CT {vmid} has a {disk:g} GiB root disk: it cannot shrink to {wanted['disk_gb']} GiB",
                    field="resources.disk_gb",
                )
            extra = wanted.get("memory_mb", 0) - (config.memory or 0) if "memory_mb" in wanted else 0
            if extra > 0:
                room = require_room(client, store, host_id=app.host_id, node=node, memory_mb=extra)
                ctx.event(f"{extra} MiB more memory fits: {room.describe()}")
            changes = {k: v for k, v in wanted.items() if k in live and live[k] != v}
            ctx.event(
                "to change: "
                + (", ".join(f"{k} {live[k]} -> {v}" for k, v in changes.items()) or "no setting")
                + (f"; root disk {disk:g} -> {wanted['disk_gb']} GiB" if "disk_gb" in wanted else "")
            )

        with ctx.step("config"):
            if changes:
                with ctx.node_slot(app.host_id, node):
                    set_config(
                        client,
                        node,
                        vmid,
                        cores=changes.get("cores"),
                        memory_mb=changes.get("memory_mb"),
                        swap_mb=changes.get("swap_mb"),
                        digest=config.digest,
                    )
                ctx.event("applied" + (" (live: the container runs)" if app.status == AppStatus.RUNNING else ""))
            else:
                ctx.event("cores, memory and swap are as asked already")

        with ctx.step("disk"):
            if "disk_gb" in wanted:
                with ctx.node_slot(app.host_id, node):
                    if grow_disk(client, node, vmid, size_gb=wanted["disk_gb"], emit=emitter(ctx)) is not None:
                        ctx.event(f"root disk grown to {wanted['disk_gb']} GiB")
            else:
                ctx.event("the disk keeps its size")

        store.apps.update(app.id, node=node, resources=app.resources.model_copy(update=wanted))
        return {"app_id": app.id, "changed": sorted(wanted)}

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        """Part of a resize may have been applied: the record takes what the container has now."""
        try:
            app, node, vmid = self._where(ctx)
            config = self.services.clients.get(app.host_id).lxc_config(node, vmid)
        except ProximityError:
            return
        disk = disk_size_gb(config)
        live = {
            "cores": config.cores,
            "memory_mb": config.memory,
            "swap_mb": config.swap,
            "disk_gb": int(disk) if disk is not None and disk == int(disk) else None,
        }
        self.services.store.apps.update(
            app.id, resources=app.resources.model_copy(update={k: v for k, v in live.items() if v is not None})
        )
