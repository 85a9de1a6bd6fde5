"""Backup targets by name: the configured ones (store + plugin kinds) and the default Proxmox storage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from proximity_sdk.backup_targets.base import BackupTarget, BackupTargetKind, NodeAccess
from proximity_sdk.backup_targets.proxmox_storage import DEFAULT_BACKUP_STORAGE, ProxmoxStorageTarget
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ValidationError
from proximity_sdk.plugins.manager import PluginManager
from proximity_sdk.proxmox.progress import Emit
from proximity_sdk.proxmox.shell import NodeShell

__all__ = ["TargetRegistry"]


class TargetRegistry:
    def __init__(self, services: Services, plugins: PluginManager) -> None:
        self._services = services
        self._plugins = plugins

    def kinds(self) -> dict[str, BackupTargetKind]:
        return self._plugins.backup_target_kinds()

    def kind(self, name: str) -> BackupTargetKind:
        kinds = self.kinds()
        if name not in kinds:
            raise ValidationError(
                f"unknown backup target kind {name!r}; known: {', '.join(sorted(kinds))}",
                field="kind",
                hint="Install the plugin that offers it (e.g. proximity-sftp)",
            )
        return kinds[name]

    def check(self, kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(options, Mapping):
            raise ValidationError("options must be a mapping", field="options")
        return self.kind(kind).check_options(options)

    def exists(self, name: str | None) -> None:
        """Raise ``NotFoundError`` for a target name that is not configured (None is the default)."""
        if name is not None:
            self._services.store.backups.get_target(name)

    def open(self, name: str | None) -> BackupTarget:
        if name is None:
            return ProxmoxStorageTarget(f"proxmox:{DEFAULT_BACKUP_STORAGE}", DEFAULT_BACKUP_STORAGE)
        record = self._services.store.backups.get_target(name)
        return self.kind(record.kind).open(name, self._services.store.backups.target_options(name))

    def access(self, host_id: str, node: str, emit: Emit) -> NodeAccess:
        try:
            shell = self._services.shells.get(host_id)
        except ValidationError as exc:
            # a host without SSH still backs up to a Proxmox storage (API only, e.g. native OCI apps);
            # a target that needs the node shell gets the same clear error when it uses it
            shell = cast(NodeShell, _NoShell(exc))
        return NodeAccess(client=self._services.clients.get(host_id), shell=shell, node=node, emit=emit)


class _NoShell:
    """Stands for the node shell of a host that has no SSH access: any use raises why."""

    def __init__(self, error: ValidationError) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Any:
        raise ValidationError(self._error.message, field=self._error.field, hint=self._error.hint)
