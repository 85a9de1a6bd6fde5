"""Backup targets ``sftp`` and ``directory`` for Proximity (entry point ``proximity``: ``sftp``)."""

from __future__ import annotations

from proximity_sftp.target import CopyTarget

__all__ = ["CopyTarget"]
