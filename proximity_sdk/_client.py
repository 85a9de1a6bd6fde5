"""`Proximity`: the entry point. ``Proximity.local()`` drives Proxmox from this process."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from proximity_sdk._api.proximity import ProximityAPI
from proximity_sdk._connections import ClientPool, ShellPool
from proximity_sdk._resources.apps import Apps
from proximity_sdk._resources.backups import Backups
from proximity_sdk._resources.hosts import Hosts, Nodes
from proximity_sdk._resources.maintenance import Maintenance
from proximity_sdk._resources.operations import Operations
from proximity_sdk._resources.settings import SettingsResource
from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.engine.services import Services
from proximity_sdk.operations._targets import TargetRegistry
from proximity_sdk.operations.adopt import AdoptKind
from proximity_sdk.operations.backup import BackupKind, DeleteBackupKind
from proximity_sdk.operations.clone import CloneKind
from proximity_sdk.operations.deploy.kind import DeployKind
from proximity_sdk.operations.lifecycle import DeleteKind, RestartKind, StartKind, StopKind
from proximity_sdk.operations.migrate import MigrateKind
from proximity_sdk.operations.pull import PullKind
from proximity_sdk.operations.resize import ResizeKind
from proximity_sdk.operations.restore import RestoreKind
from proximity_sdk.operations.update import UpdateKind
from proximity_sdk.plugins.manager import PluginManager
from proximity_sdk.store import Store

__all__ = ["Proximity"]


class Proximity(ProximityAPI):
    """Proximity, embedded: state in SQLite (or PostgreSQL), Proxmox driven from this process.

    It implements ``ProximityAPI`` (whose namespaces and methods are documented there) with the
    local types, which add the local-only members (``px.hosts.host_keys``, ``px.catalog.trusted_sources``,
    ...). Acts as admin. On open it takes over operations left behind by a process that died (their
    lease expired) and finishes or rolls them back. Close it (or use ``with``) to release
    connections; ``close()`` waits for this process's running operations.
    """

    def __init__(
        self,
        store: Store,
        plugins: PluginManager,
        catalog: Catalog,
        *,
        lease_seconds: float | None = None,
        node_slots: int = 4,
        recover: bool = True,
    ) -> None:
        self.store = store
        self.plugins = plugins
        self._catalog = catalog
        self._shells = ShellPool(store)
        self._clients = ClientPool(store, self._shells)
        self._hosts = Hosts(store, self._clients, self._shells)
        self._nodes = Nodes(store, self._clients)
        self._settings = SettingsResource(store)
        services = Services(store=store, clients=self._clients, shells=self._shells, catalog=catalog)
        self.engine = OperationEngine(store, plugins=plugins, lease_seconds=lease_seconds, node_slots=node_slots)
        for kind in (
            DeployKind(services),
            StartKind(services),
            StopKind(services),
            RestartKind(services),
            DeleteKind(services),
        ):
            self.engine.register(kind)
        self.engine.register(AdoptKind(services))
        self.engine.register(PullKind(services))
        for moving in (CloneKind(services), MigrateKind(services), ResizeKind(services)):
            self.engine.register(moving)
        targets = TargetRegistry(services, plugins)
        for backup_kind in (
            BackupKind(services, targets),
            DeleteBackupKind(services, targets),
            RestoreKind(services, targets),
            UpdateKind(services, targets),
        ):
            self.engine.register(backup_kind)
        self._apps = Apps(services, self.engine)
        self._backups = Backups(services, self.engine, targets)
        self._operations = Operations(self.engine)
        self._maintenance = Maintenance(services, self.engine)
        if recover:
            self.engine.recover()

    # the namespaces: read-only, as ProximityAPI declares them; their docs are there

    @property
    def hosts(self) -> Hosts:
        return self._hosts

    @property
    def nodes(self) -> Nodes:
        return self._nodes

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @property
    def apps(self) -> Apps:
        return self._apps

    @property
    def backups(self) -> Backups:
        return self._backups

    @property
    def operations(self) -> Operations:
        return self._operations

    @property
    def settings(self) -> SettingsResource:
        return self._settings

    @property
    def maintenance(self) -> Maintenance:
        return self._maintenance

    @classmethod
    def local(
        cls,
        *,
        database_url: str | None = None,
        secret_key: str | bytes | None = None,
        catalog_paths: Sequence[str | os.PathLike[str]] = (),
        data_dir: str | os.PathLike[str] | None = None,
        plugins: Sequence[object] = (),
        entry_points: bool = True,
        lease_seconds: float | None = None,
        node_slots: int = 4,
        catalog_trusted_sources: Sequence[str] = (),
    ) -> Proximity:
        """Open Proximity on this machine.

        ``database_url``: None for SQLite in ``data_dir`` (default: the user data directory),
        or ``postgresql+psycopg://...``. ``secret_key``: a Fernet key for secrets at rest (else
        ``$PROXIMITY_SECRET_KEY``, else a 0600 key file in ``data_dir``). ``catalog_paths``: extra
        catalog directories, one entry per file. ``plugins``: plugin objects to register besides
        the installed ones (``entry_points=False`` loads none of those). ``lease_seconds``: how
        long a silent process keeps its operations (default from settings); ``node_slots``:
        concurrent Proxmox mutations per node from this process. ``catalog_trusted_sources``:
        catalog sources whose compose files skip the compose policy (see ``Catalog``).
        """
        catalog_dirs = list(catalog_paths)
        manager = PluginManager(entry_points=entry_points, plugins=tuple(plugins))
        catalog = Catalog(catalog_paths=catalog_dirs, plugins=manager, trusted_sources=catalog_trusted_sources)
        store = Store.open(
            database_url, data_dir=Path(data_dir) if data_dir is not None else None, secret_key=secret_key
        )
        try:
            return cls(store, manager, catalog, lease_seconds=lease_seconds, node_slots=node_slots)
        except BaseException:
            store.close()
            raise

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        token: str,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
    ) -> ProximityAPI:
        """Connect to a Proximity agent (``proximity-agent serve``) at ``target`` (``host:port``).

        Returns a ``ProximityAPI``: the namespaces, methods, models and errors of ``local()`` (less
        its local-only members, such as SSH host keys); the ``token``'s user decides what is
        allowed. TLS is used unless the target is loopback and no file is given:
        ``ca_file`` is the CA of the agent's certificate, ``cert_file``/``key_file`` a client
        certificate (all read here). ``timeout``: seconds each call may take (streams excepted).
        """
        from proximity_sdk._remote._client import RemoteProximity

        return RemoteProximity(
            target, token=token, ca_file=ca_file, cert_file=cert_file, key_file=key_file, timeout=timeout
        )

    def close(self) -> None:
        self.engine.close(wait=True)
        self._shells.close()
        self._clients.close()
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Proximity local {self.store.url}>"
