"""`ProximityAPI`: what ``Proximity.local()`` and ``Proximity.connect()`` both return."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from proximity_sdk._api.apps import AppsAPI
    from proximity_sdk._api.backups import BackupsAPI
    from proximity_sdk._api.catalog import CatalogAPI
    from proximity_sdk._api.hosts import HostsAPI, NodesAPI
    from proximity_sdk._api.maintenance import MaintenanceAPI
    from proximity_sdk._api.operations import OperationsAPI
    from proximity_sdk._api.settings import SettingsAPI

__all__ = ["ProximityAPI"]


class ProximityAPI(Protocol):
    """Proximity, local or through an agent: the same namespaces, methods, models and errors.

    ``Proximity.local()`` drives Proxmox from this process and acts as admin;
    ``Proximity.connect(target, token=...)`` speaks to an agent, where the token's user decides
    what is allowed. Write code against this type to run it either way::

        def deploy_gitea(px: ProximityAPI) -> App:
            return px.apps.deploy("gitea", hostname="git-1").wait()

    Close it (or use ``with``) to release its connections.
    """

    @property
    def hosts(self) -> HostsAPI:
        """Registered Proxmox hosts (``px.hosts``)."""
        ...

    @property
    def nodes(self) -> NodesAPI:
        """The nodes of the hosts' clusters, as last synced (``px.nodes``)."""
        ...

    @property
    def catalog(self) -> CatalogAPI:
        """The apps that can be deployed (``px.catalog``)."""
        ...

    @property
    def apps(self) -> AppsAPI:
        """Deployed apps and their lifecycle (``px.apps``)."""
        ...

    @property
    def backups(self) -> BackupsAPI:
        """Backups, restores, schedules and backup targets (``px.backups``)."""
        ...

    @property
    def operations(self) -> OperationsAPI:
        """Every long action's record and event log (``px.operations``)."""
        ...

    @property
    def settings(self) -> SettingsAPI:
        """The defaults every deploy uses (``px.settings``)."""
        ...

    @property
    def maintenance(self) -> MaintenanceAPI:
        """The periodic jobs on demand (``px.maintenance``)."""
        ...

    def close(self) -> None:
        """Release the connections (locally: after this process's running operations have ended)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
