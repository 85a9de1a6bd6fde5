"""The plugin registered under the ``proximity`` entry-point group: two backup target kinds."""

from __future__ import annotations

from proximity_sdk.backup_targets import BackupTargetKind
from proximity_sdk.plugins import hookimpl
from proximity_sftp.config import DirectoryKind, SftpKind

__all__ = ["proximity_backup_target_kinds"]


@hookimpl
def proximity_backup_target_kinds() -> list[BackupTargetKind]:
    """``sftp`` (copies archives to an SFTP server) and ``directory`` (to a local directory)."""
    return [SftpKind(), DirectoryKind()]
