"""Backup targets: where backup archives are kept (a Proxmox storage, or a plugin's place).

Plugin authors implement :class:`BackupTargetKind` (``check_options``, ``open``) returning a
:class:`BackupTarget` (``store``, ``fetch``, ``list``, ``delete``, ``verify``), and offer the kind
through the ``proximity_backup_target_kinds`` hook (docs/plugins.md).
"""

from __future__ import annotations

from proximity_sdk.backup_targets.base import (
    Archive,
    BackupTarget,
    BackupTargetKind,
    FetchedArchive,
    NodeAccess,
    StoredArchive,
)

__all__ = ["Archive", "BackupTarget", "BackupTargetKind", "FetchedArchive", "NodeAccess", "StoredArchive"]
