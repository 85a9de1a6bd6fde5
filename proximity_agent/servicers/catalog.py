"""CatalogService: reads of the loaded catalog; ReloadCatalog is admin-only (see auth.POLICY)."""

from __future__ import annotations

from proximity_agent.servicers._base import Backend, page_request, paginate
from proximity_sdk._pb.proximity.v1 import catalog_pb2, catalog_pb2_grpc
from proximity_sdk._wire.catalog import (
    catalog_app_to_pb,
    catalog_problem_to_pb,
    catalog_shadowing_to_pb,
    catalog_stats_to_pb,
)
from proximity_sdk.models.catalog import CatalogApp

__all__ = ["CatalogServicer"]

_Ctx = object  # servicers never touch the context: auth.py and status.py own it


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self._b = backend

    def _select(self, category: str, query: str) -> list[CatalogApp]:
        catalog = self._b.px.catalog
        apps = catalog.search(query) if query else catalog.list(category or None)
        if query and category:
            apps = [a for a in apps if a.category.lower() == category.lower()]
        return sorted(apps, key=lambda a: a.id)

    async def ListCatalogApps(
        self,
        request: catalog_pb2.ListCatalogAppsRequest,
        context: _Ctx,
    ) -> catalog_pb2.ListCatalogAppsResponse:
        page = page_request(
            request.page_size, request.page_token, method="ListCatalogApps", filters=(request.category, request.query)
        )
        apps = await self._b.run(self._select, request.category, request.query)
        chunk, token = paginate(apps, page)
        return catalog_pb2.ListCatalogAppsResponse(apps=[catalog_app_to_pb(a) for a in chunk], next_page_token=token)

    async def GetCatalogApp(
        self,
        request: catalog_pb2.GetCatalogAppRequest,
        context: _Ctx,
    ) -> catalog_pb2.GetCatalogAppResponse:
        catalog = self._b.px.catalog
        app, origin = await self._b.run(
            lambda: (catalog.get(request.catalog_app_id), catalog.origin(request.catalog_app_id))
        )
        return catalog_pb2.GetCatalogAppResponse(app=catalog_app_to_pb(app), origin=origin)

    async def ListCatalogCategories(
        self,
        request: catalog_pb2.ListCatalogCategoriesRequest,
        context: _Ctx,
    ) -> catalog_pb2.ListCatalogCategoriesResponse:
        page = page_request(request.page_size, request.page_token, method="ListCatalogCategories")
        categories = await self._b.run(self._b.px.catalog.categories)
        chunk, token = paginate(categories, page)
        return catalog_pb2.ListCatalogCategoriesResponse(categories=chunk, next_page_token=token)

    async def GetCatalogStats(
        self,
        request: catalog_pb2.GetCatalogStatsRequest,
        context: _Ctx,
    ) -> catalog_pb2.GetCatalogStatsResponse:
        stats = await self._b.run(self._b.px.catalog.stats)
        return catalog_pb2.GetCatalogStatsResponse(stats=catalog_stats_to_pb(stats))

    async def ReloadCatalog(
        self,
        request: catalog_pb2.ReloadCatalogRequest,
        context: _Ctx,
    ) -> catalog_pb2.ReloadCatalogResponse:
        catalog = self._b.px.catalog
        stats = await self._b.run_long(catalog.reload)
        problems = await self._b.run_long(lambda: catalog.errors)
        return catalog_pb2.ReloadCatalogResponse(
            stats=catalog_stats_to_pb(stats), problems=[catalog_problem_to_pb(p) for p in problems]
        )

    async def SearchCatalogApps(
        self,
        request: catalog_pb2.SearchCatalogAppsRequest,
        context: _Ctx,
    ) -> catalog_pb2.SearchCatalogAppsResponse:
        page = page_request(request.page_size, request.page_token, method="SearchCatalogApps", filters=(request.query,))
        chunk, token = paginate(await self._b.run(self._b.px.catalog.search, request.query), page)
        return catalog_pb2.SearchCatalogAppsResponse(apps=[catalog_app_to_pb(a) for a in chunk], next_page_token=token)

    async def ListCatalogProblems(
        self,
        request: catalog_pb2.ListCatalogProblemsRequest,
        context: _Ctx,
    ) -> catalog_pb2.ListCatalogProblemsResponse:
        page = page_request(request.page_size, request.page_token, method="ListCatalogProblems")
        catalog = self._b.px.catalog
        chunk, token = paginate(await self._b.run(lambda: catalog.errors), page)
        return catalog_pb2.ListCatalogProblemsResponse(
            problems=[catalog_problem_to_pb(p) for p in chunk], next_page_token=token
        )

    async def ListCatalogShadowings(
        self,
        request: catalog_pb2.ListCatalogShadowingsRequest,
        context: _Ctx,
    ) -> catalog_pb2.ListCatalogShadowingsResponse:
        page = page_request(request.page_size, request.page_token, method="ListCatalogShadowings")
        catalog = self._b.px.catalog
        chunk, token = paginate(await self._b.run(lambda: catalog.shadowed), page)
        return catalog_pb2.ListCatalogShadowingsResponse(
            shadowings=[catalog_shadowing_to_pb(s) for s in chunk], next_page_token=token
        )
