"""SSH connections to Proxmox nodes: private keys, known-hosts checking, pinning on first use.

Private to the node shell (``shell.py``). Every paramiko failure leaves here as an SDK error.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

from proximity_sdk.errors import (
    AuthenticationError,
    HostKeyError,
    NodeShellError,
    UnreachableError,
    ValidationError,
)
from proximity_sdk.models.ssh import looks_like_key_text, looks_like_known_hosts_text

__all__ = ["HostKeyStore", "fingerprint", "known_hosts_name", "load_private_key", "open_client", "server_key"]

_log = logging.getLogger("proximity_sdk.proxmox.shell")

_KEY_CLASSES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def load_private_key(value: str, *, passphrase: str | None = None) -> paramiko.PKey:
    """A private key from its text (PEM / OpenSSH format) or from a file path."""
    if looks_like_key_text(value):
        text, source = value, "the given key text"
    else:
        path = Path(value).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(
                f"cannot read SSH private key file {str(path)!r}: {exc.strerror or exc}",
                field="key_file",
                hint="Give the path of a readable private key file, or the key's text itself",
            ) from None
        source = f"key file {str(path)!r}"
    problems: list[str] = []
    for cls in _KEY_CLASSES:
        try:
            return cls.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.PasswordRequiredException:
            raise ValidationError(
                f"the SSH private key in {source} is encrypted and no passphrase was given",
                field="key_file",
                hint="Pass the passphrase, or use an unencrypted key dedicated to Proximity",
            ) from None
        except (paramiko.SSHException, ValueError) as exc:
            problems.append(f"{cls.__name__}: {exc}")
    raise ValidationError(
        f"{source} does not hold a usable SSH private key (Ed25519, ECDSA or RSA)",
        field="key_file",
        hint="Use a key made by ssh-keygen (OpenSSH or PEM format)",
    )


class HostKeyStore:
    """The known host keys: a known_hosts file, or known_hosts text held in memory.

    With a file, keys are re-read at each connect (other processes may have pinned keys) and
    keys pinned on first use are appended to it. With text, pinned keys stay in memory and are
    reported to ``on_pin`` as known_hosts lines so the caller can store them.
    """

    def __init__(
        self,
        source: str | None,
        *,
        text: bool | None = None,
        on_pin: Callable[[str], None] | None = None,
        pinned: Callable[[], str] | None = None,
        accept_hint: str | None = None,
    ) -> None:
        """``source`` is a path or known_hosts text; ``text=None`` tells them apart by content.
        ``pinned``: more known_hosts lines, read at each connect (the keys pinned in the database;
        they win over ``source`` for the same name and key type); ``accept_hint``: how to accept a
        changed key, for the error that reports one."""
        self._lock = threading.Lock()
        self._on_pin = on_pin
        self._pinned = pinned
        self.accept_hint = accept_hint
        self._memory: paramiko.HostKeys | None = None
        self._path: Path | None = None
        if text is None:
            text = source is not None and looks_like_known_hosts_text(source)
        if text:
            source = source or ""
            self._memory = paramiko.HostKeys()
            for number, line in enumerate(source.splitlines(), start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
                if entry is None:
                    raise ValidationError(
                        f"known_hosts line {number} is not a host key entry",
                        field="known_hosts",
                        hint="Give lines as ssh-keyscan prints them: '<host> <key type> <base64 key>'",
                    )
                for name in entry.hostnames:
                    self._memory.add(name, entry.key.get_name(), entry.key)
        else:
            self._path = Path(source).expanduser() if source else Path.home() / ".ssh" / "known_hosts"

    def describe(self) -> str:
        return str(self._path) if self._path is not None else "the given known_hosts text"

    def load_into(self, client: paramiko.SSHClient) -> None:
        known = client.get_host_keys()
        if self._memory is not None:
            with self._lock:
                for name, keys in self._memory.items():
                    for key_type in keys:
                        known.add(name, key_type, keys[key_type])
        else:
            self._load_file(known)
        if self._pinned is not None:
            for number, line in enumerate(self._pinned().splitlines(), start=1):
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number) if line.strip() else None
                if entry is not None:
                    for name in entry.hostnames:
                        known.add(name, entry.key.get_name(), entry.key)

    def _load_file(self, known: paramiko.HostKeys) -> None:
        assert self._path is not None
        if self._path.exists():
            try:
                known.load(str(self._path))
            except (OSError, paramiko.SSHException) as exc:
                raise ValidationError(
                    f"cannot read known_hosts file {str(self._path)!r}: {exc}",
                    field="known_hosts",
                    hint="Fix or replace the file (ssh-keyscan prints valid lines)",
                ) from None

    def pin(self, hostname: str, key: paramiko.PKey) -> None:
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            if self._pinned is not None:
                pass  # the database keeps it (on_pin): never a file of this machine alone
            elif self._memory is not None:
                self._memory.add(hostname, key.get_name(), key)
            else:
                assert self._path is not None
                self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as fh:
                    fh.write(line)
        _log.warning(
            "pinned SSH host key %s %s for %s (trust on first use)",
            key.get_name(),
            fingerprint(key),
            hostname,
        )
        if self._on_pin is not None:
            self._on_pin(line)


class _Policy(paramiko.MissingHostKeyPolicy):
    """Unknown host keys: refused, or pinned when trust on first use was asked for."""

    def __init__(self, store: HostKeyStore, *, trust_on_first_use: bool, node: str) -> None:
        self._store = store
        self._tofu = trust_on_first_use
        self._node = node

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if not self._tofu:
            raise HostKeyError(
                f"the SSH host key of node {self._node} ({hostname}, {key.get_name()} {fingerprint(key)}) "
                f"is not in {self._store.describe()}; connection refused"
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        self._store.pin(hostname, key)


def open_client(
    *,
    node: str,
    address: str,
    port: int,
    user: str,
    pkey: paramiko.PKey | None,
    store: HostKeyStore,
    trust_on_first_use: bool,
    connect_timeout: float,
) -> paramiko.SSHClient:
    """A connected, authenticated SSH client for ``node``; SDK errors on every failure."""
    client = paramiko.SSHClient()
    store.load_into(client)
    client.set_missing_host_key_policy(_Policy(store, trust_on_first_use=trust_on_first_use, node=node))
    where = f"{user}@{address}:{port}"
    try:
        sock = socket.create_connection((address.strip("[]"), port), timeout=connect_timeout)
        # Without TCP_NODELAY every command waits out the peer's delayed ACK (~40 ms each).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.connect(
            hostname=address.strip("[]"),
            port=port,
            sock=sock,
            username=user,
            pkey=pkey,
            timeout=connect_timeout,
            banner_timeout=connect_timeout,
            auth_timeout=connect_timeout,
            allow_agent=pkey is None,
            look_for_keys=pkey is None,
        )
    except HostKeyError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(
            f"the SSH host key of node {node} ({where}) CHANGED: it presents {exc.key.get_name()} "
            f"{fingerprint(exc.key)}, but {store.describe()} holds {fingerprint(exc.expected_key)}; "
            "connection refused",
            hint="If the node was reinstalled, verify the new key out of band and replace the old entry; "
            "otherwise someone may be intercepting the connection"
            + (f". To accept it: {store.accept_hint}" if store.accept_hint else ""),
        ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise AuthenticationError(
            f"node {node} refused SSH login as {where}: {exc}",
            hint="Check that the configured key's public half is in the node's authorized_keys for that user",
        ) from None
    except (TimeoutError, OSError, EOFError) as exc:
        client.close()
        raise UnreachableError(
            f"cannot reach node {node} over SSH at {where}: {exc}",
            hint="Check the node's SSH address (SshAccess.addresses), port, and that sshd runs there",
        ) from None
    except paramiko.SSHException as exc:
        client.close()
        raise NodeShellError(f"SSH handshake with node {node} at {where} failed: {exc}") from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(30)
    _log.debug("connected to node %s at %s", node, where)
    return client


def known_hosts_name(address: str, port: int) -> str:
    """The name a host key is kept under (as OpenSSH and paramiko look it up)."""
    bare = address.strip("[]")
    return bare if port == 22 else f"[{bare}]:{port}"


def server_key(*, node: str, address: str, port: int, timeout: float) -> paramiko.PKey:
    """The host key the node's sshd presents now (a key exchange, no login)."""
    where = f"{address}:{port}"
    try:
        sock = socket.create_connection((address.strip("[]"), port), timeout=timeout)
    except OSError as exc:
        raise UnreachableError(
            f"cannot reach node {node} over SSH at {where}: {exc}",
            hint="Check the node's SSH address (SshAccess.addresses), port, and that sshd runs there",
        ) from None
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise NodeShellError(f"SSH key exchange with node {node} at {where} failed: {exc}") from None
    finally:
        transport.close()
