"""How the CLI shows one record in detail: an app, a backup, any operation's result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proximity_sdk.cli._output import detail

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context
    from proximity_sdk.models.app import App

__all__ = ["render_result", "show_app", "show_backup", "size_text"]


def _resources_text(app: App) -> str:
    r = app.resources
    parts = [
        f"{r.cores} core{'' if r.cores == 1 else 's'}" if r.cores else None,
        f"{r.memory_mb} MB" if r.memory_mb else None,
        f"{r.disk_gb} GB disk" if r.disk_gb else None,
    ]
    return ", ".join(p for p in parts if p) or "-"


def show_app(ctx: Context, app: Any) -> None:
    detail(
        ctx.out,
        [
            ("hostname", app.hostname),
            ("id", app.id),
            ("status", app.status),
            ("url", app.url),
            ("address", app.address),
            ("catalog", app.catalog_id),
            ("node", app.node),
            ("vmid", app.vmid),
            ("resources", _resources_text(app)),
            ("ports", [f"{p.service}:{p.port}/{p.protocol}" for p in app.ports]),
            ("adopted", "yes" if app.adopted else "no"),
            ("created", app.created_at),
        ],
        title=f"app {app.hostname}",
    )


def size_text(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def show_backup(ctx: Context, backup: Any) -> None:
    detail(
        ctx.out,
        [
            ("id", backup.id),
            ("app", backup.hostname),
            ("status", backup.status),
            ("mode", f"{backup.mode}, {backup.compression}"),
            ("target", backup.target or "local"),
            ("volume", backup.volid),
            ("size", size_text(backup.size_bytes)),
            ("note", backup.note),
            ("created", backup.created_at),
            ("error", backup.error),
        ],
        title=f"backup of {backup.hostname}",
    )


def render_result(ctx: Context, result: Any) -> None:
    """Any operation's result: an App or a Backup in their detail view, another model field by field."""
    kind = type(result).__name__
    if kind == "App":
        show_app(ctx, result)
    elif kind == "Backup":
        show_backup(ctx, result)
    elif hasattr(result, "model_dump"):
        detail(ctx.out, list(result.model_dump(mode="json").items()))
    else:
        ctx.out.print(str(result), markup=False)
