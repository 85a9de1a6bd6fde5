"""The built-in backup target: a Proxmox storage (``kind="proxmox"``, options ``{"storage": "local"}``).

The vzdump archive stays where vzdump wrote it; its location is its volid. This is also the
target of backups made with ``target=None`` (storage ``local``, Proxmox's own default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proximity_sdk.backup_targets.base import Archive, BackupTarget, BackupTargetKind, FetchedArchive, NodeAccess
from proximity_sdk.errors import NotFoundError, ValidationError
from proximity_sdk.plugins.hookspecs import hookimpl

# backup_targets.volumes (the Proxmox client, paramiko) is imported in the methods that use it:
# registering this plugin, which every catalog command does, stays cheap
from proximity_sdk.proxmox.validate import check_storage_id

__all__ = ["DEFAULT_BACKUP_STORAGE", "ProxmoxStorageKind", "ProxmoxStoragePlugin", "ProxmoxStorageTarget"]

DEFAULT_BACKUP_STORAGE = "local"


class ProxmoxStorageTarget:
    def __init__(self, name: str, storage: str) -> None:
        self._name = name
        self._storage = storage

    @property
    def name(self) -> str:
        return self._name

    @property
    def dump_storage(self) -> str:
        return self._storage

    def store(self, node: NodeAccess, archive: Archive) -> str:
        return archive.volid

    def fetch(self, node: NodeAccess, location: str) -> FetchedArchive:
        from proximity_sdk.backup_targets.volumes import find_backup_volume

        if find_backup_volume(node.client, node.node, location) is None:
            raise NotFoundError(
                f"the archive {location} is not on node {node.node}",
                hint="It was deleted outside Proximity; delete this backup record",
            )
        return FetchedArchive(volid=location, temporary=False)

    def verify(self, node: NodeAccess, location: str) -> int | None:
        from proximity_sdk.backup_targets.volumes import check_backup_volid, find_backup_volume

        volume = find_backup_volume(node.client, node.node, check_backup_volid(location, field="location"))
        return None if volume is None else volume.size

    def delete(self, node: NodeAccess, location: str) -> bool:
        from proximity_sdk.backup_targets.volumes import check_backup_volid, delete_backup_volume

        return delete_backup_volume(
            node.client, node.node, check_backup_volid(location, field="location"), emit=node.emit
        )

    def list(self, node: NodeAccess, *, vmid: int | None = None) -> list[str]:
        from proximity_sdk.backup_targets.volumes import backup_volumes

        return [v.volid for v in backup_volumes(node.client, node.node, self._storage, vmid=vmid)]


class ProxmoxStorageKind:
    kind = "proxmox"

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(options) - {"storage"}
        if unknown:
            raise ValidationError(
                f"unknown option(s) for a proxmox target: {', '.join(sorted(unknown))}",
                field="options",
                hint='The only option is {"storage": "<storage id>"}',
            )
        return {"storage": check_storage_id(options.get("storage", DEFAULT_BACKUP_STORAGE), field="options.storage")}

    def open(self, name: str, options: Mapping[str, Any]) -> BackupTarget:
        return ProxmoxStorageTarget(name, str(options.get("storage", DEFAULT_BACKUP_STORAGE)))


class ProxmoxStoragePlugin:
    """Registered first, as ``proximity.builtin.backup_targets``."""

    @hookimpl
    def proximity_backup_target_kinds(self) -> list[BackupTargetKind]:
        return [ProxmoxStorageKind()]
