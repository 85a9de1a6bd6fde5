"""Backup volumes on a Proxmox node: vzdump, find, delete, their path on disk, and SFTP to the node.

Every request is checked before it is sent: node names, VMIDs, storage ids and volids.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import paramiko

from proximity_sdk.backup_targets.base import Archive
from proximity_sdk.errors import NotFoundError, TaskFailedError, ValidationError
from proximity_sdk.models.proxmox import StorageVolume
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.progress import Emit, emit_to, task_log_forwarder
from proximity_sdk.proxmox.shell import NodeShell
from proximity_sdk.proxmox.tasks import LogCallback, TaskResult, wait_task
from proximity_sdk.proxmox.validate import check_node_name, check_storage_id, check_vmid

__all__ = [
    "VZDUMP_COMPRESS",
    "backup_volumes",
    "check_backup_volid",
    "delete_backup_volume",
    "find_backup_volume",
    "node_sftp",
    "run_vzdump",
    "volume_path",
]

# our compression name -> vzdump's --compress value
VZDUMP_COMPRESS = {"zstd": "zstd", "gzip": "gzip", "lzo": "lzo", "none": "0"}
_BACKUP_VOLID = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*):backup/([A-Za-z0-9][A-Za-z0-9_.+-]*)$")
_ARCHIVE_NAME = re.compile(r"^vzdump-lxc-(\d+)-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar(\.zst|\.gz|\.lzo)?$")


def check_backup_volid(volid: object, *, field: str = "volid") -> str:
    """``<storage>:backup/<file name>`` of a container archive (nothing that could be a path trick)."""
    if (
        not isinstance(volid, str)
        or not (found := _BACKUP_VOLID.match(volid))
        or not _ARCHIVE_NAME.match(found.group(2))
    ):
        raise ValidationError(
            f"{volid!r} is not the volid of a container backup archive",
            field=field,
            hint="It looks like local:backup/vzdump-lxc-105-2025_01_31-03_00_00.tar.zst",
        )
    return volid


def backup_volumes(client: ProxmoxClient, node: str, storage: str, *, vmid: int | None = None) -> list[StorageVolume]:
    """The container backup archives on ``storage`` as seen from ``node`` (of one guest, or all)."""
    volumes = client.storage_content(node, check_storage_id(storage), content="backup", vmid=vmid)
    return [v for v in volumes if (found := _BACKUP_VOLID.match(v.volid)) and _ARCHIVE_NAME.match(found.group(2))]


def find_backup_volume(client: ProxmoxClient, node: str, volid: str) -> StorageVolume | None:
    check_backup_volid(volid)
    vmid = int(_ARCHIVE_NAME.match(volid.rsplit("/", 1)[-1]).group(1))  # type: ignore[union-attr]
    try:
        volumes = backup_volumes(client, node, volid.split(":", 1)[0], vmid=vmid)
    except NotFoundError:
        return None
    return next((v for v in volumes if v.volid == volid), None)


def run_vzdump(
    client: ProxmoxClient,
    node: str,
    vmid: int,
    *,
    storage: str,
    mode: str,
    compression: str,
    on_log: LogCallback | None = None,
    on_upid: Callable[[str], object] | None = None,
    timeout: float = 6 * 3600.0,
) -> tuple[Archive, TaskResult]:
    """Back up container ``vmid`` with vzdump to ``storage`` and wait; returns the new archive.

    The archive is the one volume of this guest that was not on the storage before (robust where
    "the newest by ctime" is not). ``remove=0``: vzdump never prunes; retention is ours.
    """
    check_node_name(node)
    check_vmid(vmid)
    check_storage_id(storage)
    if mode not in ("snapshot", "suspend", "stop"):
        raise ValidationError(f"unknown backup mode {mode!r}", field="mode")
    if compression not in VZDUMP_COMPRESS:
        raise ValidationError(f"unknown compression {compression!r}", field="compression")
    before = {v.volid for v in backup_volumes(client, node, storage, vmid=vmid)}
    upid = str(
        client.post(
            f"/nodes/{node}/vzdump",
            vmid=str(vmid),
            storage=storage,
            mode=mode,
            compress=VZDUMP_COMPRESS[compression],
            remove=0,
        )
    )
    if on_upid is not None:
        on_upid(upid)
    result = wait_task(client, upid, timeout=timeout, on_log=on_log)
    new = [v for v in backup_volumes(client, node, storage, vmid=vmid) if v.volid not in before]
    if len(new) != 1:
        raise TaskFailedError(
            f"vzdump of CT {vmid} on node {node} ended {result.exitstatus} but {len(new)} new archives are on "
            f"storage {storage}",
            upid=upid,
            exitstatus=result.exitstatus,
            log_tail=result.log_tail,
            hint="Look at the storage's backup content and the vzdump task log on the node",
        )
    return Archive(volid=new[0].volid, vmid=vmid, size_bytes=new[0].size), result


def delete_backup_volume(
    client: ProxmoxClient, node: str, volid: str, *, emit: Emit | None = None, timeout: float = 600.0
) -> bool:
    """Delete the archive volume; False when it is already gone (never an error)."""
    check_node_name(node)
    if find_backup_volume(client, node, volid) is None:
        emit_to(emit, f"{volid} is already gone from node {node}")
        return False
    storage = volid.split(":", 1)[0]
    try:
        upid = client.delete(f"/nodes/{node}/storage/{storage}/content/{volid}")
    except NotFoundError:
        return False
    if upid:
        wait_task(client, str(upid), timeout=timeout, on_log=task_log_forwarder(emit))
    emit_to(emit, f"{volid} deleted")
    return True


def volume_path(shell: NodeShell, node: str, volid: str, *, timeout: float = 60.0) -> str:
    """Where the volume's file is on the node (``pvesm path``; it need not exist yet)."""
    check_backup_volid(volid)
    path = shell.run(node, ["pvesm", "path", volid], timeout=timeout).stdout.strip()
    if not path.startswith("/") or "\n" in path or not path.endswith(volid.rsplit("/", 1)[-1]):
        raise ValidationError(
            f"`pvesm path {volid}` on node {node} answered {path!r}, not a file path",
            field="volid",
            hint="Only file-based storages (dir, NFS, CIFS) can be copied off",
        )
    return path


def node_sftp(
    shell: NodeShell, node: str, *, timeout: float = 600.0
) -> contextlib.AbstractContextManager[paramiko.SFTPClient]:
    """An SFTP session on the node's SSH connection (the same one ``shell`` runs commands on)."""
    return shell.sftp(node, timeout=timeout)
