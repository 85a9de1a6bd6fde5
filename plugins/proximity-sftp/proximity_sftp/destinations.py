"""Where copies go: a directory on an SFTP server, or a local directory. Both look like a small
file API (open for reading or writing, stat, rename, remove, list) inside one ``session()``."""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

import paramiko

from proximity_sdk.errors import HostKeyError, UnreachableError

if TYPE_CHECKING:
    from proximity_sftp.config import SftpOptions

__all__ = ["DirectoryDestination", "Files", "SftpDestination"]


class Files(Protocol):
    def open(self, name: str, mode: str) -> IO[bytes]: ...
    def size(self, name: str) -> int | None: ...
    def rename(self, old: str, new: str) -> None: ...
    def remove(self, name: str) -> bool: ...
    def names(self) -> list[str]: ...


class _SftpFiles:
    def __init__(self, sftp: paramiko.SFTPClient, root: str) -> None:
        self._sftp = sftp
        self._root = root

    def _path(self, name: str) -> str:
        return posixpath.join(self._root, posixpath.basename(name))

    def open(self, name: str, mode: str) -> IO[bytes]:
        handle = self._sftp.open(self._path(name), mode)
        if "w" in mode:
            handle.set_pipelined(True)  # writes do not wait for each acknowledgement
        else:
            handle.prefetch()
        return handle  # type: ignore[return-value]

    def size(self, name: str) -> int | None:
        try:
            return self._sftp.stat(self._path(name)).st_size
        except FileNotFoundError:
            return None

    def rename(self, old: str, new: str) -> None:
        self._sftp.posix_rename(self._path(old), self._path(new))

    def remove(self, name: str) -> bool:
        try:
            self._sftp.remove(self._path(name))
        except FileNotFoundError:
            return False
        return True

    def names(self) -> list[str]:
        return self._sftp.listdir(self._root)


class SftpDestination:
    def __init__(self, options: SftpOptions) -> None:
        self._o = options

    @property
    def base(self) -> str:
        return f"sftp://{self._o.user}@{self._o.host}:{self._o.port}{self._o.path}"

    @contextlib.contextmanager
    def session(self) -> Iterator[Files]:
        o = self._o
        client = paramiko.SSHClient()
        client.load_host_keys(os.path.expanduser(o.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                o.host,
                port=o.port,
                username=o.user,
                key_filename=os.path.expanduser(o.key_file) if o.key_file else None,
                password=o.password.get_secret_value() if o.password else None,
                look_for_keys=False,
                allow_agent=False,
                timeout=o.timeout,
                banner_timeout=o.timeout,
                auth_timeout=o.timeout,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyError(
                f"the SFTP server {o.host}:{o.port} has another host key than known_hosts says: {exc}"
            ) from None
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise HostKeyError(
                    f"the SFTP server {o.host}:{o.port} is not in {o.known_hosts}",
                    hint="Add its host key to that known_hosts file",
                ) from None
            raise UnreachableError(f"cannot log in to the SFTP server {o.host}:{o.port}: {exc}") from None
        except (OSError, TimeoutError) as exc:
            client.close()
            raise UnreachableError(f"cannot reach the SFTP server {o.host}:{o.port}: {exc}") from None
        try:
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(o.timeout)  # type: ignore[union-attr]
            try:
                sftp.stat(o.path)
            except FileNotFoundError:
                sftp.mkdir(o.path, mode=0o700)
            yield _SftpFiles(sftp, o.path)
        finally:
            client.close()


class _LocalFiles:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, name: str) -> Path:
        return self._root / Path(name).name

    def open(self, name: str, mode: str) -> IO[bytes]:
        if "w" in mode:
            fd = os.open(self._path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            return os.fdopen(fd, "wb")
        return self._path(name).open("rb")

    def size(self, name: str) -> int | None:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            return None

    def rename(self, old: str, new: str) -> None:
        os.replace(self._path(old), self._path(new))

    def remove(self, name: str) -> bool:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    def names(self) -> list[str]:
        return [p.name for p in self._root.iterdir()]


class DirectoryDestination:
    def __init__(self, path: str) -> None:
        self._root = Path(path)

    @property
    def base(self) -> str:
        return f"file://{self._root}"

    @contextlib.contextmanager
    def session(self) -> Iterator[Files]:
        try:
            self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise UnreachableError(f"cannot use the directory {self._root}: {exc}") from None
        yield _LocalFiles(self._root)
