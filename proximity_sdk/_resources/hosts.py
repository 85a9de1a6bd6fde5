"""``px.hosts`` and ``px.nodes``: registered Proxmox hosts and the nodes of their clusters."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from proximity_sdk._api.hosts import HostsAPI, NodesAPI
from proximity_sdk._connections import ClientPool, ShellPool, client_for
from proximity_sdk.backup_targets.proxmox_storage import DEFAULT_BACKUP_STORAGE
from proximity_sdk.errors import HostKeyError, ProximityError, ValidationError
from proximity_sdk.models._listing import Listing
from proximity_sdk.models._requests import host_ca_pem, validate_request
from proximity_sdk.models.host import Host, HostAdd, HostCredentials, HostUpdate, Node
from proximity_sdk.models.host_check import HostCheck, PrivilegeGap
from proximity_sdk.models.proxmox import PveNode, PveVersion, StorageStatus
from proximity_sdk.models.registries import RegistryCredential, RegistrySettings
from proximity_sdk.models.ssh import SshAccess, SshHostKey
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.oci import OCI_MIN_VERSION, parse_version
from proximity_sdk.proxmox.privileges import (
    MissingPrivilege,
    describe_missing,
    missing_privileges,
    raise_for_missing,
    required_privileges,
)
from proximity_sdk.proxmox.validate import check_node_name
from proximity_sdk.store import Store
from proximity_sdk.store.host_keys_repo import pinned_keys, replace_keys

__all__ = ["Hosts", "Nodes"]


def fetch_nodes(client: ProxmoxClient, host_id: str, entries: list[PveNode] | None = None) -> list[Node]:
    """The host's nodes as Proxmox reports them now: one ``/nodes`` call (unless ``entries`` is its
    answer already), plus the version of each online node."""
    now = datetime.now(UTC)
    nodes = []
    for entry in client.nodes() if entries is None else entries:
        version = None
        if entry.online:
            version = PveVersion.model_validate(client.get(f"/nodes/{entry.node}/version")).version
        nodes.append(
            Node(
                host_id=host_id,
                name=entry.node,
                status=entry.status,
                cpus=entry.maxcpu,
                maxmem=entry.maxmem,
                mem=entry.mem,
                maxdisk=entry.maxdisk,
                disk=entry.disk,
                pve_version=version,
                last_seen_at=now,
            )
        )
    return nodes


def privilege_gaps(client: ProxmoxClient, store: Store, nodes: list[Node]) -> list[MissingPrivilege]:
    """What the client's credentials lack of the privileges Proximity needs on these nodes, with the
    storages and bridge of the settings (``proximity_sdk.proxmox.privileges``)."""
    settings = store.settings.get()
    versions = {n.name: parse_version(n.pve_version) for n in nodes}
    requirements = required_privileges(
        nodes=[n.name for n in nodes],
        rootfs_storage=settings.rootfs_storage,
        template_storage=settings.template_storage,
        backup_storages=[DEFAULT_BACKUP_STORAGE],
        bridge=settings.bridge,
        # check_vnet_access came with PVE 8.0 (pve-guest-common aabf879); an unreadable version counts
        sdn=any(v is None or v[0] >= 8 for v in versions.values()),
        oci_nodes=[name for name, v in versions.items() if v is not None and v[:2] >= OCI_MIN_VERSION],
    )
    return missing_privileges(client, requirements)


def _who(creds: HostCredentials | Host) -> str:
    return f"{'token ' + creds.token_id if creds.token_id else 'user ' + str(creds.user)} on host {creds.name!r}"


class Hosts(HostsAPI):
    def __init__(self, store: Store, clients: ClientPool, shells: ShellPool) -> None:
        self._store = store
        self._clients = clients
        self._shells = shells

    def add(
        self,
        name: str,
        *,
        url: str,
        token_id: str | None = None,
        token_secret: str | None = None,
        user: str | None = None,
        password: str | None = None,
        verify_tls: bool = True,
        ca_file: str | Path | None = None,
        ca_pem: str | None = None,
        ssh: SshAccess | None = None,
        check: bool = True,
    ) -> Host:
        pem = ca_pem if ca_file is None else host_ca_pem(ca_file, ca_pem_given=ca_pem is not None)
        request = validate_request(
            HostAdd,
            None,
            dict(
                name=name,
                url=url,
                token_id=token_id,
                token_secret=token_secret,
                user=user,
                password=password,
                verify_tls=verify_tls,
                ca_pem=pem,
                ssh=ssh,
            ),
            what="host",
        )
        nodes: list[Node] = []
        if check:
            creds = HostCredentials(
                host_id="new",
                name=request.name,
                url=request.url,
                auth=request.auth,
                token_id=request.token_id,
                token_secret=request.token_secret,
                user=request.user,
                password=request.password,
                verify_tls=request.verify_tls,
                ca_pem=request.ca_pem,
            )
            with client_for(creds, ca_dir=self._clients.ca_dir) as client:
                client.version()
                nodes = fetch_nodes(client, "new")
                raise_for_missing(privilege_gaps(client, self._store, nodes), who=_who(creds))
        host = self._store.hosts.add(request)
        if nodes:
            self._store.nodes.replace_for_host(host.id, [n.model_copy(update={"host_id": host.id}) for n in nodes])
        return host

    def get(self, host: str) -> Host:
        return self._store.hosts.get(host)

    def list(self) -> Listing[Host]:
        return Listing(self._store.hosts.list())

    def default(self) -> Host:
        return self._store.hosts.default()

    def set_default(self, host: str) -> Host:
        return self._store.hosts.set_default(host)

    def update(self, host: str, *, ca_file: str | Path | None = None, **fields: Any) -> Host:
        if ca_file is not None:
            fields["ca_pem"] = host_ca_pem(ca_file, ca_pem_given="ca_pem" in fields)
        current = self._store.hosts.get(host)
        updated = self._store.hosts.update(current.id, validate_request(HostUpdate, None, fields, what="host update"))
        self._clients.forget(current.id)
        self._shells.forget(current.id)
        return updated

    def set_registries(
        self,
        host: str,
        *,
        mirrors: Sequence[str] | None = None,
        insecure: Sequence[str] | None = None,
        cas: dict[str, str] | None = None,
        credentials: Sequence[RegistryCredential | dict[str, str]] | None = None,
    ) -> RegistrySettings:
        """Replace the container registry settings of ``host``'s apps: Docker Hub ``mirrors``
        (``http(s)://host[:port]``), ``insecure`` registries (``host[:port]``, plain HTTP), a CA per
        registry (``cas={"reg.lan:5000": pem}``) and ``credentials`` (``registry``, ``username``,
        ``password`` or token; stored encrypted, never shown). Every argument left out is cleared.
        They reach each app container when its runtime is installed (the next deploy, clone or restore)."""
        settings = validate_request(
            RegistrySettings,
            None,
            dict(
                mirrors=[*(mirrors or ())],
                insecure=[*(insecure or ())],
                cas=cas or {},
                credentials=[*(credentials or ())],
            ),
            what="registry settings",
        )
        current = self._store.hosts.get(host)
        self._store.hosts.set_registries(current.id, settings)
        return self._store.hosts.registries(current.id)

    def registries(self, host: str) -> RegistrySettings:
        """The registry settings of a host (passwords shown as ``**********``)."""
        return self._store.hosts.registries(self._store.hosts.get(host).id)

    def remove(self, host: str) -> None:
        current = self._store.hosts.get(host)
        self._store.hosts.remove(current.id)
        self._clients.forget(current.id)
        self._shells.forget(current.id)

    def host_keys(self, host: str) -> Listing[SshHostKey]:
        """The SSH host keys pinned in the database for the host's nodes."""
        current = self._store.hosts.get(host)
        return Listing(
            SshHostKey(hostname=k.hostname, key_type=k.key_type, fingerprint=k.fingerprint, pinned_at=k.pinned_at)
            for k in pinned_keys(self._store, current.id)
        )

    def accept_host_key(self, host: str, *, node: str, fingerprint: str) -> SshHostKey:
        """Accept the SSH host key ``node`` presents now, after a reinstall changed it: connects
        (key exchange only), checks the key's fingerprint is the ``fingerprint`` you verified out
        of band (``ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`` on the node's console), and
        pins it in the database in place of the old keys of that address. Refused (HostKeyError)
        when the node presents another key: someone may be in between."""
        from proximity_sdk.proxmox._ssh import fingerprint as fingerprint_of
        from proximity_sdk.proxmox._ssh import known_hosts_name, server_key

        check_node_name(node)
        if not isinstance(fingerprint, str) or not fingerprint.startswith("SHA256:"):
            raise ValidationError(
                "fingerprint must be an OpenSSH SHA256 fingerprint ('SHA256:...')",
                field="fingerprint",
                hint="ssh-keygen -lf <the node's public host key> prints it",
            )
        current = self._store.hosts.get(host)
        access = self._store.hosts.credentials(current.id).ssh
        if access is None:
            raise ValidationError(f"host {current.name!r} has no SSH access configured", field="ssh")
        address = access.address_of(node)
        key = server_key(node=node, address=address, port=access.port, timeout=access.connect_timeout)
        seen = fingerprint_of(key)
        if seen != fingerprint.strip():
            raise HostKeyError(
                f"node {node} ({address}) presents {key.get_name()} {seen}, not {fingerprint.strip()}: nothing "
                "accepted",
                hint="Check the fingerprint on the node's console; a different one means someone may "
                "be intercepting the connection",
            )
        name = known_hosts_name(address, access.port)
        replace_keys(
            self._store, current.id, hostname=name, key_type=key.get_name(), key=key.get_base64(), fingerprint=seen
        )
        self._shells.forget(current.id)  # reconnect with the new key
        [accepted] = [k for k in pinned_keys(self._store, current.id) if k.hostname == name]
        return SshHostKey(
            hostname=accepted.hostname,
            key_type=accepted.key_type,
            fingerprint=accepted.fingerprint,
            pinned_at=accepted.pinned_at,
        )

    def test(self, host: str) -> HostCheck:
        current = self._store.hosts.get(host)
        client = self._clients.get(current.id)
        before = client.request_count
        started = time.perf_counter()
        try:
            version = client.version()
            nodes = client.nodes()
            gaps = privilege_gaps(client, self._store, fetch_nodes(client, current.id, nodes))
        except ProximityError as exc:
            return HostCheck(
                host_id=current.id,
                name=current.name,
                ok=False,
                elapsed_ms=(time.perf_counter() - started) * 1000,
                requests=client.request_count - before,
                error=str(exc),
                error_kind=type(exc).__name__,
            )
        return HostCheck(
            host_id=current.id,
            name=current.name,
            ok=not gaps,
            version=version.version,
            nodes=[n.node for n in nodes],
            online_nodes=[n.node for n in nodes if n.online],
            elapsed_ms=(time.perf_counter() - started) * 1000,
            requests=client.request_count - before,
            error=describe_missing(gaps, who=_who(current)) if gaps else None,
            error_kind="PermissionDeniedError" if gaps else None,
            missing_privileges=[PrivilegeGap(privilege=g.privilege, path=g.path, used_for=g.used_for) for g in gaps],
        )

    def sync_nodes(self, host: str | None = None) -> Listing[Node]:
        current = self._store.hosts.resolve(host)
        nodes = fetch_nodes(self._clients.get(current.id), current.id)
        return Listing(self._store.nodes.replace_for_host(current.id, nodes))


class Nodes(NodesAPI):
    def __init__(self, store: Store, clients: ClientPool) -> None:
        self._store = store
        self._clients = clients

    def list(self, host: str | None = None) -> Listing[Node]:
        return Listing(self._store.nodes.list(host))

    def get(self, host: str, name: str) -> Node:
        return self._store.nodes.get(host, name)

    def storages(
        self,
        node: str,
        *,
        host: str | None = None,
        content: str | None = None,
    ) -> Listing[StorageStatus]:
        current = self._store.hosts.resolve(host)
        return Listing(self._clients.get(current.id).storage_list(check_node_name(node), content=content))
