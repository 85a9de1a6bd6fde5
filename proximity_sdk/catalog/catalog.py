"""The `Catalog`: every source loaded into one validated, searchable set of apps.

Precedence when two sources define the same id: sources load in order and the LATER one wins:
1. the built-in catalog (itself a plugin, registered first),
2. catalog sources from other plugins, in registration order,
3. ``catalog_paths`` directories, in the order given (your own files override everything).
Each override is listed in `Catalog.shadowed` (and summarised in one INFO log line).
"""

from __future__ import annotations

import builtins
import difflib
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from proximity_sdk._api.catalog import CatalogAPI
from proximity_sdk.catalog._search import SearchIndex
from proximity_sdk.catalog.directory import DirectorySource
from proximity_sdk.catalog.loader import load_source
from proximity_sdk.errors import NotFoundError, ValidationError
from proximity_sdk.models._listing import Listing
from proximity_sdk.models.catalog import CatalogApp, CatalogProblem, CatalogShadowing, CatalogStats
from proximity_sdk.plugins.sources import CatalogSource

if TYPE_CHECKING:
    from proximity_sdk.plugins.manager import PluginManager

__all__ = ["BUILTIN_SOURCE", "Catalog"]

#: the name of the catalog shipped in the package (``plugins/_builtin.py``), reviewed with the code
BUILTIN_SOURCE = "builtin"

log = logging.getLogger(__name__)


class _Snapshot:
    """One consistent load; replaced whole on reload so readers never see a half-loaded catalog."""

    __slots__ = ("apps", "by_name", "categories", "index", "origins", "problems", "shadowed", "sources")

    def __init__(self, sources: Sequence[CatalogSource], trusted: frozenset[str]) -> None:
        self.apps: dict[str, CatalogApp] = {}
        self.origins: dict[str, tuple[str, str]] = {}  # id -> (source name, origin)
        self.problems: list[CatalogProblem] = []
        self.shadowed: list[CatalogShadowing] = []
        self.sources = [source.name for source in sources]
        for source in sources:
            result = load_source(source, trusted=source.name in trusted)
            self.problems.extend(result.problems)
            for app, origin in zip(result.apps, result.origins, strict=True):
                previous = self.origins.get(app.id)
                if previous is not None:
                    shadow = CatalogShadowing(
                        app_id=app.id,
                        kept_origin=origin,
                        kept_source=source.name,
                        shadowed_origin=previous[1],
                        shadowed_source=previous[0],
                    )
                    self.shadowed.append(shadow)
                self.apps[app.id] = app
                self.origins[app.id] = (source.name, origin)
        for problem in self.problems:
            log.warning("catalog: entry rejected: %s", problem)
        if self.shadowed:
            # overriding is how users customise apps: one line, not a warning per app
            log.info(
                "catalog: %d app(s) defined by several sources, the later wins: %s",
                len(self.shadowed),
                ", ".join(sorted({s.app_id for s in self.shadowed})),
            )
        self.by_name = sorted(self.apps.values(), key=lambda a: (a.name.lower(), a.id))
        self.categories = sorted({app.category for app in self.apps.values()}, key=str.lower)
        self.index = SearchIndex(self.by_name)


class Catalog(CatalogAPI):
    """The app catalog, loaded lazily on first use and again on `reload`.

    ``catalog_paths``: extra directories of entries, one JSON object per file. ``plugins``: the
    plugin manager whose catalog sources to use (default: a new one with the built-in catalog and
    every installed plugin). ``sources``: extra sources appended after ``catalog_paths`` (for
    notebooks and tests). ``trusted_sources``: names of sources (``portainer:https://...``,
    ``path:/srv/apps``) an admin reviewed: their entries skip the compose policy
    (``catalog/policy.py``), which every other source's entries must pass; the built-in catalog,
    reviewed with the code, and the ``catalog_paths`` directories, the admin's own files, are
    always trusted; plugin sources (a Portainer template list, ...) and ``sources`` are not.
    Thread-safe: reload swaps a complete snapshot.
    """

    def __init__(
        self,
        *,
        catalog_paths: Sequence[str | os.PathLike[str]] = (),
        plugins: PluginManager | None = None,
        sources: Sequence[CatalogSource] = (),
        trusted_sources: Sequence[str] = (),
    ) -> None:
        if isinstance(trusted_sources, str) or not all(isinstance(t, str) and t for t in trusted_sources):
            raise ValidationError(
                "trusted_sources must be a list of source names",
                field="trusted_sources",
                hint="Give names as catalog.stats().by_source lists them, e.g. ['path:/srv/apps']",
            )
        paths = [Path(p) for p in catalog_paths]
        # builtin is reviewed with the code; catalog_paths hold the admin's own files
        self._trusted = frozenset({BUILTIN_SOURCE, *trusted_sources, *(DirectorySource(p).name for p in paths)})
        for path in paths:
            if not path.is_dir():
                raise ValidationError(
                    f"catalog path {str(path)!r} is not a directory",
                    field="catalog_paths",
                    hint="Give directories holding one JSON entry per file",
                )
        self._paths = paths
        self._plugins = plugins
        self._extra = list(sources)
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    # loading -------------------------------------------------------------------------------

    def _sources(self) -> list[CatalogSource]:
        plugins = self._plugins
        if plugins is None:
            from proximity_sdk.plugins.manager import PluginManager

            plugins = self._plugins = PluginManager()
        sources: list[CatalogSource] = list(plugins.catalog_sources())
        sources.extend(DirectorySource(path) for path in self._paths)
        sources.extend(self._extra)
        return sources

    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is None:
            with self._lock:
                if self._snapshot is None:
                    self._snapshot = _Snapshot(self._sources(), self._trusted)
                snapshot = self._snapshot
        return snapshot

    def reload(self) -> CatalogStats:
        with self._lock:
            self._snapshot = _Snapshot(self._sources(), self._trusted)
        return self.stats()

    # queries --------------------------------------------------------------------------------

    def list(self, category: str | None = None) -> builtins.list[CatalogApp]:  # a Listing
        apps = self._current().by_name
        if category is None:
            return Listing(apps)
        wanted = category.lower()
        return Listing(app for app in apps if app.category.lower() == wanted)

    def search(self, query: str) -> builtins.list[CatalogApp]:  # a Listing
        return Listing(self._current().index.search(query))

    def get(self, app_id: str) -> CatalogApp:
        snapshot = self._current()
        app = snapshot.apps.get(app_id)
        if app is not None:
            return app
        raise NotFoundError(f"no app {app_id!r} in the catalog", hint=self._near_hint(snapshot, app_id))

    @staticmethod
    def _near_hint(snapshot: _Snapshot, app_id: str) -> str:
        ids = list(snapshot.apps)
        lowered = {i.lower(): i for i in ids}
        near = [lowered[app_id.lower()]] if app_id.lower() in lowered else []
        near += [lowered[m] for m in difflib.get_close_matches(app_id.lower(), list(lowered), n=5, cutoff=0.6)]
        near += [app.id for app in snapshot.index.search(app_id)[:5]]
        unique = list(dict.fromkeys(near))[:5]
        if unique:
            return "Did you mean: " + ", ".join(unique) + "?"
        return "List the ids with catalog.list() or look them up with catalog.search(...)"

    def categories(self) -> Listing[str]:
        return Listing(self._current().categories)

    def stats(self) -> CatalogStats:
        snapshot = self._current()
        by_category = Counter(app.category for app in snapshot.apps.values())
        by_source = Counter(source for source, _ in snapshot.origins.values())
        return CatalogStats(
            total_apps=len(snapshot.apps),
            total_categories=len(snapshot.categories),
            by_category=dict(sorted(by_category.items())),
            by_source={name: by_source.get(name, 0) for name in snapshot.sources},
            problems=len(snapshot.problems),
            shadowed=len(snapshot.shadowed),
        )

    @property
    def trusted_sources(self) -> frozenset[str]:
        """The sources whose entries skip the compose policy."""
        return self._trusted

    @property
    def errors(self) -> Listing[CatalogProblem]:
        return Listing(self._current().problems)

    @property
    def shadowed(self) -> Listing[CatalogShadowing]:
        return Listing(self._current().shadowed)

    def origin(self, app_id: str) -> str:
        self.get(app_id)
        return self._current().origins[app_id][1]

    def __contains__(self, app_id: object) -> bool:
        return isinstance(app_id, str) and app_id in self._current().apps

    def __len__(self) -> int:
        return len(self._current().apps)

    def __iter__(self) -> Iterator[CatalogApp]:
        return iter(self._current().by_name)
