"""`RemoteProximity`: what ``Proximity.connect(...)`` returns."""

from __future__ import annotations

import os
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING

from proximity_sdk._remote._channel import Connection

if TYPE_CHECKING:
    from proximity_sdk._remote._apps import RemoteApps
    from proximity_sdk._remote._backups import RemoteBackups
    from proximity_sdk._remote._catalog import RemoteCatalog
    from proximity_sdk._remote._hosts import RemoteHosts, RemoteNodes
    from proximity_sdk._remote._misc import RemoteMaintenance, RemoteOperations, RemoteSettings

__all__ = ["DEFAULT_TIMEOUT", "RemoteProximity"]

DEFAULT_TIMEOUT = 30.0


class RemoteProximity:
    """Proximity through an agent: the namespaces of ``Proximity.local()`` (``hosts``, ``nodes``,
    ``catalog``, ``apps``, ``backups``, ``operations``, ``settings``, ``maintenance``), the same
    methods, models and errors. The token's user decides what is allowed (members reach their
    own apps). Close it (or use ``with``) to release the channel.

    Each namespace is built (and its modules imported) on first use: a one-shot client such as
    ``proximity catalog list`` loads the catalog's messages and models, not the whole API.
    """

    def __init__(self, target: str, *, token: str, ca_file: str | os.PathLike[str] | None = None,
                 cert_file: str | os.PathLike[str] | None = None, key_file: str | os.PathLike[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self._conn = Connection(target, token=token, ca_file=ca_file, cert_file=cert_file, key_file=key_file,
                                timeout=timeout)

    @cached_property
    def hosts(self) -> RemoteHosts:
        from proximity_sdk._remote._hosts import RemoteHosts

        return RemoteHosts(self._conn)

    @cached_property
    def nodes(self) -> RemoteNodes:
        from proximity_sdk._remote._hosts import RemoteNodes

        return RemoteNodes(self._conn)

    @cached_property
    def catalog(self) -> RemoteCatalog:
        from proximity_sdk._remote._catalog import RemoteCatalog

        return RemoteCatalog(self._conn)

    @cached_property
    def apps(self) -> RemoteApps:
        from proximity_sdk._remote._apps import RemoteApps

        return RemoteApps(self._conn)

    @cached_property
    def backups(self) -> RemoteBackups:
        from proximity_sdk._remote._backups import RemoteBackups

        return RemoteBackups(self._conn)

    @cached_property
    def operations(self) -> RemoteOperations:
        from proximity_sdk._remote._misc import RemoteOperations

        return RemoteOperations(self._conn)

    @cached_property
    def settings(self) -> RemoteSettings:
        from proximity_sdk._remote._misc import RemoteSettings

        return RemoteSettings(self._conn)

    @cached_property
    def maintenance(self) -> RemoteMaintenance:
        from proximity_sdk._remote._misc import RemoteMaintenance

        return RemoteMaintenance(self._conn)

    @property
    def target(self) -> str:
        return self._conn.target

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RemoteProximity:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Proximity remote {self._conn.target}{'' if self._conn.tls else ' (plaintext)'}>"
