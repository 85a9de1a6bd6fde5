"""Migrate: an app's container to another node of the same cluster.

LXC has no live migration: a running container moves by restart migration (shut down, moved,
started on the target), a stopped one plainly. A running native OCI app is stopped by Proximity
first (its grace period, then a kill: PVE's restart migration never kills, and an entrypoint
without a handler for its stop signal never ends), moved offline and started on the target; a
target older than PVE 9.1 is refused at submit. The room on the target is checked first. Every
step starts from where Proxmox says the container is, so the kind is idempotent: after a crash
(or a failed task) a run again finds it on the target and only finishes, or still on the source
and moves it. Afterwards the app's node is the target; its address is read again (DHCP may
give another one on the target's network) and a running app is health-checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ConflictError, NotFoundError, ProximityError, ValidationError
from proximity_sdk.models._requests import check_whole_seconds
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.operation import Operation
from proximity_sdk.operations._capacity import require_room
from proximity_sdk.operations._locks import wait_unlocked
from proximity_sdk.operations._stop import stop_policy
from proximity_sdk.operations.deploy.common import app_url
from proximity_sdk.operations.oci import drop_console, has_console_log, is_oci, oci_health, prepare_console_node
from proximity_sdk.operations.provision import Provisioner, app_project
from proximity_sdk.proxmox.containers import container_status, shutdown_container, start_container, wait_for_address
from proximity_sdk.proxmox.guests import container_node, migrate_container
from proximity_sdk.proxmox.oci import oci_support
from proximity_sdk.proxmox.validate import check_node_name
from proximity_sdk.store import Store

if TYPE_CHECKING:
    from proximity_sdk.engine.engine import OperationEngine
    from proximity_sdk.engine.handle import OperationHandle

__all__ = ["MigrateKind", "submit_migrate"]

_SETTLED = (AppStatus.RUNNING, AppStatus.STOPPED)


def submit_migrate(
    services: Services, engine: OperationEngine, app_id: str, *, node: str, shutdown_timeout: int
) -> OperationHandle:
    """Check the request and submit the migration; see ``Apps.migrate``."""
    store = services.store
    check_node_name(node)
    check_whole_seconds(shutdown_timeout, field="shutdown_timeout")
    app = store.apps.get(app_id)
    if app.status not in _SETTLED:
        raise ConflictError(
            f"app {app.hostname!r} is {app.status.value}: only a running or stopped app can be migrated",
            hint="Wait for its operation to end, or start or stop it first",
        )
    if app.vmid is None or app.node is None:
        raise ConflictError(f"app {app.hostname!r} has no container to migrate")
    if app.node == node:
        raise ValidationError(f"app {app.hostname!r} is on node {node} already", field="node")
    client = services.clients.get(app.host_id)
    if is_oci(app):
        # the container's entrypoint, env and host-managed network mean nothing to an older PVE
        support = oci_support(client, node)
        if not support.capable:
            raise ValidationError(
                f"app {app.hostname!r} is a native OCI container, which node {node} cannot run: {support.reason}",
                field="node",
                hint="Migrate it to a node with PVE >= 9.1",
            )
    memory = app.resources.memory_mb or store.settings.get().default_memory_mb
    require_room(
        client, store, host_id=app.host_id, node=node, memory_mb=memory, exclude_app_id=app.id
    )  # a first look (read only); the check step looks again
    return engine.submit(
        "migrate",
        app_id=app.id,
        host_id=app.host_id,
        vmid=app.vmid,
        owner_id=app.owner_id,
        params={"node": node, "shutdown_timeout": shutdown_timeout},
    )


class MigrateKind(OperationKind):
    name: ClassVar[str] = "migrate"
    steps: ClassVar[tuple[str, ...]] = ("check", "migrate", "address", "health")
    deadline_seconds: ClassVar[float] = 3 * 3600.0

    def __init__(self, services: Services) -> None:
        self.services = services

    def result(self, store: Store, operation: Operation) -> App:
        return store.apps.get(str(operation.app_id))

    def recover(self, ctx: OperationContext) -> dict[str, Any]:
        ctx.event("looking where the container is now, then finishing the migration")
        return self.run(ctx)

    def _app(self, ctx: OperationContext) -> tuple[App, int]:
        app = self.services.store.apps.get(str(ctx.operation.app_id))
        if app.vmid is None:
            raise NotFoundError(f"app {app.hostname!r} has no container")
        return app, app.vmid

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        store = self.services.store
        app, vmid = self._app(ctx)
        client = self.services.clients.get(app.host_id)
        target = str(ctx.params["node"])

        with ctx.step("check"):
            where = container_node(client, vmid)
            if where is None:
                raise NotFoundError(f"CT {vmid} of app {app.hostname!r} is not in the cluster any more")
            wait_unlocked(ctx, client, where, vmid)  # e.g. the migration a dead runner started
            where = container_node(client, vmid) or where
            status = container_status(client, where, vmid)
            if "was_running" not in ctx.params:  # a rerun after a crash keeps the first answer
                ctx.save_params(was_running=bool(status and status.running), source_node=where)
            if where != target:
                memory = app.resources.memory_mb or ctx.settings.default_memory_mb
                room = require_room(
                    client, store, host_id=app.host_id, node=target, memory_mb=memory, exclude_app_id=app.id
                )
                ctx.event(f"CT {vmid} is on node {where}; {room.describe()}")
                if has_console_log(app):  # its config names the log file: LXC opens it at the start there
                    prepare_console_node(ctx, self.services, app, target)
            store.apps.update(app.id, status=AppStatus.MIGRATING)

        was_running = bool(ctx.params["was_running"])
        with ctx.step("migrate"):
            if where == target:
                ctx.event(f"CT {vmid} is on node {target} already")
            else:
                restart = bool(status and status.running)
                if restart and is_oci(app):
                    # PVE's restart migration shuts down with lxc-stop --nokill (pve-container
                    # src/PVE/LXC/Migrate.pm prepare: vm_stop without kill): an entrypoint with no
                    # handler for its stop signal never ends and the migration fails. Stop it as
                    # apps.stop does (grace period, then a kill), move it offline, start it there.
                    grace = stop_policy(app).timeout
                    ctx.event(f"stopping CT {vmid} first (native OCI app: {grace}s to stop cleanly, then killed)")
                    with ctx.node_slot(app.host_id, where):
                        shutdown_container(client, where, vmid, timeout=grace, force_stop_after=True, emit=emitter(ctx))
                    restart = False
                mode = "restart migration (shut down, moved, started again)" if restart else "offline migration"
                ctx.event(f"moving CT {vmid} from node {where} to node {target}: {mode}")
                with ctx.node_slot(app.host_id, where):
                    migrate_container(
                        client,
                        where,
                        vmid,
                        target=target,
                        restart=restart,
                        shutdown_timeout=int(ctx.params.get("shutdown_timeout", 180)),
                        emit=emitter(ctx),
                    )
                if has_console_log(app):  # the log of the time on the old node stays with it no more
                    drop_console(ctx, self.services, app, where, vmid)
            if was_running and is_oci(app):  # moved offline above (or by a run before a crash)
                with ctx.node_slot(app.host_id, target):
                    if start_container(client, target, vmid, emit=emitter(ctx)) is not None:
                        ctx.event(f"CT {vmid} started on node {target}")
            store.apps.update(app.id, node=target)

        if not was_running:
            store.apps.update(app.id, status=AppStatus.STOPPED)
            return {"app_id": app.id, "node": target}

        with ctx.step("address"):
            static = app.address if ctx.settings.pool() is not None else None
            address = wait_for_address(client, target, vmid, emit=emitter(ctx), static_address=static)
            if address != app.address:
                ctx.event(f"the address changed from {app.address} to {address}")
            store.apps.update(app.id, address=address)

        main_port = app.config.get("main_port")
        with ctx.step("health"):
            if is_oci(app):
                oci_health(ctx, client, target, vmid)  # no shell in an application container
            elif main_port:
                Provisioner(
                    self.services.shells.get(app.host_id),
                    target,
                    vmid,
                    project=app_project(app),
                    emit=lambda line: ctx.event(line, level="debug"),
                ).wait_healthy(
                    int(main_port),
                    attempts=ctx.settings.health_timeout_seconds,
                    path=app.config.get("health_path"),
                )
            else:
                ctx.event("the app declares no port: nothing to check", level="warning")
        store.apps.update(app.id, status=AppStatus.RUNNING, address=address, url=app_url(address, main_port))
        return {"app_id": app.id, "node": target}

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        """The record follows Proxmox: the node the container is on now, and its real state."""
        try:
            app, vmid = self._app(ctx)
            client = self.services.clients.get(app.host_id)
            node = container_node(client, vmid)
            status = container_status(client, node, vmid) if node is not None else None
        except ProximityError:
            return
        if status is None:
            self.services.store.apps.update(app.id, status=AppStatus.VANISHED)
            return
        self.services.store.apps.update(
            app.id, node=node, status=AppStatus.RUNNING if status.running else AppStatus.STOPPED
        )
