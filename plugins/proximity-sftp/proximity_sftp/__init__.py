"""Backup targets ``sftp`` and ``directory`` for Proximity (entry point ``proximity``: ``sftp``).

``CopyTarget`` is imported on first use: the entry point loads ``proximity_sftp.plugin``, which
imports this package first, and every catalog command loads the plugins; the copy machinery
(paramiko, the Proxmox client) is only needed when a backup uses a target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["CopyTarget"]

if TYPE_CHECKING:
    from proximity_sftp.target import CopyTarget


def __getattr__(name: str) -> Any:
    if name != "CopyTarget":
        raise AttributeError(f"module 'proximity_sftp' has no attribute {name!r}")
    from proximity_sftp.target import CopyTarget

    return CopyTarget
