"""What a backup target is: the protocol plugins implement, and what they are handed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: loading plugins (a catalog command) must not load HTTP and SSH stacks
    from proximity_sdk.proxmox.client import ProxmoxClient
    from proximity_sdk.proxmox.progress import Emit
    from proximity_sdk.proxmox.shell import NodeShell

__all__ = [
    "Archive",
    "BackupTarget",
    "BackupTargetKind",
    "FetchedArchive",
    "NodeAccess",
    "StoredArchive",
    "fetch_checked",
    "stored_location",
]


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


@dataclass(frozen=True)
class StoredArchive:
    """What ``store`` may return instead of a bare location: with the archive's SHA-256 as the
    target's copy went through this process (``sha256:<hex>``). Proximity records it and hands
    it back to ``fetch`` for a restore, so a replaced archive is caught even where the target's
    own checksum sits beside it (whoever can replace one can replace both)."""

    location: str
    sha256: str | None = None


def stored_location(stored: str | StoredArchive) -> tuple[str, str | None]:
    """``(location, sha256)`` of what ``store`` returned."""
    if isinstance(stored, StoredArchive):
        return stored.location, stored.sha256
    return stored, None


def fetch_checked(target: BackupTarget, node: NodeAccess, location: str, sha256: str | None) -> FetchedArchive:
    """``target.fetch``, with the recorded digest when there is one. A target whose ``fetch``
    takes no ``sha256`` never returned one from ``store``, so there is nothing to hand it."""
    if sha256 is None:
        return target.fetch(node, location)
    return target.fetch(node, location, sha256=sha256)  # type: ignore[call-arg]


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

    def store(self, node: NodeAccess, archive: Archive) -> str | StoredArchive:
        """Keep the fresh archive (copy it off, ...) and return its location (with its digest, as a
        ``StoredArchive``, when the copy went through this process). A target that moves the
        archive away may delete the node volume here."""
        ...

    def fetch(self, node: NodeAccess, location: str) -> FetchedArchive:
        """Make the archive a volume on ``node.node`` for a restore; checks its integrity on the way.
        A target whose ``store`` returns a digest takes it back as ``sha256=`` (keyword) and must
        refuse an archive whose bytes do not match it."""
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
