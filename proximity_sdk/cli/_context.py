"""What a command gets: its arguments, the settings, the consoles and (opened on first use) the client."""

from __future__ import annotations

import argparse
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from proximity_sdk.cli._settings import CliSettings

if TYPE_CHECKING:
    from rich.console import Console

    from proximity_sdk._client import Proximity
    from proximity_sdk._remote._catalog import RemoteCatalog
    from proximity_sdk.catalog.catalog import Catalog

__all__ = ["Context", "make_console"]


def make_console(*, stderr: bool) -> Console:
    """A rich console; when it is not a terminal (a pipe, a file) it is wide, so tables do not wrap."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(file=stream, width=None if terminal else 200, highlight=False, soft_wrap=not terminal, emoji=False)


class Context:
    def __init__(self, args: argparse.Namespace, settings: CliSettings) -> None:
        self.args = args
        self.settings = settings
        self._client: Proximity | None = None

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @cached_property
    def out(self) -> Console:
        return make_console(stderr=False)

    @cached_property
    def err(self) -> Console:
        return make_console(stderr=True)

    @property
    def px(self) -> Proximity:
        """The client: local (``Proximity.local``) or an agent's (``Proximity.connect``), opened once."""
        if self._client is None:
            self._client = _open(self.settings)
        return self._client

    @property
    def catalog(self) -> Catalog:
        """The catalog. Locally it is loaded on its own, as ``Proximity.local()`` loads it (built-in
        entries and installed plugins) without opening the store: a catalog command then skips
        the database, SSH and HTTP stacks (about 10x faster to start)."""
        if self.settings.remote or self._client is not None:
            return self.px.catalog
        from proximity_sdk.catalog.catalog import Catalog

        return Catalog()

    @property
    def agent_catalog(self) -> RemoteCatalog | None:
        """The agent's catalog when commands go through an agent, else ``None``: ``catalog list``
        and ``search`` print their table from its wire messages (`_remote._catalog.list_messages`)
        without importing pydantic or building the models, a third of such a command's time."""
        if not self.settings.remote:
            return None
        from proximity_sdk._remote._client import RemoteProximity

        client = cast("Any", self.px)
        assert isinstance(client, RemoteProximity)  # _open makes one whenever settings.remote
        return client.catalog

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.close()


def _open(settings: CliSettings) -> Proximity:
    from proximity_sdk.errors import ValidationError

    if settings.remote:
        if not settings.token:
            raise ValidationError(
                f"agent {settings.agent} needs a token",
                field="token",
                hint="Set PROXIMITY_TOKEN, or give --token-file (or token_file in the config)",
            )
        # straight to the remote client: importing proximity_sdk._client would load the local store,
        # the Proxmox client and the node shell (SQLAlchemy, Alembic, proxmoxer, paramiko), none of
        # which a client of an agent uses
        from proximity_sdk._remote._client import RemoteProximity

        client: Any = RemoteProximity(
            str(settings.agent),
            token=settings.token,
            ca_file=settings.ca_file,
            cert_file=settings.cert_file,
            key_file=settings.key_file,
        )
        return cast("Proximity", client)
    from proximity_sdk._client import Proximity

    return Proximity.local(
        data_dir=settings.data_dir, database_url=settings.database_url, secret_key=settings.secret_key
    )
