"""``px.hosts`` and ``px.nodes``: registered Proxmox hosts and the nodes of their clusters."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from proximity_sdk._connections import ClientPool, ShellPool, client_for
from proximity_sdk.errors import ProximityError, ValidationError
from proximity_sdk.models._listing import Listing
from proximity_sdk.models._requests import validate_request
from proximity_sdk.models.host import Host, HostAdd, HostCredentials, HostUpdate, Node
from proximity_sdk.models.host_check import HostCheck
from proximity_sdk.models.proxmox import PveVersion, StorageStatus
from proximity_sdk.models.registries import RegistryCredential, RegistrySettings
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.validate import check_node_name
from proximity_sdk.store import Store

__all__ = ["Hosts", "Nodes"]


def read_ca_file(ca_file: str | Path) -> str:
    """The PEM text of a CA file, read by the caller's side (so it can travel to an agent too)."""
    path = Path(ca_file).expanduser()
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ValidationError(
            f"CA file {str(path)!r} does not exist", field="ca_file",
            hint="Copy the cluster CA (/etc/pve/pve-root-ca.pem on a node) and give its path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"CA file {str(path)!r} cannot be read: {exc}", field="ca_file") from None


def fetch_nodes(client: ProxmoxClient, host_id: str) -> list[Node]:
    """The host's nodes as Proxmox reports them now: one ``/nodes`` call, plus the version of each online node."""
    now = datetime.now(UTC)
    nodes = []
    for entry in client.nodes():
        version = None
        if entry.online:
            version = PveVersion.model_validate(client.get(f"/nodes/{entry.node}/version")).version
        nodes.append(Node(host_id=host_id, name=entry.node, status=entry.status, cpus=entry.maxcpu,
                          maxmem=entry.maxmem, mem=entry.mem, maxdisk=entry.maxdisk, disk=entry.disk,
                          pve_version=version, last_seen_at=now))
    return nodes


class Hosts:
    """Proxmox hosts: an API endpoint each, a single node or a whole cluster. One is the default."""

    def __init__(self, store: Store, clients: ClientPool, shells: ShellPool) -> None:
        self._store = store
        self._clients = clients
        self._shells = shells

    def add(self, name: str, *, url: str, token_id: str | None = None, token_secret: str | None = None,
            user: str | None = None, password: str | None = None, verify_tls: bool = True,
            ca_file: str | Path | None = None, ca_pem: str | None = None, ssh: SshAccess | None = None,
            check: bool = True) -> Host:
        """Register a host. An API token (``token_id="root@pam!px"`` + ``token_secret``) is preferred
        to ``user`` + ``password``. TLS is verified; give the cluster CA with ``ca_file``.

        With ``check`` (the default) the host must answer with these credentials first, and its
        nodes are synced; nothing is stored when it does not. The first host becomes the default.
        """
        if ca_file is not None and ca_pem is not None:
            raise ValidationError("give ca_file or ca_pem, not both", field="ca_file")
        pem = read_ca_file(ca_file) if ca_file is not None else ca_pem
        request = validate_request(HostAdd, None, dict(
            name=name, url=url, token_id=token_id, token_secret=token_secret, user=user, password=password,
            verify_tls=verify_tls, ca_pem=pem, ssh=ssh), what="host")
        nodes: list[Node] = []
        if check:
            creds = HostCredentials(host_id="new", name=request.name, url=request.url, auth=request.auth,
                                    token_id=request.token_id, token_secret=request.token_secret,
                                    user=request.user, password=request.password,
                                    verify_tls=request.verify_tls, ca_pem=request.ca_pem)
            with client_for(creds, ca_dir=self._clients.ca_dir) as client:
                client.version()
                nodes = fetch_nodes(client, "new")
        host = self._store.hosts.add(request)
        if nodes:
            self._store.nodes.replace_for_host(host.id, [n.model_copy(update={"host_id": host.id}) for n in nodes])
        return host

    def get(self, host: str) -> Host:
        """A host by id or name."""
        return self._store.hosts.get(host)

    def list(self) -> Listing[Host]:
        """Every host, the default first. Never carries secrets."""
        return Listing(self._store.hosts.list())

    def default(self) -> Host:
        return self._store.hosts.default()

    def set_default(self, host: str) -> Host:
        return self._store.hosts.set_default(host)

    def update(self, host: str, *, ca_file: str | Path | None = None, **fields: Any) -> Host:
        """Change some fields (``url``, ``token_id``/``token_secret``, ``user``/``password``,
        ``verify_tls``, ``ca_file``, ``ssh``, ``name``). The next call reconnects with them."""
        if ca_file is not None:
            if "ca_pem" in fields:
                raise ValidationError("give ca_file or ca_pem, not both", field="ca_file")
            fields["ca_pem"] = read_ca_file(ca_file)
        current = self._store.hosts.get(host)
        updated = self._store.hosts.update(current.id, validate_request(HostUpdate, None, fields, what="host update"))
        self._clients.forget(current.id)
        self._shells.forget(current.id)
        return updated

    def set_registries(self, host: str, *, mirrors: Sequence[str] | None = None,
                       insecure: Sequence[str] | None = None, cas: dict[str, str] | None = None,
                       credentials: Sequence[RegistryCredential | dict[str, str]] | None = None,
                       ) -> RegistrySettings:
        """Replace the container registry settings of ``host``'s apps: Docker Hub ``mirrors``
        (``http(s)://host[:port]``), ``insecure`` registries (``host[:port]``, plain HTTP), a CA per
        registry (``cas={"reg.lan:5000": pem}``) and ``credentials`` (``registry``, ``username``,
        ``password`` or token; stored encrypted, never shown). Every argument left out is cleared.
        They reach each app container when its runtime is installed (the next deploy, clone or restore)."""
        settings = validate_request(RegistrySettings, None, dict(
            mirrors=[*(mirrors or ())], insecure=[*(insecure or ())], cas=cas or {},
            credentials=[*(credentials or ())]),
            what="registry settings")
        current = self._store.hosts.get(host)
        self._store.hosts.set_registries(current.id, settings)
        return self._store.hosts.registries(current.id)

    def registries(self, host: str) -> RegistrySettings:
        """The registry settings of a host (passwords shown as ``**********``)."""
        return self._store.hosts.registries(self._store.hosts.get(host).id)

    def remove(self, host: str) -> None:
        """Forget a host (refused while it still has apps)."""
        current = self._store.hosts.get(host)
        self._store.hosts.remove(current.id)
        self._clients.forget(current.id)
        self._shells.forget(current.id)

    def test(self, host: str) -> HostCheck:
        """Connect with the stored credentials: version and nodes, or why it failed. Never raises
        for a connection problem (that is the answer); raises NotFoundError for an unknown host."""
        current = self._store.hosts.get(host)
        client = self._clients.get(current.id)
        before = client.request_count
        started = time.perf_counter()
        try:
            version = client.version()
            nodes = client.nodes()
        except ProximityError as exc:
            return HostCheck(host_id=current.id, name=current.name, ok=False,
                             elapsed_ms=(time.perf_counter() - started) * 1000,
                             requests=client.request_count - before, error=str(exc),
                             error_kind=type(exc).__name__)
        return HostCheck(host_id=current.id, name=current.name, ok=True, version=version.version,
                         nodes=[n.node for n in nodes], online_nodes=[n.node for n in nodes if n.online],
                         elapsed_ms=(time.perf_counter() - started) * 1000,
                         requests=client.request_count - before)

    def sync_nodes(self, host: str | None = None) -> Listing[Node]:
        """Read the host's nodes (status, CPUs, memory, disk, PVE version) and store them.
        ``host=None``: the default host."""
        current = self._store.hosts.resolve(host)
        nodes = fetch_nodes(self._clients.get(current.id), current.id)
        return Listing(self._store.nodes.replace_for_host(current.id, nodes))


class Nodes:
    """Nodes as last synced (``px.hosts.sync_nodes`` refreshes them)."""

    def __init__(self, store: Store, clients: ClientPool) -> None:
        self._store = store
        self._clients = clients

    def list(self, host: str | None = None) -> Listing[Node]:
        """Nodes of one host (id or name), or of every host."""
        return Listing(self._store.nodes.list(host))

    def get(self, host: str, name: str) -> Node:
        return self._store.nodes.get(host, name)

    def storages(self, node: str, *, host: str | None = None, content: str | None = None,
                 ) -> Listing[StorageStatus]:
        """The storages a node sees now (live), optionally only those holding ``content``
        (``rootdir``, ``vztmpl``, ``backup``, ...)."""
        current = self._store.hosts.resolve(host)
        return Listing(self._clients.get(current.id).storage_list(check_node_name(node), content=content))
