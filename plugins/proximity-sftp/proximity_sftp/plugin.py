"""The plugin registered under the ``proximity`` entry-point group: two backup target kinds.

Loading the plugin (every catalog command does) imports this module and ``config`` only; the copy
machinery (``target``: the node's SFTP, the Proxmox client; ``destinations``: paramiko) is imported
by ``open``, when a backup really uses a target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from proximity_sdk.backup_targets import BackupTargetKind
from proximity_sdk.plugins import hookimpl
from proximity_sftp.config import DirectoryOptions, SftpOptions, dump_options, parse_options

if TYPE_CHECKING:
    from proximity_sdk.backup_targets import BackupTarget

__all__ = ["DirectoryKind", "SftpKind", "proximity_backup_target_kinds"]


class SftpKind:
    kind = "sftp"

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return dump_options(parse_options(SftpOptions, self.kind, options))

    def open(self, name: str, options: Mapping[str, Any]) -> BackupTarget:
        from proximity_sftp.destinations import SftpDestination
        from proximity_sftp.target import CopyTarget

        opts: SftpOptions = parse_options(SftpOptions, self.kind, options)
        return CopyTarget(
            name, SftpDestination(opts), staging_storage=opts.staging_storage, keep_on_node=opts.keep_on_node
        )


class DirectoryKind:
    kind = "directory"

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return dump_options(parse_options(DirectoryOptions, self.kind, options))

    def open(self, name: str, options: Mapping[str, Any]) -> BackupTarget:
        from proximity_sftp.destinations import DirectoryDestination
        from proximity_sftp.target import CopyTarget

        opts: DirectoryOptions = parse_options(DirectoryOptions, self.kind, options)
        return CopyTarget(
            name, DirectoryDestination(opts.path), staging_storage=opts.staging_storage, keep_on_node=opts.keep_on_node
        )


@hookimpl
def proximity_backup_target_kinds() -> list[BackupTargetKind]:
    """``sftp`` (copies archives to an SFTP server) and ``directory`` (to a local directory)."""
    return [SftpKind(), DirectoryKind()]
