"""`HostsAPI` and `NodesAPI`: ``px.hosts`` and ``px.nodes``."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from proximity_sdk.models.host import Host, Node
    from proximity_sdk.models.host_check import HostCheck
    from proximity_sdk.models.proxmox import StorageStatus
    from proximity_sdk.models.ssh import SshAccess

__all__ = ["HostsAPI", "NodesAPI"]


class HostsAPI(Protocol):
    """``px.hosts``: registered Proxmox hosts, an API endpoint each, a single node or a whole cluster.
    One is the default. Files (``ca_file``, the SSH key and known_hosts of ``ssh``) are read on the
    caller's machine, also through an agent (their contents are sent). Through an agent: admin only."""

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
        """Register a host. An API token (``token_id="root@pam!px"`` + ``token_secret``) is preferred
        to ``user`` + ``password``. TLS is verified; give the cluster CA with ``ca_file``.

        With ``check`` (the default) the host must answer with these credentials first, and its
        nodes are synced; nothing is stored when it does not, nor when the credentials lack a
        privilege Proximity needs (:class:`PermissionDeniedError` naming each privilege and ACL
        path; docs/fidelity.md lists them). The first host becomes the default.
        """
        ...

    def get(self, host: str) -> Host:
        """A host by id or name."""
        ...

    def list(self) -> builtins.list[Host]:
        """Every host, the default first. Never carries secrets."""
        ...

    def default(self) -> Host:
        """The default host (``NotFoundError`` when none is registered)."""
        ...

    def set_default(self, host: str) -> Host:
        """Make this host (id or name) the default one."""
        ...

    def update(self, host: str, *, ca_file: str | Path | None = None, **fields: Any) -> Host:
        """Change some fields (``url``, ``token_id``/``token_secret``, ``user``/``password``,
        ``verify_tls``, ``ca_file``, ``ssh``, ``name``). The next call reconnects with them."""
        ...

    def remove(self, host: str) -> None:
        """Forget a host (refused while it still has apps)."""
        ...

    def test(self, host: str) -> HostCheck:
        """Connect with the stored credentials: version, nodes and the privileges Proximity needs
        (``missing_privileges``), or why it failed. Never raises for a connection problem (that is
        the answer); raises NotFoundError for an unknown host."""
        ...

    def sync_nodes(self, host: str | None = None) -> builtins.list[Node]:
        """Read the host's nodes (status, CPUs, memory, disk, PVE version) and store them.
        ``host=None``: the default host."""
        ...


class NodesAPI(Protocol):
    """``px.nodes``: nodes as last synced (``px.hosts.sync_nodes`` refreshes them)."""

    def list(self, host: str | None = None) -> builtins.list[Node]:
        """Nodes of one host (id or name), or of every host."""
        ...

    def get(self, host: str, name: str) -> Node:
        """The node ``name`` of a host (id or name)."""
        ...

    def storages(
        self,
        node: str,
        *,
        host: str | None = None,
        content: str | None = None,
    ) -> builtins.list[StorageStatus]:
        """The storages a node sees now (live), optionally only those holding ``content``
        (``rootdir``, ``vztmpl``, ``backup``, ...)."""
        ...
