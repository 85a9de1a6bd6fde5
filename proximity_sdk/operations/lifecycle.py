"""Start, stop, restart and delete an app. Each step is idempotent, so a takeover simply runs it again."""

from __future__ import annotations

from typing import Any, ClassVar

from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import NotFoundError, ProximityError
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.operation import Operation
from proximity_sdk.operations._stop import shutdown_seconds, stop_policy
from proximity_sdk.operations.deploy.common import app_url
from proximity_sdk.operations.oci import drop_console, has_console_log, is_oci, oci_health
from proximity_sdk.operations.provision import Provisioner, app_project
from proximity_sdk.proxmox.containers import (
    container_status,
    destroy_container,
    shutdown_container,
    start_container,
    wait_for_address,
)
from proximity_sdk.proxmox.guests import container_node
from proximity_sdk.store import Store
from proximity_sdk.store.maintenance_repo import drop_retired, retired_of, vmid_owner

__all__ = ["DeleteKind", "RestartKind", "StartKind", "StopKind"]


class _AppKind(OperationKind):
    """Shared by the kinds that act on one existing app's container."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def result(self, store: Store, operation: Operation) -> App | None:
        return store.apps.get(str(operation.app_id))

    def recover(self, ctx: OperationContext) -> dict[str, Any]:
        ctx.event("running the remaining steps again (they are idempotent)")
        return self.run(ctx)

    def _app(self, ctx: OperationContext) -> App:
        app = self.services.store.apps.get(str(ctx.operation.app_id))
        if app.node is None or app.vmid is None:
            raise NotFoundError(f"app {app.hostname!r} has no container", hint="Delete the app record")
        return app

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        """Show the container's real state: the app is running or stopped as Proxmox says."""
        try:
            app = self._app(ctx)
            assert app.node is not None and app.vmid is not None
            status = container_status(self.services.clients.get(app.host_id), app.node, app.vmid)
        except ProximityError:
            return
        real = AppStatus.VANISHED if status is None else AppStatus.RUNNING if status.running else AppStatus.STOPPED
        self.services.store.apps.patch(app.id, status=real)

    def _start(self, ctx: OperationContext, app: App) -> None:
        assert app.node is not None and app.vmid is not None
        client = self.services.clients.get(app.host_id)
        with ctx.step("start"), ctx.node_slot(app.host_id, app.node):
            if start_container(client, app.node, app.vmid, emit=emitter(ctx)) is None:
                ctx.last_event("already running")
        with ctx.step("address"):
            static = app.address if ctx.settings.pool() is not None else None
            address = wait_for_address(client, app.node, app.vmid, emit=emitter(ctx), static_address=static)
        main_port = app.config.get("main_port")
        with ctx.step("health"):
            if is_oci(app):
                oci_health(ctx, client, app.node, app.vmid)  # no shell in an application container
            elif main_port:
                Provisioner(
                    self.services.shells.get(app.host_id),
                    app.node,
                    app.vmid,
                    project=app_project(app),
                    emit=lambda line: ctx.event(line, level="debug"),
                ).wait_healthy(
                    int(main_port),
                    attempts=ctx.settings.health_timeout_seconds,
                    path=app.config.get("health_path"),
                )
        url = app_url(address, main_port)
        ctx.at_success(
            lambda: self.services.store.apps.patch(app.id, status=AppStatus.RUNNING, address=address, url=url)
        )

    def _stop(self, ctx: OperationContext, app: App, *, timeout: int, force: bool, last: bool) -> None:
        """``last``: the operation ends with the stop (the record says ``stopped`` as it finishes)."""
        assert app.node is not None and app.vmid is not None
        client = self.services.clients.get(app.host_id)
        with ctx.step("stop"), ctx.node_slot(app.host_id, app.node):
            then = "then killed" if force else "not killed if it does not stop"
            ctx.event(f"shutting CT {app.vmid} down: {timeout}s to stop cleanly, {then}", level="debug")
            if (
                shutdown_container(
                    client, app.node, app.vmid, timeout=timeout, force_stop_after=force, emit=emitter(ctx)
                )
                is None
            ):
                ctx.last_event("already stopped")
        if last:
            ctx.at_success(lambda: self.services.store.apps.patch(app.id, status=AppStatus.STOPPED))
        else:
            self.services.store.apps.patch(app.id, status=AppStatus.STOPPED)


class StartKind(_AppKind):
    name: ClassVar[str] = "start"
    steps: ClassVar[tuple[str, ...]] = ("start", "address", "health")

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        self._start(ctx, self._app(ctx))
        return {"app_id": ctx.operation.app_id}


class StopKind(_AppKind):
    name: ClassVar[str] = "stop"
    steps: ClassVar[tuple[str, ...]] = ("stop",)

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        app = self._app(ctx)
        # absent or None: the app's own default (a compose app: 60 s, no kill; an OCI app: its grace
        # period, then a kill, as docker stop); operations submitted before that always carry both
        force, timeout = ctx.params.get("force"), ctx.params.get("timeout")
        policy = stop_policy(
            app, force=None if force is None else bool(force), timeout=None if timeout is None else int(timeout)
        )
        self._stop(ctx, app, timeout=policy.timeout, force=policy.force, last=True)
        return {"app_id": ctx.operation.app_id}


class RestartKind(_AppKind):
    name: ClassVar[str] = "restart"
    steps: ClassVar[tuple[str, ...]] = ("stop", "start", "address", "health")

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        app = self._app(ctx)
        self._stop(
            ctx, app, timeout=int(ctx.params.get("timeout") or shutdown_seconds(app, 60)), force=True, last=False
        )
        self._start(ctx, app)
        return {"app_id": ctx.operation.app_id}


class DeleteKind(_AppKind):
    """Stop and destroy the container (purge) and the containers a restore retired (kept for a
    grace period to go back to: with the app gone there is nothing to go back to, and once the
    record is gone nothing would remember them), release the VMIDs and address, forget the record.
    ``destroy=False`` only forgets the record and leaves the containers (for adopted apps)."""

    name: ClassVar[str] = "delete"
    steps: ClassVar[tuple[str, ...]] = ("destroy", "release")

    def result(self, store: Store, operation: Operation) -> None:
        return None

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        store = self.services.store
        app = store.apps.get(str(ctx.operation.app_id))
        store.apps.patch(app.id, status=AppStatus.REMOVING)
        with ctx.step("destroy"):
            if not ctx.params.get("destroy", True):
                ctx.event(f"keeping container {app.vmid} on node {app.node}; only the record is removed")
            elif app.node is None or app.vmid is None:
                ctx.event("the app has no container")
            else:
                with ctx.node_slot(app.host_id, app.node):
                    destroy_container(
                        self.services.clients.get(app.host_id),
                        app.node,
                        app.vmid,
                        emit=emitter(ctx),
                        expect_hostname=app.hostname,
                    )
                if has_console_log(app):
                    drop_console(ctx, self.services, app, app.node, app.vmid)
            if ctx.params.get("destroy", True):
                self._destroy_retired(ctx, app)
        with ctx.step("release"), ctx.unit():
            vmids, addresses = store.reservations.release_for_app(app.id)
            released = [f"VMID {v}" for v in vmids] + list(addresses)
            ctx.event("released " + (", ".join(released) if released else "nothing"))
            store.apps.delete(app.id)
        return {"app_id": app.id, "deleted": True}

    def _destroy_retired(self, ctx: OperationContext, app: App) -> None:
        store = self.services.store
        for entry in retired_of(app.config):
            if vmid_owner(store, entry.host_id, entry.vmid) not in (None, app.id):
                drop_retired(store, app.id, host_id=entry.host_id, vmid=entry.vmid)
                continue  # the VMID is another app's container now
            client = self.services.clients.get(entry.host_id)
            node = container_node(client, entry.vmid)
            if node is not None:
                with ctx.node_slot(entry.host_id, node):
                    destroy_container(client, node, entry.vmid, emit=emitter(ctx), expect_hostname=entry.hostname)
                ctx.event(f"retired container {entry.vmid} destroyed")
            drop_retired(store, app.id, host_id=entry.host_id, vmid=entry.vmid)

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        try:
            self.services.store.apps.patch(str(ctx.operation.app_id), status=AppStatus.ERROR)
        except ProximityError:
            return
