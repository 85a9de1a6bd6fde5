"""BackupService: not served by the agent yet. ``px.backups`` exists; serving it needs the
backup conversions and ownership through each backup's app (members: their apps' backups and
schedules; targets and RunDueBackups: admins, as auth.POLICY already says). Until then every RPC
answers UNIMPLEMENTED with a message naming it."""

from __future__ import annotations

from typing import Any

from proximity_agent.servicers._base import Backend
from proximity_agent.servicers._unserved import unserved
from proximity_sdk._pb.proximity.v1 import backups_pb2_grpc

__all__ = ["BackupServicer"]


def BackupServicer(backend: Backend) -> Any:
    return unserved(backups_pb2_grpc.BackupServiceServicer, "BackupService")
