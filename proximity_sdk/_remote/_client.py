"""`RemoteProximity`: what ``Proximity.connect(...)`` returns."""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from proximity_sdk._api.proximity import ProximityAPI
from proximity_sdk._remote._channel import Connection

if TYPE_CHECKING:
    from proximity_sdk._remote._apps import RemoteApps
    from proximity_sdk._remote._backups import RemoteBackups
    from proximity_sdk._remote._catalog import RemoteCatalog
    from proximity_sdk._remote._hosts import RemoteHosts, RemoteNodes
    from proximity_sdk._remote._misc import RemoteMaintenance, RemoteOperations, RemoteSettings

__all__ = ["DEFAULT_TIMEOUT", "RemoteProximity"]

DEFAULT_TIMEOUT = 30.0

N = TypeVar("N")


class RemoteProximity(ProximityAPI):
    """Proximity through an agent: ``ProximityAPI`` over gRPC (its namespaces and methods are
    documented there). The token's user decides what is allowed (members reach their own apps).
    Close it (or use ``with``) to release the channel.

    Each namespace is built (and its modules imported) on first use: a one-shot client such as
    ``proximity catalog list`` loads the catalog's messages and models, not the whole API.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._conn = Connection(
            target, token=token, ca_file=ca_file, cert_file=cert_file, key_file=key_file, timeout=timeout
        )
        self._namespaces: dict[str, Any] = {}

    def _namespace(self, name: str, build: Callable[[Connection], N]) -> N:
        # plain properties over this cache, not cached_property: help() shows a property's inherited
        # docstring (ProximityAPI's), not a cached_property's; two threads racing keep the same one
        found: N | None = self._namespaces.get(name)
        if found is None:
            found = self._namespaces.setdefault(name, build(self._conn))
        return found

    @property
    def hosts(self) -> RemoteHosts:
        from proximity_sdk._remote._hosts import RemoteHosts

        return self._namespace("hosts", RemoteHosts)

    @property
    def nodes(self) -> RemoteNodes:
        from proximity_sdk._remote._hosts import RemoteNodes

        return self._namespace("nodes", RemoteNodes)

    @property
    def catalog(self) -> RemoteCatalog:
        from proximity_sdk._remote._catalog import RemoteCatalog

        return self._namespace("catalog", RemoteCatalog)

    @property
    def apps(self) -> RemoteApps:
        from proximity_sdk._remote._apps import RemoteApps

        return self._namespace("apps", RemoteApps)

    @property
    def backups(self) -> RemoteBackups:
        from proximity_sdk._remote._backups import RemoteBackups

        return self._namespace("backups", RemoteBackups)

    @property
    def operations(self) -> RemoteOperations:
        from proximity_sdk._remote._misc import RemoteOperations

        return self._namespace("operations", RemoteOperations)

    @property
    def settings(self) -> RemoteSettings:
        from proximity_sdk._remote._misc import RemoteSettings

        return self._namespace("settings", RemoteSettings)

    @property
    def maintenance(self) -> RemoteMaintenance:
        from proximity_sdk._remote._misc import RemoteMaintenance

        return self._namespace("maintenance", RemoteMaintenance)

    @property
    def target(self) -> str:
        """The agent's address (``host:port``)."""
        return self._conn.target

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Proximity remote {self._conn.target}{'' if self._conn.tls else ' (plaintext)'}>"
