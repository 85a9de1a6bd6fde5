"""Discover containers no app manages, and adopt one as an app, never touching the container.

Discovery is one ``/cluster/resources`` call per host. Adoption is checked in the façade
(:func:`prepare_adoption`: the container exists, is no template, unlocked and unmanaged; the
hostname is valid and free on the host; the catalog entry exists), which records the app
(``adopting``, ``adopted=True``) and reserves its VMID for it, so two adoptions of one container
cannot both win and no deploy can take that VMID. The ``adopt`` operation then reads the
container's config, detects its listening ports through the node shell when it runs, and sets
the app ``running`` or ``stopped``. Nothing is written to Proxmox or into the container.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, ClassVar

from proximity_sdk.engine.context import OperationContext
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import (
    AlreadyExistsError,
    CommandFailedError,
    ConflictError,
    NotFoundError,
    ProximityError,
    ValidationError,
)
from proximity_sdk.models.app import App, AppStatus, Port
from proximity_sdk.models.discovered import DiscoveredContainer
from proximity_sdk.models.host import Host
from proximity_sdk.models.operation import Operation
from proximity_sdk.models.proxmox import ClusterResource, LxcConfig
from proximity_sdk.models.resources import Resources
from proximity_sdk.operations.deploy.common import app_url
from proximity_sdk.operations.reconcile import containers_by_vmid
from proximity_sdk.proxmox._ctspec import check_hostname
from proximity_sdk.proxmox.containers import container_status
from proximity_sdk.proxmox.validate import check_node_name, check_vmid
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow

__all__ = ["AdoptKind", "discover_containers", "parse_listening", "prepare_adoption"]

_MIB = 1024**2
_GIB = 1024**3
_SIZE = re.compile(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)")
_SIZE_UNIT = {"": 1, "K": 1024, "M": _MIB, "G": _GIB, "T": 1024**4}
_LOCAL = re.compile(r"^(?P<addr>.+):(?P<port>\d{1,5})$")
_PROCESS = re.compile(r'users:\(\("(?P<name>[^"]+)"')
_SERVICE = re.compile(r"[^a-z0-9_.-]+")

# Listening TCP sockets with their process when `ss` can tell (root in the container can).
_LIST_PORTS = "ss -Htlnp"


# discovery -----------------------------------------------------------------------------------------


def _resources(resource: ClusterResource) -> Resources:
    cores = int(resource.maxcpu) if resource.maxcpu and resource.maxcpu >= 1 else None
    memory = resource.maxmem // _MIB if resource.maxmem and resource.maxmem // _MIB >= 16 else None
    disk = math.ceil(resource.maxdisk / _GIB) if resource.maxdisk else None
    return Resources(cores=cores, memory_mb=memory, disk_gb=disk)


def discover_containers(services: Services, hosts: Iterable[Host]) -> list[DiscoveredContainer]:
    """Containers (not templates) on these hosts that no app record holds and no operation has
    reserved, from one ``/cluster/resources`` call per host; ordered by host name and VMID.
    Raises the host's error when one cannot be reached."""
    found: list[DiscoveredContainer] = []
    for host in sorted(hosts, key=lambda h: h.name):
        listing = containers_by_vmid(services.clients.get(host.id).cluster_resources(kind="vm"))
        held = services.store.reservations.held_vmids(host.id)
        for vmid in sorted(set(listing) - held):
            r = listing[vmid]
            assert r.node is not None
            found.append(
                DiscoveredContainer(
                    host_id=host.id,
                    host=host.name,
                    node=r.node,
                    vmid=vmid,
                    name=r.name,
                    status=r.status or "unknown",
                    tags=tuple(r.tag_list),
                    lock=r.lock,
                    resources=_resources(r),
                    uptime=r.uptime,
                )
            )
    return found


# adoption, checked in the façade -------------------------------------------------------------------


def prepare_adoption(
    services: Services,
    vmid: int,
    *,
    host: str | None,
    node: str | None,
    catalog_id: str | None,
    hostname: str | None,
    owner_id: str | None,
) -> App:
    """Check everything, then record the app (``adopting``) with its VMID reserved for it.
    Raises before recording anything when the adoption cannot work."""
    store = services.store
    vmid = check_vmid(vmid)
    if node is not None:
        check_node_name(node)
    if hostname is not None:
        check_hostname(hostname)
    entry = services.catalog.get(catalog_id) if catalog_id is not None else None
    target = store.hosts.resolve(host)
    services.shells.get(target.id)  # ports are read through the node shell: say so now if it is missing
    listing = containers_by_vmid(services.clients.get(target.id).cluster_resources(kind="vm"))
    found = listing.get(vmid)
    if found is None:
        raise NotFoundError(
            f"there is no container {vmid} on host {target.name!r}",
            hint="List adoptable containers with px.apps.discover()",
        )
    assert found.node is not None
    if node is not None and found.node != node:
        raise NotFoundError(
            f"container {vmid} is on node {found.node!r}, not {node!r}",
            hint=f"Give node={found.node!r} or leave node out",
        )
    if found.lock:
        raise ConflictError(
            f"container {vmid} is locked ({found.lock})",
            hint="Adopt it once the Proxmox task holding the lock has ended",
        )
    if vmid in store.reservations.held_vmids(target.id):
        raise AlreadyExistsError(
            f"container {vmid} on host {target.name!r} is already managed by Proximity",
            hint="See it with px.apps.list(); only unmanaged containers can be adopted",
        )
    if hostname is None:
        if not found.name:
            raise ValidationError(
                f"container {vmid} has no name", field="hostname", hint="Give hostname='...' for the app"
            )
        hostname = check_hostname(found.name, field="hostname")
    config: dict[str, Any] = {"container_name": found.name, "status_at_adoption": found.status}
    if entry is not None and entry.main_port:
        config["main_port"] = entry.main_port
    app = store.apps.create(
        hostname=hostname,
        host_id=target.id,
        status=AppStatus.ADOPTING,
        adopted=True,
        catalog_id=entry.id if entry else None,
        catalog_version=entry.version if entry else None,
        owner_id=owner_id,
        node=found.node,
        vmid=vmid,
        resources=_resources(found),
        config=config,
    )
    try:
        if not store.reservations.reserve_vmid(target.id, vmid, app_id=app.id):
            raise AlreadyExistsError(
                f"VMID {vmid} on host {target.name!r} is reserved by another operation",
                hint="Another deploy, clone or adoption holds it; try again once it ended",
            )
    except BaseException:
        store.apps.delete(app.id)
        raise
    return app


def forget_adoption(store: Store, app: App) -> None:
    """Undo :func:`prepare_adoption` (the operation could not be started, or it failed)."""
    store.reservations.release_for_app(app.id)
    store.apps.delete(app.id)


# the operation ---------------------------------------------------------------------------------------


def _disk_gb(config: LxcConfig) -> int | None:
    match = _SIZE.search(config.mounts.get("rootfs", ""))
    if match is None:
        return None
    return max(1, math.ceil(float(match.group(1)) * _SIZE_UNIT[match.group(2)] / _GIB))


def resources_from_config(config: LxcConfig) -> Resources:
    """The container's configured cores, memory, swap and root disk (None where Proxmox defaults)."""
    return Resources(
        cores=config.cores,
        memory_mb=config.memory if config.memory and config.memory >= 16 else None,
        swap_mb=config.swap,
        disk_gb=_disk_gb(config),
    )


def _reachable(address: str) -> bool:
    host = address.strip("[]").split("%", 1)[0]
    if host in ("*", "0.0.0.0", "::"):  # noqa: S104 - parsing, not binding
        return True
    return not (host.startswith(("127.", "::ffff:127.")) or host == "::1")


def parse_listening(output: str) -> list[Port]:
    """TCP ports from ``ss -Htln[p]`` output, reachable from outside the container (loopback-only
    listeners are left out), each once, by port. The service is the listening process's name
    when ``ss`` shows it, else ``tcp-<port>``."""
    ports: dict[int, Port] = {}
    for line in output.splitlines():
        fields = line.split()
        local = next((m for m in (_LOCAL.match(f) for f in fields) if m), None)
        if local is None:
            continue
        number = int(local.group("port"))
        if not 1 <= number <= 65535 or number in ports or not _reachable(local.group("addr")):
            continue
        process = _PROCESS.search(line)
        service = _SERVICE.sub("-", process.group("name").lower()).strip("-.")[:63] if process else ""
        ports[number] = Port(service=service or f"tcp-{number}", port=number)
    return [ports[p] for p in sorted(ports)]


def _main_port(ports: list[Port], preferred: int | None) -> int | None:
    numbers = [p.port for p in ports]
    if preferred:
        return preferred
    for candidate in (80, 8080, 3000, 8000):
        if candidate in numbers:
            return candidate
    return numbers[0] if numbers else None


class AdoptKind(OperationKind):
    """Read an existing container into its app record. Every step only reads, so a takeover runs
    them again; a failure forgets the record (and releases its VMID): the container is untouched."""

    name: ClassVar[str] = "adopt"
    steps: ClassVar[tuple[str, ...]] = ("inspect", "ports", "record")
    deadline_seconds: ClassVar[float] = 900.0

    def __init__(self, services: Services) -> None:
        self.services = services

    def result(self, store: Store, operation: Operation) -> App:
        return store.apps.get(str(operation.app_id))

    def recover(self, ctx: OperationContext) -> dict[str, Any]:
        ctx.event("reading the container again (adoption only reads)")
        return self.run(ctx)

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        store = self.services.store
        app = store.apps.get(str(ctx.operation.app_id))
        assert app.node is not None and app.vmid is not None
        node, vmid = app.node, app.vmid
        client = self.services.clients.get(app.host_id)

        with ctx.step("inspect"):
            status = container_status(client, node, vmid)
            if status is None:
                raise NotFoundError(f"container {vmid} is no longer on node {node}")
            config = client.lxc_config(node, vmid)
            resources = resources_from_config(config)
            ctx.event(
                f"CT {vmid} ({status.name}) is {status.status}: {resources.cores or 'all'} cores, "
                f"{resources.memory_mb} MiB memory, {resources.disk_gb} GiB disk"
            )

        ports: list[Port] = []
        address: str | None = None
        with ctx.step("ports"):
            if status.running:
                address = next((i.ipv4 for i in client.lxc_interfaces(node, vmid) if i.name != "lo" and i.ipv4), None)
                try:
                    listed = self.services.shells.get(app.host_id).pct_exec(node, vmid, _LIST_PORTS, timeout=60)
                    ports = parse_listening(listed.stdout)
                except CommandFailedError as exc:  # no `ss` in the container: adopt without ports
                    ctx.event(f"could not list listening ports ({exc}); none recorded", level="warning")
                shown = ", ".join(f"{p.port} ({p.service})" for p in ports) or "none"
                ctx.event(f"address {address or 'unknown'}; listening ports: {shown}")
            else:
                ctx.event("the container is stopped: its ports are not detected", level="warning")

        with ctx.step("record"):
            main_port = _main_port(ports, app.config.get("main_port"))
            config_snapshot = {k: v for k, v in config.raw.items() if k not in ("lock", "digest")}
            store.apps.update(
                app.id,
                status=AppStatus.RUNNING if status.running else AppStatus.STOPPED,
                resources=resources,
                ports=tuple(ports),
                address=address,
                url=app_url(address, main_port),
                config={
                    **app.config,
                    "main_port": main_port,
                    "ports": [p.model_dump() for p in ports],
                    "adopted_at": utcnow().isoformat(),
                    "proxmox_config": config_snapshot,
                },
            )
        return {"app_id": app.id}

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        try:
            app = self.services.store.apps.get(str(ctx.operation.app_id))
        except ProximityError:
            return
        forget_adoption(self.services.store, app)
        ctx.event(f"adoption abandoned: the record of {app.hostname!r} is removed, CT {app.vmid} is untouched")
