"""Changing an existing LXC container: snapshots, clone, migrate, config and disk size.

Like :mod:`proximity_sdk.proxmox.containers`, each function checks its inputs before any
request, waits for its task (log lines go to ``emit``) and is safe to call again: deleting a
snapshot that is gone, or growing a disk already at the size, is a no-op that returns None.
"""

from __future__ import annotations

import re

from proximity_sdk.errors import NotFoundError, ProximityError, ValidationError
from proximity_sdk.models.proxmox import LxcConfig
from proximity_sdk.proxmox._ctspec import check_hostname
from proximity_sdk.proxmox._lxc import check_seconds, lxc_path, wait_guest_task
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.progress import Emit, emit_to
from proximity_sdk.proxmox.tasks import TaskResult
from proximity_sdk.proxmox.validate import check_node_name, check_storage_id, check_vmid

__all__ = [
    "check_snapshot_name",
    "clone_container",
    "container_node",
    "delete_snapshot",
    "disk_size_gb",
    "grow_disk",
    "migrate_container",
    "set_config",
    "snapshot_names",
    "storage_is_shared",
    "take_snapshot",
]

# PVE's pve-configid (letters, digits, '_' and '-', starting with a letter), at most 40 long
_SNAPNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{1,39}$")
_SIZE = re.compile(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)", re.IGNORECASE)
_UNIT_GIB = {"": 1 / 1024**3, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}
_SNAPSHOT_GONE = re.compile(r"snapshot '[^']*' does not exist", re.IGNORECASE)


def check_snapshot_name(name: object) -> str:
    if not isinstance(name, str) or not _SNAPNAME.match(name) or name in ("current", "vzdump"):
        raise ValidationError(
            f"snapshot name {name!r} is not valid",
            field="snapname",
            hint="Use 2 to 40 letters, digits, '_' or '-', starting with a letter (not 'current' or 'vzdump')",
        )
    return name


def container_node(client: ProxmoxClient, vmid: int) -> str | None:
    """The node the container is on now (one ``/cluster/resources`` read), or None when no node has it.
    Used after a migration that may or may not have happened (a crash, a failed task)."""
    check_vmid(vmid)
    for item in client.cluster_resources(kind="vm"):
        if item.vmid == vmid and item.type == "lxc" and item.node:
            return item.node
    return None


def snapshot_names(client: ProxmoxClient, node: str, vmid: int) -> list[str]:
    """The container's snapshots (without PVE's pseudo entry ``current``)."""
    data = client.get(lxc_path(node, vmid, "snapshot"))
    return [str(item["name"]) for item in data or () if isinstance(item, dict) and item.get("name") != "current"]


def take_snapshot(
    client: ProxmoxClient,
    node: str,
    vmid: int,
    name: str,
    *,
    description: str | None = None,
    emit: Emit | None = None,
    timeout: float = 600.0,
) -> TaskResult:
    """Snapshot the container (running or stopped) as ``name``; waits for the ``vzsnapshot`` task."""
    path = lxc_path(node, vmid, "snapshot")
    check_snapshot_name(name)
    check_seconds(timeout)
    upid = client.post(path, snapname=name, description=description)
    return wait_guest_task(client, str(upid), timeout=timeout, emit=emit)


def delete_snapshot(
    client: ProxmoxClient, node: str, vmid: int, name: str, *, emit: Emit | None = None, timeout: float = 600.0
) -> TaskResult | None:
    """Delete the snapshot; None when it is not there (already deleted, or never taken)."""
    path = lxc_path(node, vmid, f"snapshot/{check_snapshot_name(name)}")
    check_seconds(timeout)
    try:
        if name not in snapshot_names(client, node, vmid):
            emit_to(emit, f"CT {vmid} has no snapshot {name}")
            return None
    except NotFoundError:
        emit_to(emit, f"CT {vmid} is not on node {node}: no snapshot {name} to delete")
        return None
    upid = client.delete(path)
    try:
        return wait_guest_task(client, str(upid), timeout=timeout, emit=emit)
    except ProximityError as err:
        if _SNAPSHOT_GONE.search(str(err)):
            return None
        raise


def clone_container(
    client: ProxmoxClient,
    node: str,
    vmid: int,
    *,
    newid: int,
    hostname: str,
    snapname: str | None = None,
    target: str | None = None,
    storage: str | None = None,
    description: str | None = None,
    emit: Emit | None = None,
    timeout: float = 3600.0,
) -> TaskResult:
    """A full clone of CT ``vmid`` as ``newid`` named ``hostname`` (stopped), from ``snapname``
    when given (a running container can only be fully cloned from a snapshot). ``target`` puts
    the clone on another node: PVE allows that only when the disks are on shared storage.

    A duplicate ``newid`` raises :class:`AlreadyExistsError` before anything is made. A failed
    task removes what it made itself (PVE's own cleanup); destroy ``newid`` to be sure."""
    path = lxc_path(node, vmid, "clone")
    check_vmid(newid, field="newid")
    check_hostname(hostname)
    if snapname is not None:
        check_snapshot_name(snapname)
    if target is not None:
        check_node_name(target, field="target")
    if storage is not None:
        check_storage_id(storage)
    if description is not None and len(description) > 8192:
        raise ValidationError("description is longer than 8192 characters", field="description")
    check_seconds(timeout)
    upid = client.post(
        path,
        newid=newid,
        hostname=hostname,
        full=True,
        snapname=snapname,
        target=None if target == node else target,
        storage=storage,
        description=description,
    )
    return wait_guest_task(client, str(upid), timeout=timeout, emit=emit)


def migrate_container(
    client: ProxmoxClient,
    node: str,
    vmid: int,
    *,
    target: str,
    restart: bool,
    shutdown_timeout: int = 180,
    emit: Emit | None = None,
    timeout: float = 3600.0,
) -> TaskResult:
    """Move the container to node ``target`` of the same cluster. A running one needs
    ``restart=True`` (restart migration: shut down within ``shutdown_timeout`` seconds, moved,
    started again on the target); LXC has no live migration."""
    path = lxc_path(node, vmid, "migrate")
    check_node_name(target, field="target")
    if target == node:
        raise ValidationError(f"CT {vmid} is already on node {node}", field="target")
    if isinstance(shutdown_timeout, bool) or not isinstance(shutdown_timeout, int) or shutdown_timeout < 1:
        raise ValidationError("shutdown_timeout must be whole seconds >= 1", field="shutdown_timeout")
    check_seconds(timeout)
    params: dict[str, object] = {"target": target}
    if restart:
        params.update(restart=True, timeout=shutdown_timeout)
    upid = client.post(path, **params)
    # the task runs on the source node; it ends once the container is on the target (and started)
    return wait_guest_task(client, str(upid), timeout=timeout + shutdown_timeout, emit=emit)


def set_config(
    client: ProxmoxClient,
    node: str,
    vmid: int,
    *,
    cores: int | None = None,
    memory_mb: int | None = None,
    swap_mb: int | None = None,
    net0: str | None = None,
    digest: str | None = None,
) -> None:
    """Change some settings (``PUT /config``, synchronous). A running container takes cores,
    memory and swap at once (cgroup limits); ``net0`` is hot-plugged too. ``digest`` (from a
    config read) refuses the change when someone else changed the config since."""
    path = lxc_path(node, vmid, "config")
    changes: dict[str, object] = {}
    for field, value, low, high in (
        ("cores", cores, 1, 8192),
        ("memory", memory_mb, 16, 4 * 1024 * 1024),
        ("swap", swap_mb, 0, 4 * 1024 * 1024),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(f"{field} must be an integer from {low} to {high}, not {value!r}", field=field)
        changes[field] = value
    if net0 is not None:
        if not isinstance(net0, str) or not net0 or any(c in net0 for c in "\r\n\0 "):
            raise ValidationError(f"net0 {net0!r} is not a network property string", field="net0")
        changes["net0"] = net0
    if not changes:
        raise ValidationError("no setting to change was given", field="cores")
    client.put(path, digest=digest, **changes)


def disk_size_gb(config: LxcConfig, disk: str = "rootfs") -> float | None:
    """The size (GiB) of ``rootfs`` or ``mpN`` as the config states it (``size=8G``), or None."""
    value = config.mounts.get(disk)
    if value is None:
        return None
    found = _SIZE.search(value)
    if found is None:
        return None
    return float(found.group(1)) * _UNIT_GIB[found.group(2).upper()]


def grow_disk(
    client: ProxmoxClient,
    node: str,
    vmid: int,
    *,
    size_gb: int,
    disk: str = "rootfs",
    emit: Emit | None = None,
    timeout: float = 600.0,
) -> TaskResult | None:
    """Grow ``disk`` to ``size_gb`` GiB (works on a running container). None when it already
    has that size; a smaller size raises :class:`ValidationError` (PVE never shrinks a disk)."""
    path = lxc_path(node, vmid, "resize")
    if isinstance(size_gb, bool) or not isinstance(size_gb, int) or not 1 <= size_gb <= 128 * 1024:
        raise ValidationError(f"size_gb must be whole GiB from 1 to 131072, not {size_gb!r}", field="size_gb")
    if disk != "rootfs" and not re.fullmatch(r"mp\d{1,3}", disk):
        raise ValidationError(f"disk {disk!r} is neither rootfs nor mpN", field="disk")
    check_seconds(timeout)
    config = client.lxc_config(node, vmid)
    current = disk_size_gb(config, disk)
    if current is None:
        raise NotFoundError(f"CT {vmid} on node {node} has no {disk} with a known size")
    if size_gb < current:
        raise ValidationError(
            f"{disk} of CT {vmid} has {current:g} GiB; it cannot shrink to {size_gb} GiB",
            field="disk_gb",
            hint="Proxmox only grows disks: give a size of at least the current one",
        )
    if size_gb == current:
        emit_to(emit, f"{disk} of CT {vmid} already has {size_gb} GiB")
        return None
    try:
        upid = client.put(path, disk=disk, size=f"{size_gb}G", digest=config.digest)
    except ProximityError as err:
        if "already at specified size" in str(err):
            return None
        raise
    return wait_guest_task(client, str(upid), timeout=timeout, emit=emit)


def storage_is_shared(client: ProxmoxClient, node: str, storage: str) -> bool:
    """Whether ``storage`` is shared between nodes (a clone may then go straight to another node)."""
    check_storage_id(storage)
    for item in client.storage_list(node):
        if item.storage == storage:
            return item.shared
    raise NotFoundError(f"storage {storage!r} is not available on node {node}")
