"""`proximity catalog`: list, search, show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proximity_sdk.cli._exit import EXIT_OK
from proximity_sdk.cli._output import detail, print_json, table

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context
    from proximity_sdk.models.catalog import CatalogApp

__all__ = ["list_apps", "search", "show"]


def _apps(ctx: Context, apps: list[CatalogApp]) -> int:
    if ctx.json:
        print_json(apps)
        return EXIT_OK
    table(ctx.out, ("ID", "NAME", "VERSION", "CATEGORY", "MIN MEMORY", "DESCRIPTION"),
          ((a.id, a.name, a.version, a.category, f"{a.min_memory} MB", _short(a.description)) for a in apps),
          empty="no catalog app matches")
    return EXIT_OK


def _short(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def list_apps(ctx: Context) -> int:
    return _apps(ctx, list(ctx.catalog.list(category=ctx.args.category)))


def search(ctx: Context) -> int:
    return _apps(ctx, list(ctx.catalog.search(ctx.args.query)))


def show(ctx: Context) -> int:
    app = ctx.catalog.get(ctx.args.catalog_id)
    if ctx.json:
        print_json(app)
        return EXIT_OK
    services = app.docker_compose.get("services", {})
    detail(ctx.out, [
        ("id", app.id), ("name", app.name), ("version", app.version), ("category", app.category),
        ("description", " ".join(app.description.split())), ("tags", app.tags),
        ("minimum", f"{app.min_cpu} cores, {app.min_memory} MB" + (f", {app.min_disk} GB disk" if app.min_disk
                                                                   else "")),
        ("services", list(services) if isinstance(services, dict) else []),
        ("main", f"{app.main_service or '-'} port {app.main_port or '-'}"),
        ("environment", [f"{k}={v}" for k, v in app.environment.items()]),
        ("secrets", [s.name for s in app.secrets]), ("website", app.website),
    ], title=app.name)
    return EXIT_OK
