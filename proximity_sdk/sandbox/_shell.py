"""`SandboxShell`: the sandbox nodes' shell, an SSH server on 127.0.0.1 running the stand-in tools.

Proximity reaches a node's shell over SSH (:class:`proximity_sdk.proxmox.shell.NodeShell`); the
sandbox answers on loopback with paramiko's server side, so the SDK's real SSH client path is the
one exercised. Every ``exec`` request runs ``/bin/sh -c <command>`` as the current user with the
node stand-ins (``pct``, ``pvesm``) first on ``PATH``: ``pct exec`` runs commands in a container
that is a directory under the sandbox (a chroot in a private mount namespace), with ``docker``,
``apk``, ``ss``… stand-ins inside that record their calls and pretend to succeed. Nothing runs
outside the sandbox directory.

Only key authentication with the one client key made at start is accepted, and clients check the
host key (``known_hosts`` text is handed out with the key). SFTP (how the SDK uploads files to a
node before ``pct push``) serves the real filesystem as the current user, as the node's sshd would.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import socket
import stat
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)

__all__ = ["SandboxShell"]

log = logging.getLogger("proximity_sdk.sandbox")

_CHUNK = 32 * 1024


def _private_key_text(key: paramiko.PKey) -> str:
    buffer = io.StringIO()
    key.write_private_key(buffer)
    return buffer.getvalue()


class _Server(paramiko.ServerInterface):
    def __init__(self, client_key: paramiko.PKey, run: Callable[[paramiko.Channel, str], None]) -> None:
        self._client_key = client_key
        self._run = run

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if key.get_name() == self._client_key.get_name() and key.asbytes() == self._client_key.asbytes():
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        text = command.decode("utf-8", "surrogateescape")
        threading.Thread(target=self._run, args=(channel, text), name="sandbox-shell-exec", daemon=True).start()
        return True


def _sftp_errno(exc: OSError) -> int:
    return int(paramiko.SFTPServer.convert_errno(exc.errno or 0))


class _FileHandle(paramiko.SFTPHandle):
    def __init__(self, path: str, flags: int, fh: IO[bytes]) -> None:
        super().__init__(flags)
        self._path = path
        self.readfile = fh
        self.writefile = fh

    def stat(self) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return _sftp_errno(exc)

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        try:
            paramiko.SFTPServer.set_file_attr(self._path, attr)
        except OSError as exc:
            return _sftp_errno(exc)
        return paramiko.sftp.SFTP_OK


class _Files(paramiko.SFTPServerInterface):
    """SFTP on the local filesystem, for the current user (what the SDK needs: create, write,
    chmod, stat, list, rename, remove)."""

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        mode = attr.st_mode if attr is not None and attr.st_mode is not None else 0o600
        try:
            fd = os.open(path, flags | getattr(os, "O_BINARY", 0), mode & 0o7777)
        except OSError as exc:
            return _sftp_errno(exc)
        access = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        fmode = (
            "rb" if access == os.O_RDONLY else ("ab" if flags & os.O_APPEND else "r+b" if access == os.O_RDWR else "wb")
        )
        return _FileHandle(path, flags, os.fdopen(fd, fmode))

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(path))
        except OSError as exc:
            return _sftp_errno(exc)

    def lstat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.lstat(path))
        except OSError as exc:
            return _sftp_errno(exc)

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        try:
            entries = []
            for name in os.listdir(path):
                attributes = paramiko.SFTPAttributes.from_stat(os.lstat(os.path.join(path, name)))
                attributes.filename = name
                entries.append(attributes)
            return entries
        except OSError as exc:
            return _sftp_errno(exc)

    def _do(self, action: Callable[[], object]) -> int:
        try:
            action()
        except OSError as exc:
            return _sftp_errno(exc)
        return paramiko.sftp.SFTP_OK

    def remove(self, path: str) -> int:
        return self._do(lambda: os.remove(path))

    def rename(self, oldpath: str, newpath: str) -> int:
        return self._do(lambda: os.rename(oldpath, newpath))

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self._do(lambda: os.replace(oldpath, newpath))

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        mode = attr.st_mode if attr is not None and attr.st_mode is not None else 0o755
        return self._do(lambda: os.mkdir(path, mode & 0o7777))

    def rmdir(self, path: str) -> int:
        return self._do(lambda: os.rmdir(path))

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return self._do(lambda: paramiko.SFTPServer.set_file_attr(path, attr))


class SandboxShell:
    """The SSH server of the sandbox's nodes, one loopback address per node. ``start(addresses)``,
    then ``port``, ``user``, ``client_key`` (a private key, PEM text) and ``known_hosts`` (text)."""

    def __init__(self, directory: Path, standins: Path) -> None:
        self.directory = directory
        self.state = directory / "state"
        self.standins = directory / "standins"
        #: what stands for the nodes' ``/``: their /etc/pve (the container configs), /var/log, ...
        self.root = directory / "root"
        self._source = standins
        self._host_key = paramiko.ECDSAKey.generate()
        self._client = paramiko.ECDSAKey.generate()
        self._sockets: list[socket.socket] = []
        self._transports: list[paramiko.Transport] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._acceptors: list[threading.Thread] = []
        self.port = 0
        #: the loopback addresses it answers on (one per node, so `pct` knows which node it serves)
        self.addresses: list[str] = ["127.0.0.1"]

    @property
    def user(self) -> str:
        import getpass

        return getpass.getuser()

    @property
    def client_key(self) -> str:
        return _private_key_text(self._client)

    @property
    def known_hosts(self) -> str:
        key = f"{self._host_key.get_name()} {self._host_key.get_base64()}"
        return "".join(f"[{address}]:{self.port} {key}\n" for address in self.addresses)

    def start(self, addresses: list[str] | None = None) -> None:
        """Listen on one port at every address (default 127.0.0.1 only)."""
        self._install_standins()
        self.addresses = list(addresses or ["127.0.0.1"])
        for _attempt in range(10):
            sockets: list[socket.socket] = []
            try:
                for address in self.addresses:
                    sockets.append(socket.create_server((address, sockets[0].getsockname()[1] if sockets else 0)))
            except OSError:  # the port is taken at another address: try another port
                for taken in sockets:
                    taken.close()
                continue
            break
        else:
            raise OSError(f"sandbox shell: no port free on all of {', '.join(self.addresses)}")
        self._sockets = sockets
        self.port = sockets[0].getsockname()[1]
        for listener in sockets:
            listener.settimeout(0.5)
            acceptor = threading.Thread(target=self._accept, args=(listener,), name="sandbox-shell", daemon=True)
            acceptor.start()
            self._acceptors.append(acceptor)

    def _install_standins(self) -> None:
        # A copy with the executable bits set: an installed wheel need not keep them.
        shutil.copytree(self._source, self.standins, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        for tools in ("node", "ct"):
            for tool in (self.standins / tools).iterdir():
                tool.chmod(tool.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.state.mkdir(parents=True, exist_ok=True)

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            transport = paramiko.Transport(connection)
            transport.add_server_key(self._host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _Files)
            with self._lock:
                self._transports.append(transport)
            try:
                transport.start_server(server=_Server(self._client, self._exec))
            except (paramiko.SSHException, EOFError, OSError) as exc:  # a client that went away
                log.debug("sandbox shell: handshake failed: %s", exc)
                transport.close()

    def environment(self) -> dict[str, str]:
        """What a command on a sandbox node sees."""
        return {
            "PATH": f"{self.standins / 'node'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.directory),
            "LANG": "C.UTF-8",
            "PROXIMITY_STANDIN_STATE": str(self.state),
            # the node's own files (/etc/pve, /var/log/proximity, ...) under this directory
            # (proximity_sdk/proxmox/console_log.py); the sandbox's Proxmox keeps its configs there
            "PROXIMITY_NODE_ROOT": str(self.root),
        }

    def _exec(self, channel: paramiko.Channel, command: str) -> None:
        env = self.environment()
        with contextlib.suppress(OSError, AttributeError):  # as sshd sets it: the stand-in finds its node by it
            sock = channel.get_transport().sock
            peer, local = getattr(sock, "getpeername")(), getattr(sock, "getsockname")()  # noqa: B009 - a socket here
            env["SSH_CONNECTION"] = f"{peer[0]} {peer[1]} {local[0]} {local[1]}"
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=self.directory,
            )
        except OSError as exc:
            with contextlib.suppress(OSError, EOFError):
                channel.sendall_stderr(f"sandbox shell: {exc}\n".encode())
                channel.send_exit_status(127)
                channel.close()
            return
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        pumps = [
            threading.Thread(target=self._feed, args=(channel, process.stdin), daemon=True),
            threading.Thread(target=self._drain, args=(process.stdout, channel.sendall), daemon=True),
            threading.Thread(target=self._drain, args=(process.stderr, channel.sendall_stderr), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        code = process.wait()
        for pump in pumps[1:]:
            pump.join()
        with contextlib.suppress(OSError, EOFError):
            channel.send_exit_status(code)
            channel.close()

    @staticmethod
    def _feed(channel: paramiko.Channel, stdin: IO[bytes]) -> None:
        try:
            while True:
                data = channel.recv(_CHUNK)
                if not data:
                    break
                stdin.write(data)
                stdin.flush()
        except (OSError, EOFError, ValueError):  # the command ended first, or the channel closed
            pass
        finally:
            with contextlib.suppress(OSError, ValueError):
                stdin.close()

    @staticmethod
    def _drain(stream: IO[bytes], send: Callable[[bytes], None]) -> None:
        try:
            while True:
                data = os.read(stream.fileno(), _CHUNK)
                if not data:
                    break
                send(data)
        except (OSError, EOFError):  # the client went away: let the command end on its own
            pass
        finally:
            stream.close()

    def close(self) -> None:
        self._closed.set()
        for listener in self._sockets:
            with contextlib.suppress(OSError):  # wakes a blocked accept() on Linux; close() alone would not
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for acceptor in self._acceptors:
            acceptor.join(5)
        with self._lock:
            transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()
