"""What every command that starts an operation does after starting it: wait with progress, or not."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from proximity_sdk.cli._exit import EXIT_INTERRUPTED, EXIT_OK
from proximity_sdk.cli._output import print_json, print_json_line
from proximity_sdk.cli._views import render_result

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context
    from proximity_sdk.engine.handle import OperationHandle

__all__ = ["finish"]

Render = Callable[["Context", Any], None]


def _elapsed(handle: OperationHandle) -> str:
    op = handle.get()
    if op.started_at is None or op.finished_at is None:
        return ""
    return f" in {(op.finished_at - op.started_at).total_seconds():.1f} s"


def finish(ctx: Context, handle: OperationHandle, render: Render | None = render_result) -> int:
    """``--no-wait``: print the id. Otherwise follow the operation (live progress on stderr, or
    JSON) and print its result. A failed/cancelled/timed-out operation raises (exit 1); with
    --json its record is printed first."""
    from proximity_sdk.cli._progress import follow, follow_json
    from proximity_sdk.errors import OperationError

    args = ctx.args
    if getattr(args, "no_wait", False):
        if ctx.json:
            print_json({"operation_id": handle.id})
        else:
            print(handle.id, flush=True)
        if not ctx.settings.remote:
            # the local engine runs the operation in this process: leaving now would abandon it
            ctx.err.print(
                "[dim]running locally: this process stays until the operation ends; "
                f"follow it from elsewhere with `proximity operations watch {handle.id}`[/dim]"
            )
        return EXIT_OK
    timeout = getattr(args, "timeout", None)
    # with --watch the output is JSON lines: the final record is one line too
    emit = print_json_line if ctx.json and getattr(args, "watch", False) else print_json
    try:
        if ctx.json:
            result = follow_json(handle, timeout=timeout) if args.watch else handle.wait(timeout=timeout)
        else:
            result = follow(handle, console=ctx.err, timeout=timeout, verbose=bool(getattr(args, "verbose", False)))
    except OperationError:
        if ctx.json:
            emit({"operation": handle.get(), "result": None})
        raise
    except KeyboardInterrupt:
        return _interrupted(ctx, handle)
    if ctx.json:
        emit({"operation": handle.get(), "result": result})
        return EXIT_OK
    op = handle.get()
    ctx.err.print(f"[green]{op.kind} succeeded{_elapsed(handle)}[/green] [dim](operation {op.id})[/dim]")
    if render is not None and result is not None:
        render(ctx, result)
    return EXIT_OK


def _interrupted(ctx: Context, handle: OperationHandle) -> int:
    from proximity_sdk.cli._progress import follow
    from proximity_sdk.errors import OperationError

    if ctx.settings.remote:
        ctx.err.print(
            f"detached; operation {handle.id} goes on in the agent "
            f"(`proximity operations watch {handle.id}`, or `operations cancel`)"
        )
        return EXIT_INTERRUPTED
    # locally the operation lives in this process: stop it cleanly (rolled back) instead of half-done
    ctx.err.print(
        "cancelling: what was created is rolled back (Ctrl-C again to quit now; "
        "the next run then finishes the rollback)"
    )
    handle.cancel()
    try:
        follow(handle, console=ctx.err)
    except OperationError as exc:
        ctx.err.print(str(exc), style="yellow", markup=False)
    return EXIT_INTERRUPTED
