"""Deploy: a catalog app into a new LXC container, from node choice to a healthy compose project.

The app record exists (status ``deploying``) before the operation starts; every external effect
is journalled before or the moment it happens (VMID and address reservations, the container),
so a failure here, or a takeover after a crash, destroys exactly what this deploy made.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from proximity_sdk.catalog.render import RenderedProject, env_file_text
from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ProximityError, ValidationError
from proximity_sdk.models.app import App, AppStatus, Port
from proximity_sdk.models.catalog import CatalogApp
from proximity_sdk.models.operation import Operation
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.settings import Settings
from proximity_sdk.operations._capacity import in_flight, placing
from proximity_sdk.operations._journal import follow_vmid_change
from proximity_sdk.operations.oci import COMPOSE_STEPS, choose_runtime, deploy_oci
from proximity_sdk.operations.provision import Provisioner, app_project
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.console_log import read_console, remove_console
from proximity_sdk.proxmox.containers import (
    container_status,
    destroy_container,
    spec_from_settings,
    start_container,
    wait_for_address,
)
from proximity_sdk.proxmox.placement import pick_node
from proximity_sdk.proxmox.templates import ensure_template
from proximity_sdk.proxmox.vmids import VmidAllocator, create_with_vmid_retry
from proximity_sdk.store import Store

__all__ = ["DeployKind", "app_url", "deploy_config", "release_effects", "release_unjournalled",
           "requested_resources"]

def app_url(address: str | None, port: int | None) -> str | None:
    if not address or not port:
        return None
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}"


# the console lines of a failed OCI container a rollback keeps in the events
_CONSOLE_TAIL = 20

# How long a rollback waits for the Proxmox tasks still working on the container (a create or
# start whose requester died goes on in Proxmox), and how often it looks.
TASK_WAIT_SECONDS = 900.0
_TASK_POLL = 0.5


def _busy(client: ProxmoxClient, node: str, vmid: int) -> str | None:
    """What still works on the container: its lock or a running task; None when idle or gone."""
    status = container_status(client, node, vmid)
    if status is None:
        return None
    if status.lock:
        return f"locked ({status.lock})"
    tasks = client.get(f"/nodes/{node}/tasks", vmid=vmid, source="active") or []
    running = [str(t.get("type")) for t in tasks if isinstance(t, dict) and not t.get("endtime")
               and not t.get("status")]  # a finished task has its exit status and end time
    return f"task {', '.join(running)} running" if running else None


def _wait_idle(ctx: OperationContext, client: ProxmoxClient, node: str, vmid: int) -> None:
    """Until no Proxmox task works on the container. A process that died during the create or the
    start left that task running: destroying now would be refused (a create holds ``lock: create``
    and the container has no name yet) or lose the race (a start finishing after the running-check
    fails the destroy). A task that outlives the wait is left to ``destroy_container`` to report."""
    deadline = time.monotonic() + TASK_WAIT_SECONDS
    said = False
    while time.monotonic() < deadline:
        busy = _busy(client, node, vmid)
        if busy is None:
            return
        if not said:
            ctx.event(f"CT {vmid} is busy ({busy}): waiting for Proxmox to finish before destroying it")
            said = True
        ctx.checkpoint()  # a takeover still stops this runner while it waits
        time.sleep(_TASK_POLL)


def release_effects(ctx: OperationContext, services: Services, *, expect_hostname: str | None) -> None:
    """Undo a deploy-like operation's journal, newest first: destroy the container it created,
    give back its VMID and address. Each entry is dropped once undone, so a rerun resumes."""
    for effect in reversed(ctx.effects):
        kind = effect["kind"]
        if kind == "container":
            client = services.clients.get(effect["host_id"])
            _wait_idle(ctx, client, effect["node"], int(effect["vmid"]))
            destroy_container(client, effect["node"], int(effect["vmid"]), emit=emitter(ctx),
                              expect_hostname=expect_hostname)
            ctx.event(f"container {effect['vmid']} destroyed")
            ctx.forget("container", vmid=effect["vmid"])
        elif kind == "console_log":
            # what the container printed tells why it failed: its last lines go into the events
            # before the file goes (left behind if the node shell fails)
            with contextlib.suppress(ProximityError):
                shell = services.shells.get(effect["host_id"])
                text = read_console(shell, effect["node"], int(effect["vmid"]), tail=_CONSOLE_TAIL)
                for line in (text or "").splitlines():
                    ctx.event(f"CT {effect['vmid']} console: {line.rstrip(chr(13))[:500]}", level="warning")
                remove_console(shell, effect["node"], int(effect["vmid"]))
            ctx.forget("console_log", vmid=effect["vmid"])
        elif kind == "vmid":
            services.store.reservations.release_vmid(effect["host_id"], int(effect["vmid"]))
            ctx.forget("vmid", vmid=effect["vmid"])
        elif kind == "address":
            services.store.reservations.release_address(effect["address"])
            ctx.forget("address", address=effect["address"])


def release_unjournalled(ctx: OperationContext, store: Store) -> None:
    """Give back what the failed operation reserved but never journalled: a process that died
    between a reservation's commit and its ``ctx.record`` left a row only the operation id names.
    What the journal still holds (a rollback left it unfinished) stays for the janitor."""
    kept_vmids = {(str(e["host_id"]), int(e["vmid"])) for e in ctx.effects if e["kind"] in ("vmid", "container")}
    kept_addresses = {str(e["address"]) for e in ctx.effects if e["kind"] == "address"}
    for vmid in store.reservations.vmid_reservations(operation_id=ctx.id):
        if (vmid.host_id, vmid.vmid) not in kept_vmids:
            store.reservations.release_vmid(vmid.host_id, vmid.vmid)
    for address in store.reservations.address_reservations(operation_id=ctx.id):
        if address.address not in kept_addresses:
            store.reservations.release_address(address.address)


class DeployKind(OperationKind):
    name: ClassVar[str] = "deploy"
    # the compose path; an OCI or "auto" deploy is submitted with its own steps (operations/oci.py)
    steps: ClassVar[tuple[str, ...]] = COMPOSE_STEPS
    deadline_seconds: ClassVar[float] = 3 * 3600.0

    def __init__(self, services: Services) -> None:
        self.services = services

    def result(self, store: Store, operation: Operation) -> App:
        return store.apps.get(str(operation.result["app_id"]))

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        store = self.services.store
        app = store.apps.get(str(ctx.operation.app_id))
        settings = store.settings.get()
        host_id = app.host_id
        client = self.services.clients.get(host_id)
        config = app.config
        resources = app.resources
        memory = resources.memory_mb or settings.default_memory_mb

        with ctx.step("place"):
            with placing(host_id):
                decision = pick_node(client, memory_mb=memory, overcommit=settings.memory_overcommit,
                                     node=ctx.params.get("node"),
                                     pending=lambda present: in_flight(store, host_id, present,
                                                                       exclude_app_id=app.id))
                node = decision.node
                ctx.event(f"node {node} chosen: {decision.reason}")
                ctx.save_params(node=node)
                store.apps.update(app.id, node=node)  # inside the lock: the next placement counts it
            # operations recorded before strategies existed were compose deploys
            strategy = str(ctx.params.get("strategy") or "compose")
            runtime = choose_runtime(ctx, self.services, app, client, node, strategy)
            ctx.save_params(runtime=runtime)
            app = store.apps.update(app.id, config={**config, "runtime": runtime})
            config = app.config

        with ctx.step("reserve"):
            allocator = VmidAllocator(client, store.reservations, host_id=host_id,
                                      vmid_min=settings.vmid_min, vmid_max=settings.vmid_max)
            vmid = allocator.reserve(operation_id=ctx.id, app_id=app.id)
            ctx.record("vmid", host_id=host_id, vmid=vmid)
            store.apps.update(app.id, vmid=vmid)
            address: str | None = None
            pool = settings.pool()
            if pool is not None:
                address = store.reservations.reserve_address(pool, operation_id=ctx.id, app_id=app.id,
                                                             exclude=[settings.gateway or ""])
                ctx.record("address", address=address)
                ctx.event(f"VMID {vmid} and address {address} reserved")
            else:
                ctx.event(f"VMID {vmid} reserved")

        if runtime == "oci":
            return deploy_oci(ctx, self.services, app, client=client, settings=settings, allocator=allocator, node=node,
                              vmid=vmid, address=address)

        with ctx.step("template"):
            template = config.get("os_template") or settings.default_template
            volid = ensure_template(client, node, storage=settings.template_storage, template=template,
                                    emit=emitter(ctx))
            ctx.event(f"template {volid}")

        with ctx.step("create"):
            password = secrets.token_urlsafe(24)
            store.apps.update(app.id, root_password=password)
            spec = spec_from_settings(settings, vmid=vmid, hostname=app.hostname, ostemplate=volid,
                                      resources=resources, address=address, password=password,
                                      description=f"Proximity app {app.id} ({app.catalog_id})")

            moved = follow_vmid_change(ctx, store, app_id=app.id, host_id=host_id, node=node)
            # journalled before the request: a crash during the create task must still find it
            ctx.record("container", host_id=host_id, node=node, vmid=vmid)
            with ctx.node_slot(host_id, node):
                spec, _ = create_with_vmid_retry(client, node, spec, allocator=allocator, operation_id=ctx.id,
                                                 app_id=app.id, emit=emitter(ctx), on_vmid_change=moved)
            vmid = spec.vmid

        with ctx.step("start"), ctx.node_slot(host_id, node):
            start_container(client, node, vmid, emit=emitter(ctx))

        with ctx.step("address"):
            address = wait_for_address(client, node, vmid, emit=emitter(ctx), static_address=address)
            store.apps.update(app.id, address=address)
            ctx.event(f"address {address}")

        provisioner = Provisioner(self.services.shells.get(host_id), node, vmid, project=app_project(app),
                                  emit=lambda line: ctx.event(line, level="debug"))
        with ctx.step("docker"):
            provisioner.install_docker(registries=store.hosts.registries(host_id))

        with ctx.step("project"):
            compose_text = str(config["compose_text"])
            env = {name: value.get_secret_value() for name, value in store.apps.secrets(app.id).items()}
            provisioner.write_project(compose_text, env_file_text(env))
            ctx.event(f"compose project written to {provisioner.directory} ({len(env)} secrets in .env)")

        with ctx.step("up"):
            provisioner.up()
            digests = provisioner.image_digests()  # what `px.apps.updates()` compares with later

        main_port = config.get("main_port")
        with ctx.step("health"):
            if main_port:
                provisioner.wait_healthy(int(main_port), attempts=settings.health_timeout_seconds,
                                         path=config.get("health_path"))
            else:
                ctx.event("the app declares no port: nothing to check", level="warning")

        ports = tuple(Port.model_validate(p) for p in config.get("ports", ()))
        store.apps.update(app.id, status=AppStatus.RUNNING, address=address, url=app_url(address, main_port),
                          ports=ports, vmid=vmid, node=node, config={**config, "images": digests})
        store.reservations.attach_vmid(host_id, vmid, app_id=app.id)
        if settings.pool() is not None and address:
            store.reservations.attach_address(address, app_id=app.id)
        for kind in ("container", "vmid", "address"):
            ctx.forget(kind)  # handed over to the app's record
        return {"app_id": app.id}

    def rollback(self, ctx: OperationContext) -> None:
        app = self.services.store.apps.get(str(ctx.operation.app_id))
        release_effects(ctx, self.services, expect_hostname=app.hostname)

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        store = self.services.store
        release_unjournalled(ctx, store)
        try:
            app = store.apps.get(str(ctx.operation.app_id))
        except ProximityError:
            return
        failure = {"step": ctx.current_step, "message": str(error),
                   "log_tail": list(getattr(error, "log_tail", None) or ctx.log_tail)[-20:]}
        left = ctx.effects
        store.apps.update(app.id, status=AppStatus.ERROR, config={**app.config, "last_error": failure},
                          vmid=app.vmid if left else None, address=None if not left else app.address)


def deploy_config(catalog_app: CatalogApp, rendered: RenderedProject,
                  environment: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the app record keeps of its catalog entry and rendering (no secrets: those are in .env).
    ``environment``: the settings given at deploy; those that are not secrets are kept, so that an
    update renders the new version with them."""
    ports = [Port(service=rendered.main_service, port=p).model_dump()
             for p in dict.fromkeys(catalog_app.ports or ()) if isinstance(p, int) and 0 < p < 65536]
    return {
        "compose_text": rendered.compose_text(),
        "main_service": rendered.main_service,
        "main_port": rendered.main_port,
        "health_path": catalog_app.health_path,
        "os_template": catalog_app.os_template,
        "ports": ports,
        "environment": {k: v for k, v in (environment or {}).items() if k not in rendered.env},
    }


def requested_resources(catalog_app: CatalogApp, resources: Resources | None, settings: Settings) -> Resources:
    """The container's resources: what was asked (never below the catalog minimum), else the settings'
    default raised to the catalog minimum."""
    given = resources or Resources()
    minimum = {"cores": catalog_app.min_cpu, "memory_mb": catalog_app.min_memory, "disk_gb": catalog_app.min_disk}
    for field, floor in minimum.items():
        value = getattr(given, field)
        if value is not None and floor is not None and value < floor:
            raise ValidationError(f"{catalog_app.id} needs at least {floor} for {field}, {value} was asked",
                                  field=f"resources.{field}")
    return Resources(
        cores=given.cores or max(settings.default_cores, catalog_app.min_cpu),
        memory_mb=given.memory_mb or max(settings.default_memory_mb, catalog_app.min_memory),
        swap_mb=given.swap_mb if given.swap_mb is not None else settings.default_swap_mb,
        disk_gb=given.disk_gb or max(settings.default_disk_gb, catalog_app.min_disk or 1),
    )
