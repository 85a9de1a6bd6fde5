"""``px.catalog`` over the agent: the catalog loaded there.

The models (pydantic) are imported by the first method that builds one, not with this module:
`list_messages` serves ``proximity catalog list`` without them (importing pydantic
and building `CatalogApp` was about a third of that command's time through an agent).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from proximity_sdk._api.catalog import CatalogAPI
from proximity_sdk._pb.proximity.v1 import catalog_pb2, catalog_pb2_grpc
from proximity_sdk._remote._channel import Connection
from proximity_sdk.errors import NotFoundError
from proximity_sdk.models._listing import Listing

if TYPE_CHECKING:
    from proximity_sdk.models.catalog import CatalogApp, CatalogProblem, CatalogShadowing, CatalogStats

__all__ = ["RemoteCatalog", "list_messages", "search_messages"]


def _apps(messages: Iterable[catalog_pb2.CatalogApp]) -> Listing[CatalogApp]:
    from proximity_sdk._wire.catalog import catalog_app_from_pb

    return Listing(catalog_app_from_pb(m) for m in messages)


class RemoteCatalog(CatalogAPI):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = catalog_pb2_grpc.CatalogServiceStub(conn.channel)

    def reload(self) -> CatalogStats:
        from proximity_sdk._wire.catalog import catalog_stats_from_pb

        response = self._conn.call(self._stub.ReloadCatalog, catalog_pb2.ReloadCatalogRequest())
        return catalog_stats_from_pb(response.stats)

    def list(self, category: str | None = None) -> builtins.list[CatalogApp]:
        return _apps(list_messages(self, category=category))

    def search(self, query: str) -> builtins.list[CatalogApp]:
        return _apps(search_messages(self, query))

    def _get(self, app_id: str) -> catalog_pb2.GetCatalogAppResponse:
        return self._conn.call(self._stub.GetCatalogApp, catalog_pb2.GetCatalogAppRequest(catalog_app_id=app_id))

    def get(self, app_id: str) -> CatalogApp:
        from proximity_sdk._wire.catalog import catalog_app_from_pb

        return catalog_app_from_pb(self._get(app_id).app)

    def categories(self) -> builtins.list[str]:
        request = catalog_pb2.ListCatalogCategoriesRequest()
        return Listing(self._conn.pages(self._stub.ListCatalogCategories, request, "categories"))

    def stats(self) -> CatalogStats:
        from proximity_sdk._wire.catalog import catalog_stats_from_pb

        response = self._conn.call(self._stub.GetCatalogStats, catalog_pb2.GetCatalogStatsRequest())
        return catalog_stats_from_pb(response.stats)

    @property
    def errors(self) -> builtins.list[CatalogProblem]:
        from proximity_sdk._wire.catalog import catalog_problem_from_pb

        request = catalog_pb2.ListCatalogProblemsRequest()
        return Listing(
            catalog_problem_from_pb(p) for p in self._conn.pages(self._stub.ListCatalogProblems, request, "problems")
        )

    @property
    def shadowed(self) -> builtins.list[CatalogShadowing]:
        from proximity_sdk._wire.catalog import catalog_shadowing_from_pb

        request = catalog_pb2.ListCatalogShadowingsRequest()
        return Listing(
            catalog_shadowing_from_pb(s)
            for s in self._conn.pages(self._stub.ListCatalogShadowings, request, "shadowings")
        )

    def origin(self, app_id: str) -> str:
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


# Functions, not methods: `RemoteCatalog` offers exactly the API of the local `Catalog`
# (tests/remote/test_parity.py); these serve the CLI, which reads a few fields of each app.


def list_messages(catalog: RemoteCatalog, *, category: str | None = None) -> builtins.list[catalog_pb2.CatalogApp]:
    """What ``catalog.list(category)`` returns, in the same order, as the agent's wire messages:
    for a caller that shows a few fields (the CLI's table) and need not build, nor import, the models."""
    request = catalog_pb2.ListCatalogAppsRequest(category=category or "")
    messages = builtins.list(catalog._conn.pages(catalog._stub.ListCatalogApps, request, "apps"))
    # the wire sorts by id; the SDK sorts by name, as the local catalog does
    return sorted(messages, key=lambda a: (a.name.lower(), a.id))


def search_messages(catalog: RemoteCatalog, query: str) -> builtins.list[catalog_pb2.CatalogApp]:
    """What ``catalog.search(query)`` returns, in the same order, as the agent's wire messages."""
    request = catalog_pb2.SearchCatalogAppsRequest(query=query)
    return builtins.list(catalog._conn.pages(catalog._stub.SearchCatalogApps, request, "apps"))
