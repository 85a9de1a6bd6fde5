"""What a backup target is: the protocol plugins implement, and what they are handed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: loading plugins (a catalog command) must not load HTTP and SSH stacks
    from proximity_sdk.proxmox.client import ProxmoxClient
    from proximity_sdk.proxmox.progress import Emit
    from proximity_sdk.proxmox.shell import NodeShell

__all__ = ["Archive", "BackupTarget", "BackupTargetKind", "FetchedArchive", "NodeAccess"]


@dataclass(frozen=True)
class NodeAccess:
    """The Proxmox node a target works with: its API ``client``, its SSH ``shell`` (``shell.run(node,
    ...)``; files over SFTP with ``proximity_sdk.backup_targets.volumes.node_sftp``), the ``node``
    name, and ``emit`` for progress lines that become events of the running operation."""

    client: ProxmoxClient
    shell: NodeShell
    node: str
    emit: Emit


@dataclass(frozen=True)
class Archive:
    """A vzdump archive that exists as a volume on a node's storage."""

    volid: str  # "<storage>:backup/vzdump-lxc-<vmid>-<YYYY_MM_DD-HH_MM_SS>.tar.zst"
    vmid: int
    size_bytes: int | None = None

    @property
    def storage(self) -> str:
        return self.volid.split(":", 1)[0]

    @property
    def filename(self) -> str:
        return self.volid.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class FetchedArchive:
    """An archive made available on the node for a restore. ``temporary``: the volume was put
    there for the restore only, and is deleted once the restore ended."""

    volid: str
    temporary: bool


@runtime_checkable
class BackupTarget(Protocol):
    """One configured target (opened from its options by its kind). ``location`` strings are the
    target's own (a volid, a remote path, ...): Proximity stores them and hands them back.

    Every method may raise a ``ProximityError`` (``UnreachableError`` for a target that cannot be
    reached, ``NotFoundError`` for a missing archive in ``fetch``)."""

    @property
    def name(self) -> str:
        """The configured name (``None`` targets are named ``proxmox:<storage>``)."""
        ...

    @property
    def dump_storage(self) -> str:
        """The node storage vzdump writes the archive to before ``store`` (it must hold ``backup`` content)."""
        ...

    def store(self, node: NodeAccess, archive: Archive) -> str:
        """Keep the fresh archive (copy it off, ...) and return its location. A target that moves the
        archive away may delete the node volume here."""
        ...

    def fetch(self, node: NodeAccess, location: str) -> FetchedArchive:
        """Make the archive a volume on ``node.node`` for a restore; checks its integrity on the way."""
        ...

    def verify(self, node: NodeAccess, location: str) -> int | None:
        """The archive's size when it is there and intact, else None (nothing is changed)."""
        ...

    def delete(self, node: NodeAccess, location: str) -> bool:
        """Remove the archive; False when it was already gone (not an error)."""
        ...

    def list(self, node: NodeAccess, *, vmid: int | None = None) -> list[str]:
        """The locations of the archives this target holds (of one guest, or all)."""
        ...


@runtime_checkable
class BackupTargetKind(Protocol):
    """A kind of target (``proxmox``, ``sftp``, ...), offered by a plugin."""

    @property
    def kind(self) -> str: ...

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate options given to ``px.backups.targets.add`` (raise ``ValidationError`` naming the
        field) and return them normalised, as they will be stored (encrypted)."""
        ...

    def open(self, name: str, options: Mapping[str, Any]) -> BackupTarget:
        """A target for these (checked) options. Must not do I/O: it is called for every operation."""
        ...
