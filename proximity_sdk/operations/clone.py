"""Clone: a running or stopped app copied into a new container, recorded as a new app.

A clone is a copy of the data, so it keeps what is baked into it: the compose project (its
name prefixes the named volumes) and the generated secrets (database passwords live in the
copied volumes). What must differ is set new: VMID, hostname, MAC and so address, and the
container's root password (``chpasswd`` through the node shell, the password on stdin).

A running source is cloned from a temporary snapshot (PVE clones a running container only from
one); the snapshot is journalled before it is taken and deleted right after the clone, or by
the rollback when anything fails. The new container is journalled before the clone request;
a failure at any step destroys it and gives back VMID and address, and the new app ends in
``error``. The source is never changed, and its VMID stays locked for the whole operation (the
operation row names it), so nothing else runs on it meanwhile.

Disks on local storage cannot be cloned to another node directly: the clone is made next to
the source and then moved (offline migration) to the node asked for.

A native OCI app (``config["runtime"] == "oci"``) is cloned through the Proxmox API only, like
every OCI operation (a host without ``ssh=`` clones it): the same steps without ``password`` and
``up`` (there is no root password to change and no compose project to start; the entrypoint runs
at start). PVE's clone copies the container's config as it is (``clone_vm`` in pve-container
``src/PVE/API2/LXC.pm``: entrypoint, ``env``, ``cmode``, the image's ``lxc.signal.halt``) with a
new MAC; the ``network`` step keeps ``host-managed=1`` on net0 (application containers have no
DHCP client). The environment holds the source's generated secrets, as the copied data does, so
the record keeps them too (encrypted, as for a compose clone). Health: the container runs per the
API.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, ClassVar

from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.handle import OperationHandle
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import AlreadyExistsError, ConflictError, NotFoundError, ProximityError, ValidationError
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.operation import Operation
from proximity_sdk.models.settings import Settings
from proximity_sdk.operations._capacity import place, require_room
from proximity_sdk.operations._locks import wait_unlocked
from proximity_sdk.operations.deploy.common import app_url, release_unjournalled
from proximity_sdk.operations.oci import drop_console, is_oci, keep_console, oci_health
from proximity_sdk.operations.provision import Provisioner, app_project
from proximity_sdk.proxmox._ctspec import check_hostname
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.containers import container_status, destroy_container, start_container, wait_for_address
from proximity_sdk.proxmox.guests import (
    clone_container,
    container_node,
    delete_snapshot,
    migrate_container,
    set_config,
    storage_is_shared,
    take_snapshot,
)
from proximity_sdk.proxmox.oci import oci_support
from proximity_sdk.proxmox.validate import check_node_name
from proximity_sdk.proxmox.vmids import VmidAllocator
from proximity_sdk.store import Store

if TYPE_CHECKING:
    from proximity_sdk.engine.engine import OperationEngine

__all__ = ["OCI_CLONE_STEPS", "CloneKind", "submit_clone"]

# Root password from stdin (never on a command line): busybox and shadow chpasswd both take
# `-c SHA512`, which also spares shadow's chpasswd a PAM stack; plain chpasswd is the fallback.
_CHPASSWD_SCRIPT = r"""set -eu
IFS= read -r password
if printf 'root:%s\n' "$password" | chpasswd -c SHA512 2>/dev/null; then
    echo "root password changed"
    exit 0
fi
printf 'root:%s\n' "$password" | chpasswd
echo "root password changed"
"""

_CLONE_STEPS = (
    "place",
    "reserve",
    "snapshot",
    "clone",
    "tidy",
    "move",
    "network",
    "start",
    "address",
    "password",
    "up",
    "health",
)
# a native OCI app: no root password to set and no compose project to start; its own console log
# (before the first start) instead
OCI_CLONE_STEPS = (
    "place",
    "reserve",
    "snapshot",
    "clone",
    "tidy",
    "move",
    "network",
    "console",
    "start",
    "address",
    "health",
)

_CLONE_ATTEMPTS = 3  # a VMID taken outside Proximity meanwhile: move on to the next one


def submit_clone(
    services: Services, engine: OperationEngine, app_id: str, *, hostname: str, node: str | None, owner_id: str | None
) -> OperationHandle:
    """Check the request, record the new app (``cloning``) and submit the clone; see ``Apps.clone``."""
    store = services.store
    check_hostname(hostname)
    if node is not None:
        check_node_name(node)
    source = store.apps.get(app_id)
    oci = is_oci(source)
    if source.status not in (AppStatus.RUNNING, AppStatus.STOPPED):
        raise ConflictError(
            f"app {source.hostname!r} is {source.status.value}: only a running or stopped app can be cloned",
            hint="Wait for its operation to end, or start or stop it first",
        )
    if source.vmid is None or source.node is None:
        raise ConflictError(f"app {source.hostname!r} has no container to clone")
    if any(a.hostname == hostname for a in store.apps.list(search=hostname, host_id=source.host_id, limit=1000)):
        raise AlreadyExistsError(
            f"an app named {hostname!r} already exists on this host", hint="Choose another hostname for the clone"
        )
    client = services.clients.get(source.host_id)
    if not oci:
        services.shells.get(source.host_id)  # the node shell sets the root password: fail now, not at step 9
    settings = store.settings.get()
    memory = source.resources.memory_mb or settings.default_memory_mb
    # a first look at the room (read only); the place step checks again under the placement lock
    require_room(client, store, host_id=source.host_id, node=node or source.node, memory_mb=memory)
    if oci and node is not None and node != source.node:
        # the copied config (entrypoint, env, host-managed) means nothing to an older PVE
        support = oci_support(client, node)
        if not support.capable:
            raise ValidationError(
                f"app {source.hostname!r} is a native OCI container, which node {node} cannot run: {support.reason}",
                field="node",
                hint="Clone it to a node with PVE >= 9.1, or leave the node out (the source's)",
            )
    config = {k: v for k, v in source.config.items() if k != "last_error"}
    config["cloned_from"] = {"app_id": source.id, "vmid": source.vmid}
    if not oci:
        config["compose_project"] = app_project(source)
    # the clone's record, its secrets and its operation: one write, as a deploy's
    with store.unit():
        app = store.apps.create(
            hostname=hostname,
            host_id=source.host_id,
            status=AppStatus.CLONING,
            catalog_id=source.catalog_id,
            catalog_version=source.catalog_version,
            owner_id=owner_id if owner_id is not None else source.owner_id,
            resources=source.resources,
            ports=source.ports,
            config=config,
        )
        store.apps.set_secrets(app.id, store.apps.secrets(source.id))
        return engine.submit(
            "clone",
            app_id=app.id,
            host_id=source.host_id,
            vmid=source.vmid,
            owner_id=app.owner_id,
            params={"source_app_id": source.id, "source_vmid": source.vmid, "node": node},
            steps=OCI_CLONE_STEPS if oci else None,
        )


class CloneKind(OperationKind):
    name: ClassVar[str] = "clone"
    # a compose app's steps; an OCI app's clone is submitted with OCI_CLONE_STEPS
    steps: ClassVar[tuple[str, ...]] = _CLONE_STEPS
    deadline_seconds: ClassVar[float] = 3 * 3600.0

    def __init__(self, services: Services) -> None:
        self.services = services

    def result(self, store: Store, operation: Operation) -> App:
        return store.apps.get(str(operation.result["app_id"]))

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        store = self.services.store
        app = store.apps.get(str(ctx.operation.app_id))
        settings = ctx.settings
        host_id = app.host_id
        client = self.services.clients.get(host_id)
        source_vmid = int(ctx.params["source_vmid"])

        with ctx.step("place"):
            source_node = container_node(client, source_vmid)
            if source_node is None:
                raise NotFoundError(f"the source container {source_vmid} is not in the cluster any more")
            status = container_status(client, source_node, source_vmid)
            running = bool(status and status.running)
            target = ctx.params.get("node") or source_node
            memory = app.resources.memory_mb or settings.default_memory_mb
            decision = place(
                client,
                store,
                host_id=host_id,
                app_id=app.id,
                memory_mb=memory,
                overcommit=settings.memory_overcommit,
                default_memory_mb=settings.default_memory_mb,
                node=target,
                load=ctx,
            )
            ctx.event(
                f"cloning CT {source_vmid} ({'running' if running else 'stopped'}) on node {source_node} "
                f"to node {target}: {decision.reason}"
            )
            ctx.save_params(node=target, source_node=source_node, source_running=running)

        with ctx.step("reserve"):
            allocator = VmidAllocator(
                client, store.reservations, host_id=host_id, vmid_min=settings.vmid_min, vmid_max=settings.vmid_max
            )
            vmid = allocator.reserve(operation_id=ctx.id, app_id=app.id)
            ctx.record("vmid", host_id=host_id, vmid=vmid)
            store.apps.update(app.id, vmid=vmid)
            address = self._reserve_address(ctx, app, settings)
            ctx.event(f"VMID {vmid}" + (f" and address {address}" if address else "") + " reserved")

        snapname: str | None = None
        with ctx.step("snapshot"):
            if running:
                snapname = f"px-clone-{ctx.id.replace('-', '')[:24]}"
                # journalled first: a crash during the snapshot task must still find it
                ctx.record("snapshot", host_id=host_id, node=source_node, vmid=source_vmid, name=snapname)
                with ctx.node_slot(host_id, source_node):
                    take_snapshot(
                        client,
                        source_node,
                        source_vmid,
                        snapname,
                        emit=emitter(ctx),
                        description=f"Proximity: temporary, for the clone {app.hostname}",
                    )
                ctx.event(f"snapshot {snapname} of CT {source_vmid} taken")
            else:
                ctx.event("the source is stopped: cloned as it is, no snapshot needed")

        with ctx.step("clone"):
            direct = target != source_node and self._shared_rootfs(client, source_node, source_vmid)
            vmid = self._clone(
                ctx, client, allocator, app, source_node, source_vmid, vmid, snapname, target if direct else None
            )
            node = target if direct else source_node

        with ctx.step("tidy"):
            if snapname is not None:
                with ctx.node_slot(host_id, source_node):
                    delete_snapshot(client, source_node, source_vmid, snapname, emit=emitter(ctx))
                ctx.forget("snapshot", name=snapname)
                ctx.event(f"snapshot {snapname} deleted")
            else:
                ctx.event("no snapshot to delete")

        with ctx.step("move"):
            if node != target:
                ctx.event(f"the disks are on local storage: moving CT {vmid} from node {node} to node {target}")
                with ctx.node_slot(host_id, node):
                    migrate_container(client, node, vmid, target=target, restart=False, emit=emitter(ctx))
                node = target
            else:
                ctx.event(f"CT {vmid} is on node {node} already")

        oci = is_oci(app)
        with ctx.step("network"):
            if address is not None:
                set_config(
                    client, node, vmid, net0=self._static_net0(client, node, vmid, address, settings, host_managed=oci)
                )
                ctx.event(f"net0 set to the static address {address}")
            else:
                if oci:
                    self._host_managed_dhcp(ctx, client, node, vmid)
                ctx.event("DHCP: the clone has its own MAC address, so it gets its own lease")
            if oci:
                ctx.event(
                    "entrypoint and environment copied by Proxmox from the source "
                    "(the source's generated secrets, as in its data); network managed by the host"
                )

        if oci:
            with ctx.step("console"):
                # PVE's clone copied the source's raw `lxc.console.logfile`: the clone gets its own file
                console = keep_console(ctx, self.services, app, node, vmid)
                store.apps.update(app.id, config={**store.apps.get(app.id).config, **console})

        with ctx.step("start"), ctx.node_slot(host_id, node):
            start_container(client, node, vmid, emit=emitter(ctx))

        with ctx.step("address"):
            try:
                address = wait_for_address(client, node, vmid, emit=emitter(ctx), static_address=address)
            except ProximityError:
                if oci:
                    oci_health(ctx, client, node, vmid)  # an entrypoint that exited says so, not "no address"
                raise
            store.apps.update(app.id, address=address)
            ctx.event(f"address {address}")

        if oci:
            with ctx.step("health"):
                oci_health(ctx, client, node, vmid)
            return self._finish(ctx, app, settings, address=address, vmid=vmid, node=node)

        shell = self.services.shells.get(host_id)
        with ctx.step("password"):
            password = secrets.token_urlsafe(24)
            store.apps.update(app.id, root_password=password)  # kept before it is set: never lost
            shell.pct_exec(
                node,
                vmid,
                _CHPASSWD_SCRIPT,
                input=f"{password}\n".encode(),
                timeout=60.0,
                on_output=lambda _stream, line: ctx.event(line.rstrip(), level="debug"),
            )
            ctx.event("a new root password is set (the source's is not shared)")

        provisioner = Provisioner(
            shell, node, vmid, project=app_project(app), emit=lambda line: ctx.event(line, level="debug")
        )
        with ctx.step("up"):
            provisioner.up()

        main_port = app.config.get("main_port")
        with ctx.step("health"):
            if main_port:
                provisioner.wait_healthy(
                    int(main_port), attempts=settings.health_timeout_seconds, path=app.config.get("health_path")
                )
            else:
                ctx.event("the app declares no port: nothing to check", level="warning")

        return self._finish(ctx, app, settings, address=address, vmid=vmid, node=node)

    def _finish(
        self, ctx: OperationContext, app: App, settings: Settings, *, address: str, vmid: int, node: str
    ) -> dict[str, Any]:
        """The new app's record: running at its own address; VMID and address handed over to it."""
        store = self.services.store
        main_port = app.config.get("main_port")
        # the ports came with the record (the source's): same services on the clone's own address
        store.apps.update(
            app.id, status=AppStatus.RUNNING, address=address, url=app_url(address, main_port), vmid=vmid, node=node
        )
        store.reservations.attach_vmid(app.host_id, vmid, app_id=app.id)
        if settings.pool() is not None and address:
            store.reservations.attach_address(address, app_id=app.id)
        ctx.forget_kinds("container", "vmid", "address", "console_log")  # handed over to the app's record
        return {"app_id": app.id, "source_app_id": ctx.params.get("source_app_id")}

    # steps' parts ---------------------------------------------------------------------------------

    def _reserve_address(self, ctx: OperationContext, app: App, settings: Settings) -> str | None:
        pool = settings.pool()
        if pool is None:
            return None
        address = self.services.store.reservations.reserve_address(
            pool, operation_id=ctx.id, app_id=app.id, exclude=[settings.gateway or ""]
        )
        ctx.record("address", address=address)
        return address

    @staticmethod
    def _shared_rootfs(client: ProxmoxClient, node: str, vmid: int) -> bool:
        rootfs = client.lxc_config(node, vmid).mounts.get("rootfs", "")
        storage = rootfs.split(",", 1)[0].split(":", 1)[0]
        return bool(storage) and storage_is_shared(client, node, storage)

    def _clone(
        self,
        ctx: OperationContext,
        client: ProxmoxClient,
        allocator: VmidAllocator,
        app: App,
        node: str,
        source_vmid: int,
        vmid: int,
        snapname: str | None,
        target: str | None,
    ) -> int:
        """Clone into ``vmid``; a VMID taken outside Proximity meanwhile moves on to the next one."""
        host_id = app.host_id
        for attempt in range(1, _CLONE_ATTEMPTS + 1):
            # journalled before the request: a crash during the clone task must still find it
            ctx.record("container", host_id=host_id, node=target or node, vmid=vmid)
            try:
                with ctx.node_slot(host_id, node):
                    clone_container(
                        client,
                        node,
                        source_vmid,
                        newid=vmid,
                        hostname=app.hostname,
                        snapname=snapname,
                        target=target,
                        emit=emitter(ctx),
                        description=f"Proximity app {app.id} ({app.catalog_id}), a clone of CT {source_vmid}",
                    )
                return vmid
            except AlreadyExistsError:
                ctx.forget("container", vmid=vmid)  # that container is someone else's
                if attempt == _CLONE_ATTEMPTS:
                    raise
                new = allocator.reserve(operation_id=ctx.id, app_id=app.id, after=vmid)
                ctx.record("vmid", host_id=host_id, vmid=new)
                ctx.event(f"VMID {vmid} was taken outside Proximity meanwhile; using {new}", level="warning")
                allocator.release(vmid)
                ctx.forget("vmid", vmid=vmid)
                self.services.store.apps.update(app.id, vmid=new)
                vmid = new
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _static_net0(
        client: ProxmoxClient, node: str, vmid: int, address: str, settings: Settings, *, host_managed: bool
    ) -> str:
        """The clone's net0 with the reserved address (and the gateway), everything else kept;
        ``host_managed``: an application container, whose interface the host configures."""
        pool = settings.pool()
        assert pool is not None
        options = client.lxc_config(node, vmid).net_options("net0")
        options.pop("ip", None)
        options.pop("gw", None)
        options["ip"] = f"{address}/{pool.prefix_length}"
        if settings.gateway:
            options["gw"] = settings.gateway
        if host_managed:
            options["host-managed"] = "1"
        return ",".join(f"{k}={v}" for k, v in options.items())

    @staticmethod
    def _host_managed_dhcp(ctx: OperationContext, client: ProxmoxClient, node: str, vmid: int) -> None:
        """An OCI clone on DHCP: net0 as PVE copied it (new MAC), ``host-managed=1`` made sure of
        (the deploy sets it; an application container has no DHCP client of its own)."""
        options = client.lxc_config(node, vmid).net_options("net0")
        if options.get("host-managed") == "1":
            return
        options["host-managed"] = "1"
        set_config(client, node, vmid, net0=",".join(f"{k}={v}" for k, v in options.items()))
        ctx.event("net0 of the clone set host-managed (the source's was not)", level="warning")

    # failure --------------------------------------------------------------------------------------

    def rollback(self, ctx: OperationContext) -> None:
        """Newest first: the clone destroyed (wherever it is now), the snapshot deleted, VMID and
        address given back. Each entry is forgotten once undone, so a second run resumes."""
        store = self.services.store
        app = store.apps.get(str(ctx.operation.app_id))
        for effect in reversed(ctx.effects):
            kind = effect["kind"]
            if kind == "container":
                client = self.services.clients.get(effect["host_id"])
                vmid = int(effect["vmid"])
                node = container_node(client, vmid)
                if node is not None:
                    wait_unlocked(ctx, client, node, vmid)
                    destroy_container(client, node, vmid, emit=emitter(ctx), expect_hostname=app.hostname)
                    ctx.event(f"container {vmid} destroyed")
                ctx.forget("container", vmid=effect["vmid"])
            elif kind == "console_log":
                # the clone's own log file (its container is gone): a node shell that fails leaves it
                drop_console(ctx, self.services, app, str(effect["node"]), int(effect["vmid"]))
                ctx.forget("console_log", vmid=effect["vmid"])
            elif kind == "snapshot":
                client = self.services.clients.get(effect["host_id"])
                vmid = int(effect["vmid"])
                node = container_node(client, vmid) or effect["node"]
                wait_unlocked(ctx, client, node, vmid)
                delete_snapshot(client, node, vmid, str(effect["name"]), emit=emitter(ctx))
                ctx.event(f"snapshot {effect['name']} of CT {vmid} deleted")
                ctx.forget("snapshot", name=effect["name"])
            elif kind == "vmid":
                store.reservations.release_vmid(effect["host_id"], int(effect["vmid"]))
                ctx.forget("vmid", vmid=effect["vmid"])
            elif kind == "address":
                store.reservations.release_address(effect["address"])
                ctx.forget("address", address=effect["address"])

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        """The new app stays, in ``error``, with the failed step and the Proxmox log tail."""
        store = self.services.store
        release_unjournalled(ctx, store)  # a reservation made just before a crash, never journalled
        try:
            app = store.apps.get(str(ctx.operation.app_id))
        except ProximityError:
            return
        failure = {
            "step": ctx.current_step,
            "message": str(error),
            "log_tail": list(getattr(error, "log_tail", None) or ctx.log_tail)[-20:],
        }
        left = any(e["kind"] == "container" for e in ctx.effects)
        store.apps.update(
            app.id,
            status=AppStatus.ERROR,
            config={**app.config, "last_error": failure},
            vmid=app.vmid if left else None,
            address=app.address if left else None,
            url=None,
        )
