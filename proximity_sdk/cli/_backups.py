"""`proximity backups`: create, list, restore, rm, schedule, schedules, unschedule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proximity_sdk.cli._confirm import confirm
from proximity_sdk.cli._exit import EXIT_OK
from proximity_sdk.cli._finish import finish
from proximity_sdk.cli._output import print_json, table
from proximity_sdk.cli._resolve import resolve_app
from proximity_sdk.cli._views import show_app, show_backup, size_text

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context

__all__ = ["create", "list_backups", "remove", "restore", "schedule", "schedules", "unschedule"]


def create(ctx: Context) -> int:
    a = ctx.args
    app = resolve_app(ctx.px, a.app, host=a.host)
    handle = ctx.px.backups.create(app.id, mode=a.mode, compression=a.compression, target=a.target, note=a.note)
    return finish(ctx, handle, show_backup)


def list_backups(ctx: Context) -> int:
    a = ctx.args
    app_id = resolve_app(ctx.px, a.app, host=a.host).id if a.app else None
    backups = list(ctx.px.backups.list(app_id, status=a.status))
    if ctx.json:
        print_json(backups)
        return EXIT_OK
    table(
        ctx.out,
        ("ID", "APP", "STATUS", "MODE", "TARGET", "SIZE", "CREATED", "NOTE"),
        (
            (b.id, b.hostname, b.status, b.mode, b.target or "local", size_text(b.size_bytes), b.created_at, b.note)
            for b in backups
        ),
        empty="no backups",
    )
    return EXIT_OK


def restore(ctx: Context) -> int:
    handle = ctx.px.backups.restore(ctx.args.backup_id, in_place=ctx.args.in_place, storage=ctx.args.storage)
    return finish(ctx, handle, show_app)


def remove(ctx: Context) -> int:
    backup = ctx.px.backups.get(ctx.args.backup_id)
    confirm(ctx, f"delete backup {backup.id} of {backup.hostname} ({backup.volid or 'no archive'})")
    return finish(ctx, ctx.px.backups.delete(backup.id))


def _show_schedules(ctx: Context, items: list[Any]) -> None:
    table(
        ctx.out,
        ("ID", "APP", "CRON (UTC)", "KEEP", "TARGET", "NEXT RUN", "LAST RUN"),
        ((s.id, s.app_id, s.cron, _keeps(s), s.target or "local", s.next_run_at, s.last_run_at) for s in items),
        empty="no backup schedules",
    )


def _keeps(s: Any) -> str:
    parts = [
        f"last {s.keep_last}" if s.keep_last else None,
        f"daily {s.keep_daily}" if s.keep_daily else None,
        f"weekly {s.keep_weekly}" if s.keep_weekly else None,
    ]
    return ", ".join(p for p in parts if p) or "all"


def schedule(ctx: Context) -> int:
    a = ctx.args
    app = resolve_app(ctx.px, a.app, host=a.host)
    created = ctx.px.backups.schedule(
        app.id, cron=a.cron, keep_last=a.keep_last, keep_daily=a.keep_daily, keep_weekly=a.keep_weekly, target=a.target
    )
    if ctx.json:
        print_json(created)
    else:
        _show_schedules(ctx, [created])
    return EXIT_OK


def schedules(ctx: Context) -> int:
    a = ctx.args
    app_id = resolve_app(ctx.px, a.app, host=a.host).id if a.app else None
    items = list(ctx.px.backups.schedules(app_id))
    if ctx.json:
        print_json(items)
    else:
        _show_schedules(ctx, items)
    return EXIT_OK


def unschedule(ctx: Context) -> int:
    ctx.px.backups.unschedule(ctx.args.schedule_id)
    if ctx.json:
        print_json({"removed": ctx.args.schedule_id})
    else:
        ctx.err.print(f"removed schedule {ctx.args.schedule_id}")
    return EXIT_OK
