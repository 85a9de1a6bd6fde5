"""A target that keeps a copy of each archive elsewhere: copied off the node after vzdump (through
this process, over the node's SSH connection), pushed back to the node's storage for a restore.

Next to each archive ``<name>`` lies ``<name>.sha256`` (written once the copy is complete; a copy
in progress is ``<name>.part``), so ``verify`` and ``fetch`` detect a damaged copy. That file sits
on the same server as the archive: whoever can replace the one can replace the other. So
``store`` also returns the digest to Proximity, which records it in its database, and ``fetch``
checks the bytes against that record (``sha256=``) as well.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from typing import IO, Protocol

from proximity_sdk.backup_targets import Archive, FetchedArchive, NodeAccess, StoredArchive
from proximity_sdk.backup_targets.volumes import (
    check_backup_volid,
    delete_backup_volume,
    find_backup_volume,
    node_sftp,
    volume_path,
)
from proximity_sdk.errors import NotFoundError, ProximityError, ValidationError
from proximity_sftp.destinations import Files

__all__ = ["CHUNK", "CopyTarget"]

CHUNK = 1024 * 1024
_ARCHIVE = re.compile(r"^vzdump-lxc-(\d+)-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar(\.zst|\.gz|\.lzo)?$")


class Destination(Protocol):
    @property
    def base(self) -> str: ...

    def session(self) -> contextlib.AbstractContextManager[Files]: ...


def _copy(source: IO[bytes], sink: IO[bytes]) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        sink.write(chunk)
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _digest(files: Files, name: str) -> str | None:
    try:
        with files.open(name + ".sha256", "rb") as fh:
            return fh.read().decode().split()[0]
    except (FileNotFoundError, IndexError, UnicodeDecodeError):
        return None


class CopyTarget:
    def __init__(self, name: str, destination: Destination, *, staging_storage: str, keep_on_node: bool) -> None:
        self._name = name
        self._dest = destination
        self._staging = staging_storage
        self._keep = keep_on_node

    @property
    def name(self) -> str:
        return self._name

    @property
    def dump_storage(self) -> str:
        return self._staging

    def _filename(self, location: str) -> str:
        base, _, filename = location.rpartition("/")
        if base != self._dest.base or not _ARCHIVE.match(filename):
            raise ValidationError(
                f"{location!r} is not an archive of target {self._name!r} ({self._dest.base})",
                field="location",
                hint="The target's options changed since the backup was made",
            )
        return filename

    @contextlib.contextmanager
    def _files(self) -> Iterator[Files]:
        with self._dest.session() as files:
            yield files

    def store(self, node: NodeAccess, archive: Archive) -> StoredArchive:
        path = volume_path(node.shell, node.node, archive.volid)
        filename = archive.filename
        node.emit(f"copying {archive.volid} to {self._dest.base}")
        with node_sftp(node.shell, node.node) as sftp, self._files() as files:
            with sftp.open(path, "rb") as source:
                source.prefetch()
                with files.open(filename + ".part", "wb") as sink:
                    size, digest = _copy(source, sink)  # type: ignore[arg-type]
            files.rename(filename + ".part", filename)
            with files.open(filename + ".sha256", "wb") as fh:
                fh.write(f"{digest}  {filename}\n".encode())
        if archive.size_bytes is not None and size != archive.size_bytes:
            raise ProximityError(f"copied {size} bytes of {archive.volid}, but it has {archive.size_bytes}")
        node.emit(f"copied {size} bytes (sha256 {digest[:16]}…)")
        if not self._keep:
            delete_backup_volume(node.client, node.node, archive.volid, emit=node.emit)
        return StoredArchive(location=f"{self._dest.base}/{filename}", sha256=f"sha256:{digest}")

    def fetch(self, node: NodeAccess, location: str, *, sha256: str | None = None) -> FetchedArchive:
        filename = self._filename(location)
        volid = check_backup_volid(f"{self._staging}:backup/{filename}")
        if find_backup_volume(node.client, node.node, volid) is not None:
            node.emit(f"{volid} is still on node {node.node}: restoring from it")
            return FetchedArchive(volid=volid, temporary=False)
        path = volume_path(node.shell, node.node, volid)
        node.emit(f"copying {location} back to {volid}")
        with self._files() as files, node_sftp(node.shell, node.node) as sftp:
            expected = _digest(files, filename)
            if expected is None:
                raise NotFoundError(f"{location} has no checksum file: the copy is missing or incomplete")
            try:
                with files.open(filename, "rb") as source, sftp.open(path + ".part", "wb") as sink:
                    sink.set_pipelined(True)
                    _, digest = _copy(source, sink)  # type: ignore[arg-type]
                if digest != expected:
                    raise ProximityError(f"{location} is damaged: its sha256 is {digest}, not {expected}")
                if sha256 is not None and f"sha256:{digest}" != sha256:
                    raise ProximityError(
                        f"{location} is not the archive this backup made: its sha256 is {digest}, but "
                        f"{sha256.removeprefix('sha256:')} was recorded when it was stored (its checksum file "
                        "beside it matches: both were replaced)",
                        hint="Do not restore it; restore another backup and find out who wrote to the target",
                    )
                sftp.posix_rename(path + ".part", path)
            finally:
                with contextlib.suppress(OSError):
                    sftp.remove(path + ".part")
        return FetchedArchive(volid=volid, temporary=True)

    def verify(self, node: NodeAccess, location: str) -> int | None:
        filename = self._filename(location)
        with self._files() as files:
            expected = _digest(files, filename)
            if expected is None or files.size(filename) is None:
                return None
            with files.open(filename, "rb") as source:
                digest = hashlib.sha256()
                size = 0
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        return size if digest.hexdigest() == expected else None

    def delete(self, node: NodeAccess, location: str) -> bool:
        filename = self._filename(location)
        with self._files() as files:
            removed = files.remove(filename)
            files.remove(filename + ".sha256")
            files.remove(filename + ".part")
        return removed

    def list(self, node: NodeAccess, *, vmid: int | None = None) -> list[str]:
        with self._files() as files:
            names = files.names()
        return sorted(
            f"{self._dest.base}/{n}"
            for n in names
            if (found := _ARCHIVE.match(n)) and (vmid is None or int(found.group(1)) == vmid)
        )
