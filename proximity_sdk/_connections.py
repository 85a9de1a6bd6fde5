"""One Proxmox API client per host, built from the stored credentials and reused."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

from proximity_sdk.errors import ValidationError
from proximity_sdk.models.host import HostCredentials
from proximity_sdk.proxmox._ssh import fingerprint
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.shell import NodeShell
from proximity_sdk.proxmox.task_watch import NodeTaskWatch
from proximity_sdk.store import Store
from proximity_sdk.store.host_keys_repo import known_hosts_lines, pin_key

__all__ = ["ClientPool", "ShellPool", "client_for"]


def client_for(creds: HostCredentials, *, ca_dir: Path) -> ProxmoxClient:
    """A client for these credentials; a stored CA is written to ``ca_dir`` (requests wants a path)."""
    ca_file: str | None = None
    if creds.ca_pem and creds.verify_tls:
        path = ca_dir / f"{creds.host_id}.pem"
        path.write_text(creds.ca_pem)
        ca_file = str(path)
    if creds.auth == "token":
        assert creds.token_secret is not None
        return ProxmoxClient(
            url=creds.url,
            token_id=creds.token_id,
            token_secret=creds.token_secret.get_secret_value(),
            verify_tls=creds.verify_tls,
            ca_file=ca_file,
        )
    assert creds.password is not None
    return ProxmoxClient(
        url=creds.url,
        user=creds.user,
        password=creds.password.get_secret_value(),
        verify_tls=creds.verify_tls,
        ca_file=ca_file,
    )


class ClientPool:
    """Clients by host id. ``forget`` after a host changes so the next call reconnects.

    A host with SSH access gets its tasks watched on their nodes through ``shells``
    (``ProxmoxClient.task_watch``): its waits end when the task does, not at the next poll."""

    def __init__(self, store: Store, shells: ShellPool | None = None) -> None:
        self._store = store
        self._shells = shells
        self._clients: dict[str, ProxmoxClient] = {}
        self._lock = threading.Lock()
        self._ca_dir = Path(tempfile.mkdtemp(prefix="proximity-ca-"))

    @property
    def ca_dir(self) -> Path:
        return self._ca_dir

    def get(self, host_id: str) -> ProxmoxClient:
        with self._lock:
            client = self._clients.get(host_id)
            if client is None:
                creds = self._store.hosts.credentials(host_id)
                client = client_for(creds, ca_dir=self._ca_dir)
                if creds.ssh is not None and self._shells is not None:
                    shells = self._shells
                    client.task_watch = NodeTaskWatch(lambda: shells.get(host_id))
                self._clients[host_id] = client
            return client

    def forget(self, host_id: str) -> None:
        with self._lock:
            client = self._clients.pop(host_id, None)
        if client is not None:
            _close(client)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            _close(client)
        shutil.rmtree(self._ca_dir, ignore_errors=True)


def _close(client: ProxmoxClient) -> None:
    if client.task_watch is not None:
        client.task_watch.close()
    client.close()


class ShellPool:
    """One node shell (SSH connections to the host's nodes, reused) per host."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._shells: dict[str, NodeShell] = {}
        self._lock = threading.Lock()

    def get(self, host_id: str) -> NodeShell:
        with self._lock:
            shell = self._shells.get(host_id)
            if shell is None:
                host = self._store.hosts.credentials(host_id)  # with the SSH key, when kept encrypted
                if host.ssh is None:
                    raise ValidationError(
                        f"host {host.name!r} has no SSH access configured; deploying and managing apps needs the "
                        "node shell",
                        field="ssh",
                        hint="Give it with px.hosts.update(host, ssh=SshAccess(key_file=..., known_hosts=...))",
                    )
                store, host_name = self._store, host.name

                def pinned(host_id: str = host_id) -> str:
                    return known_hosts_lines(store, host_id)

                def pin(line: str, host_id: str = host_id) -> None:
                    import paramiko  # loaded with the node shell already

                    name, key_type, key = line.split()[:3]
                    entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
                    pin_key(
                        store,
                        host_id,
                        hostname=name,
                        key_type=key_type,
                        key=key,
                        fingerprint=fingerprint(entry.key) if entry is not None else "",
                    )

                shell = NodeShell(
                    host.ssh,
                    pinned_known_hosts=pinned,
                    on_host_key_pinned=pin,
                    accept_hint=f"px.hosts.accept_host_key({host_name!r}, node=..., "
                    "fingerprint='SHA256:...') or `proximity hosts accept-key "
                    f"{host_name} NODE SHA256:...`",
                )
                self._shells[host_id] = shell
            return shell

    def forget(self, host_id: str) -> None:
        with self._lock:
            shell = self._shells.pop(host_id, None)
        if shell is not None:
            shell.close()

    def close(self) -> None:
        with self._lock:
            shells, self._shells = list(self._shells.values()), {}
        for shell in shells:
            shell.close()
