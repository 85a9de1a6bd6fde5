"""`proximity catalog`: list, search, show."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from proximity_sdk.cli._exit import EXIT_OK
from proximity_sdk.cli._output import detail, print_json, table

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context

__all__ = ["list_apps", "search", "show"]


class _Row(Protocol):
    """What the table shows of an app: a `CatalogApp`, or through an agent its wire message."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def min_memory(self) -> int: ...
    @property
    def description(self) -> str: ...


def _table(ctx: Context, apps: Iterable[_Row]) -> int:
    table(
        ctx.out,
        ("ID", "NAME", "VERSION", "CATEGORY", "MIN MEMORY", "DESCRIPTION"),
        ((a.id, a.name, a.version, a.category, f"{a.min_memory} MB", _short(a.description)) for a in apps),
        empty="no catalog app matches",
    )
    return EXIT_OK


def _short(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def list_apps(ctx: Context) -> int:
    remote = ctx.agent_catalog
    if remote is not None and not ctx.json:
        from proximity_sdk._remote._catalog import list_messages

        return _table(ctx, list_messages(remote, category=ctx.args.category))
    apps = list(ctx.catalog.list(category=ctx.args.category))
    if ctx.json:
        print_json(apps)
        return EXIT_OK
    return _table(ctx, apps)


def search(ctx: Context) -> int:
    remote = ctx.agent_catalog
    if remote is not None and not ctx.json:
        from proximity_sdk._remote._catalog import search_messages

        return _table(ctx, search_messages(remote, ctx.args.query))
    apps = list(ctx.catalog.search(ctx.args.query))
    if ctx.json:
        print_json(apps)
        return EXIT_OK
    return _table(ctx, apps)


def show(ctx: Context) -> int:
    app = ctx.catalog.get(ctx.args.catalog_id)
    if ctx.json:
        print_json(app)
        return EXIT_OK
    services = app.docker_compose.get("services", {})
    detail(
        ctx.out,
        [
            ("id", app.id),
            ("name", app.name),
            ("version", app.version),
            ("category", app.category),
            ("description", " ".join(app.description.split())),
            ("tags", app.tags),
            (
                "minimum",
                f"{app.min_cpu} cores, {app.min_memory} MB" + (f", {app.min_disk} GB disk" if app.min_disk else ""),
            ),
            ("services", list(services) if isinstance(services, dict) else []),
            ("main", f"{app.main_service or '-'} port {app.main_port or '-'}"),
            ("environment", [f"{k}={v}" for k, v in app.environment.items()]),
            ("secrets", [s.name for s in app.secrets]),
            ("website", app.website),
        ],
        title=app.name,
    )
    return EXIT_OK
