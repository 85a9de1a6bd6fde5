"""`BackupsAPI` and `BackupTargetsAPI`: ``px.backups`` and ``px.backups.targets``."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from proximity_sdk._api.handle import OperationHandleAPI
    from proximity_sdk.models.app import App
    from proximity_sdk.models.backup import Backup, BackupSchedule, BackupStats, BackupStatus, BackupTarget

__all__ = ["BackupTargetsAPI", "BackupsAPI"]


class BackupTargetsAPI(Protocol):
    """``px.backups.targets``: named places backups go to, configured with options (stored
    encrypted; never returned)."""

    def add(self, *, name: str, kind: str, options: Mapping[str, Any] | None = None) -> BackupTarget:
        """Configure a target; ``kind`` is offered by a plugin (``proxmox`` is built in:
        ``options={"storage": "nas"}``). The options are checked by the kind first. Through an
        agent, the plugins are the agent's and the options travel as JSON."""
        ...

    def get(self, name: str) -> BackupTarget:
        """The target with this name."""
        ...

    def list(self) -> builtins.list[BackupTarget]:
        """The configured targets (their options are never returned)."""
        ...

    def remove(self, name: str) -> None:
        """Forget a target no backup or schedule uses any more."""
        ...

    def kinds(self) -> builtins.list[str]:
        """The kinds of target the installed plugins offer (the agent's, through an agent)."""
        ...


class BackupsAPI(Protocol):
    """``px.backups``: back up apps, restore and delete backups, schedules with retention, and
    ``targets``. Everything is checked before a record is written or Proxmox is asked anything:
    unknown modes, compressions, targets or apps are refused with a ``ValidationError`` or
    ``NotFoundError``."""

    #: ``px.backups.targets``: where backups go
    targets: BackupTargetsAPI

    def create(
        self,
        app_id: str,
        *,
        mode: str = "snapshot",
        compression: str = "zstd",
        target: str | None = None,
        note: str | None = None,
    ) -> OperationHandleAPI[Backup]:
        """Back up the app's container with vzdump (``mode`` snapshot|suspend|stop, ``compression``
        zstd|gzip|lzo|none) to ``target`` (None: the Proxmox storage ``local``). ``wait()`` gives the
        :class:`Backup`. Backups on one node run one at a time; the others wait their turn."""
        ...

    def get(self, backup_id: str) -> Backup:
        """The backup with this id."""
        ...

    def list(self, app_id: str | None = None, *, status: BackupStatus | str | None = None) -> builtins.list[Backup]:
        """Every backup (of one app, or all), newest first."""
        ...

    def stats(self, app_id: str | None = None) -> BackupStats:
        """Counts by status, total and average size of the completed backups."""
        ...

    def restore(self, backup_id: str, *, in_place: bool = False, storage: str | None = None) -> OperationHandleAPI[App]:
        """Restore the app from this backup; ``wait()`` gives the :class:`App`. By default into a new
        container (the old one is kept, stopped, for the grace period); ``in_place=True`` overwrites
        the container after a safety backup. ``storage``: the disk storage (default: the current one)."""
        ...

    def delete(self, backup_id: str) -> OperationHandleAPI[None]:
        """Delete the archive (already gone is fine) and the record; ``wait()`` gives None."""
        ...

    def schedule(
        self,
        app_id: str,
        *,
        cron: str,
        keep_last: int | None = 7,
        keep_daily: int | None = None,
        keep_weekly: int | None = None,
        target: str | None = None,
    ) -> BackupSchedule:
        """Back the app up on a cron schedule (5 fields, UTC), keeping what the retention rules keep
        (Proxmox's keep-last/-daily/-weekly); the newest good backup is never pruned."""
        ...

    def schedules(self, app_id: str | None = None) -> builtins.list[BackupSchedule]:
        """The backup schedules (of one app, or all)."""
        ...

    def unschedule(self, schedule_id: str) -> None:
        """Delete a backup schedule (its backups stay)."""
        ...

    def run_due(self, *, now: datetime | None = None) -> Sequence[OperationHandleAPI[Backup]]:
        """Start the backups whose schedule is due (each then prunes per its retention); returns their
        operations. Safe to call from several processes: each due run is claimed once. A schedule
        whose app is busy tries again 5 minutes later. Through an agent: admin only (the agent's
        scheduler does it)."""
        ...
