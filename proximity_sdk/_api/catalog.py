"""`CatalogAPI`: ``px.catalog``, the apps that can be deployed."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from proximity_sdk.models.catalog import CatalogApp, CatalogProblem, CatalogShadowing, CatalogStats

__all__ = ["CatalogAPI"]


class CatalogAPI(Protocol):
    """``px.catalog``: every catalog source loaded into one validated, searchable set of apps (through
    an agent, the catalog loaded there). ``"gitea" in px.catalog``, ``len(px.catalog)`` and
    ``for app in px.catalog`` work too."""

    def reload(self) -> CatalogStats:
        """Read every source again; returns the new stats. Problems are in `errors`. Through an
        agent: admin only."""
        ...

    def list(self, category: str | None = None) -> builtins.list[CatalogApp]:
        """Every app sorted by name, or those of one category (case-insensitive)."""
        ...

    def search(self, query: str) -> builtins.list[CatalogApp]:
        """Apps matching every term of ``query``; name/id matches first, then tags, then description."""
        ...

    def get(self, app_id: str) -> CatalogApp:
        """The app with this id; `NotFoundError` names close matches when there is none."""
        ...

    def categories(self) -> builtins.list[str]:
        """The distinct categories, sorted case-insensitively."""
        ...

    def stats(self) -> CatalogStats:
        """How many apps and categories, apps per category and per source, problems, overrides."""
        ...

    @property
    def errors(self) -> builtins.list[CatalogProblem]:
        """Entries rejected by the last load: file (origin), field and reason."""
        ...

    @property
    def shadowed(self) -> builtins.list[CatalogShadowing]:
        """Ids defined by more than one source in the last load, and which one won."""
        ...

    def origin(self, app_id: str) -> str:
        """Where the loaded entry for ``app_id`` came from (a file path or URL)."""
        ...

    def __contains__(self, app_id: object) -> bool:
        """Whether the catalog has an app with this id."""
        ...

    def __len__(self) -> int:
        """How many apps the catalog has."""
        ...

    def __iter__(self) -> Iterator[CatalogApp]:
        """Every app, sorted by name."""
        ...
