"""`RemoteProximity`: what ``Proximity.connect(...)`` returns."""

from __future__ import annotations

import os
from types import TracebackType

from proximity_sdk._remote._apps import RemoteApps
from proximity_sdk._remote._backups import RemoteBackups
from proximity_sdk._remote._catalog import RemoteCatalog
from proximity_sdk._remote._channel import Connection
from proximity_sdk._remote._hosts import RemoteHosts, RemoteNodes
from proximity_sdk._remote._misc import RemoteMaintenance, RemoteOperations, RemoteSettings

__all__ = ["DEFAULT_TIMEOUT", "RemoteProximity"]

DEFAULT_TIMEOUT = 30.0


class RemoteProximity:
    """Proximity through an agent: the namespaces of ``Proximity.local()`` (``hosts``, ``nodes``,
    ``catalog``, ``apps``, ``backups``, ``operations``, ``settings``, ``maintenance``), the same
    methods, models and errors. The token's user decides what is allowed (members reach their
    own apps). Close it (or use ``with``) to release the channel.
    """

    def __init__(self, target: str, *, token: str, ca_file: str | os.PathLike[str] | None = None,
                 cert_file: str | os.PathLike[str] | None = None, key_file: str | os.PathLike[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self._conn = Connection(target, token=token, ca_file=ca_file, cert_file=cert_file, key_file=key_file,
                                timeout=timeout)
        self.hosts = RemoteHosts(self._conn)
        self.nodes = RemoteNodes(self._conn)
        self.catalog = RemoteCatalog(self._conn)
        self.apps = RemoteApps(self._conn)
        self.backups = RemoteBackups(self._conn)
        self.operations = RemoteOperations(self._conn)
        self.settings = RemoteSettings(self._conn)
        self.maintenance = RemoteMaintenance(self._conn)

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
