"""`proximity operations`: list, show, watch, cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proximity_sdk.cli._exit import EXIT_OK
from proximity_sdk.cli._finish import finish
from proximity_sdk.cli._output import detail, print_json, table
from proximity_sdk.cli._resolve import resolve_app
from proximity_sdk.errors import ValidationError

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context
    from proximity_sdk.models.operation import Operation

__all__ = ["cancel", "list_operations", "show", "watch"]


def _duration(op: Operation) -> str:
    if op.started_at is None:
        return "-"
    if op.finished_at is None:
        return "running"
    return f"{(op.finished_at - op.started_at).total_seconds():.1f} s"


def _app_names(ctx: Context, ops: list[Operation]) -> dict[str, str]:
    """App id -> hostname for the tables (an app deleted since keeps showing its id)."""
    if not any(o.app_id for o in ops):
        return {}
    return {app.id: app.hostname for app in ctx.px.apps.list()}


def _show(ctx: Context, op: Operation) -> None:
    app = _app_names(ctx, [op]).get(op.app_id or "", op.app_id)
    detail(
        ctx.out,
        [
            ("operation", op.id),
            ("kind", op.kind),
            ("status", op.status),
            ("step", op.current_step),
            ("steps", op.steps),
            ("app", app),
            ("vmid", op.vmid),
            ("error", op.error),
            ("created", op.created_at),
            ("duration", _duration(op)),
            ("cancel requested", op.cancel_requested),
        ],
        title=f"{op.kind} {op.status.value}",
    )


def list_operations(ctx: Context) -> int:
    from proximity_sdk.models.operation import OperationStatus

    a = ctx.args
    if a.limit < 1:
        raise ValidationError("--limit must be at least 1", field="limit")
    status = None
    if a.status is not None:
        try:
            status = OperationStatus(a.status)
        except ValueError:
            known = ", ".join(s.value for s in OperationStatus)
            raise ValidationError(f"unknown status {a.status!r}; one of {known}", field="status") from None
    app_id = resolve_app(ctx.px, a.app, host=a.host).id if a.app else None
    ops = list(ctx.px.operations.list(app_id=app_id, status=status, limit=a.limit))
    if ctx.json:
        print_json(ops)
        return EXIT_OK
    names = _app_names(ctx, ops)
    table(
        ctx.out,
        ("ID", "KIND", "STATUS", "STEP", "APP", "CREATED", "DURATION", "ERROR"),
        (
            (
                o.id,
                o.kind,
                o.status,
                o.current_step,
                names.get(o.app_id or "", o.app_id),
                o.created_at,
                _duration(o),
                o.error,
            )
            for o in ops
        ),
        empty="no operations",
    )
    return EXIT_OK


def show(ctx: Context) -> int:
    from proximity_sdk.cli._progress import event_line

    op = ctx.px.operations.get(ctx.args.operation_id)
    events = list(ctx.px.operations.handle(op.id).events(follow=False))
    if ctx.json:
        print_json({"operation": op, "events": events})
        return EXIT_OK
    _show(ctx, op)
    ctx.out.print()
    for event in events:
        if event.level != "debug" or ctx.args.verbose:
            ctx.out.print(event_line(event))
    return EXIT_OK


def watch(ctx: Context) -> int:
    return finish(ctx, ctx.px.operations.handle(ctx.args.operation_id))


def cancel(ctx: Context) -> int:
    op = ctx.px.operations.cancel(ctx.args.operation_id)
    if ctx.json:
        print_json(op)
    elif op.finished:
        ctx.err.print(f"operation {op.id} had already ended ({op.status.value}); nothing to cancel")
    else:
        ctx.err.print(
            f"cancel requested: {op.kind} {op.id} stops at its next step and rolls back "
            f"(`proximity operations watch {op.id}`)"
        )
    return EXIT_OK
