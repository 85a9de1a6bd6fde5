"""``px.catalog`` over the agent: the catalog loaded there."""

from __future__ import annotations

import builtins
from collections.abc import Iterator

from proximity_sdk._pb.proximity.v1 import catalog_pb2, catalog_pb2_grpc
from proximity_sdk._remote import _convert_catalog as cv
from proximity_sdk._remote._channel import Connection
from proximity_sdk.errors import NotFoundError
from proximity_sdk.models._listing import Listing
from proximity_sdk.models.catalog import CatalogApp, CatalogProblem, CatalogShadowing, CatalogStats

__all__ = ["RemoteCatalog"]


class RemoteCatalog:
    """The agent's app catalog (``reload`` is admin-only there)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = catalog_pb2_grpc.CatalogServiceStub(conn.channel)

    def reload(self) -> CatalogStats:
        """Read every source again on the agent; returns the new stats. Problems are in `errors`."""
        response = self._conn.call(self._stub.ReloadCatalog, catalog_pb2.ReloadCatalogRequest())
        return cv.catalog_stats_from_pb(response.stats)

    def list(self, category: str | None = None) -> builtins.list[CatalogApp]:
        """Every app sorted by name, or those of one category (case-insensitive)."""
        request = catalog_pb2.ListCatalogAppsRequest(category=category or "")
        apps = [cv.catalog_app_from_pb(a) for a in self._conn.pages(self._stub.ListCatalogApps, request, "apps")]
        # the wire sorts by id; the SDK sorts by name, as the local catalog does
        return Listing(sorted(apps, key=lambda a: (a.name.lower(), a.id)))

    def search(self, query: str) -> builtins.list[CatalogApp]:
        """Apps matching every term of ``query``; name/id matches first, then tags, then description."""
        request = catalog_pb2.SearchCatalogAppsRequest(query=query)
        return Listing(cv.catalog_app_from_pb(a) for a in self._conn.pages(self._stub.SearchCatalogApps, request,
                                                                            "apps"))

    def _get(self, app_id: str) -> catalog_pb2.GetCatalogAppResponse:
        return self._conn.call(self._stub.GetCatalogApp, catalog_pb2.GetCatalogAppRequest(catalog_app_id=app_id))

    def get(self, app_id: str) -> CatalogApp:
        """The app with this id; `NotFoundError` names close matches when there is none."""
        return cv.catalog_app_from_pb(self._get(app_id).app)

    def categories(self) -> builtins.list[str]:
        """The distinct categories, sorted case-insensitively."""
        request = catalog_pb2.ListCatalogCategoriesRequest()
        return Listing(self._conn.pages(self._stub.ListCatalogCategories, request, "categories"))

    def stats(self) -> CatalogStats:
        response = self._conn.call(self._stub.GetCatalogStats, catalog_pb2.GetCatalogStatsRequest())
        return cv.catalog_stats_from_pb(response.stats)

    @property
    def errors(self) -> builtins.list[CatalogProblem]:
        """Entries rejected by the agent's last load: file (origin), field and reason."""
        request = catalog_pb2.ListCatalogProblemsRequest()
        return Listing(cv.catalog_problem_from_pb(p) for p in self._conn.pages(
            self._stub.ListCatalogProblems, request, "problems"))

    @property
    def shadowed(self) -> builtins.list[CatalogShadowing]:
        """Ids defined by more than one source in the agent's last load, and which one won."""
        request = catalog_pb2.ListCatalogShadowingsRequest()
        return Listing(cv.catalog_shadowing_from_pb(s) for s in self._conn.pages(
            self._stub.ListCatalogShadowings, request, "shadowings"))

    def origin(self, app_id: str) -> str:
        """Where the loaded entry for ``app_id`` came from (a file path or URL on the agent)."""
        return self._get(app_id).origin

    def __contains__(self, app_id: object) -> bool:
        if not isinstance(app_id, str):
            return False
        try:
            self._get(app_id)
        except NotFoundError:
            return False
        return True

    def __len__(self) -> int:
        return self.stats().total_apps

    def __iter__(self) -> Iterator[CatalogApp]:
        return iter(self.list())
