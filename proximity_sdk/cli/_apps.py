"""`proximity apps`: deploy, list, show, start, stop, restart, rm, clone, discover, adopt, logs, credentials."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proximity_sdk.cli._confirm import confirm
from proximity_sdk.cli._exit import EXIT_OK
from proximity_sdk.cli._finish import finish
from proximity_sdk.cli._output import detail, print_json, table
from proximity_sdk.cli._resolve import resolve_app
from proximity_sdk.cli._views import show_app
from proximity_sdk.errors import ValidationError

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context
    from proximity_sdk.models.app import App
    from proximity_sdk.models.resources import Resources

__all__ = [
    "adopt",
    "clone",
    "credentials",
    "deploy",
    "deploy_image",
    "discover",
    "list_apps",
    "logs",
    "remove",
    "restart",
    "show",
    "start",
    "stop",
    "update",
    "update_window",
    "updates",
]


def _resources(ctx: Context) -> Resources | None:
    a = ctx.args
    if all(v is None for v in (a.cores, a.memory, a.swap, a.disk)):
        return None
    from pydantic import ValidationError as PydanticError

    from proximity_sdk.models.resources import Resources

    try:
        return Resources(cores=a.cores, memory_mb=a.memory, swap_mb=a.swap, disk_gb=a.disk)
    except PydanticError as exc:
        first = exc.errors()[0]
        flag = {"cores": "--cores", "memory_mb": "--memory", "swap_mb": "--swap", "disk_gb": "--disk"}
        name = flag.get(str(first["loc"][0]), str(first["loc"][0]))
        raise ValidationError(f"{name}: {first['msg']}", field=str(first["loc"][0])) from None


def _environment(ctx: Context) -> dict[str, str] | None:
    """``--env NAME`` (the value from this process's environment) and ``--env-file``: a value on
    the command line would be in ``ps`` output and the shell history of everyone on the machine."""
    a = ctx.args
    env: dict[str, str] = {}
    if a.env_file:
        env.update(_env_file(a.env_file))
    for item in a.env:
        name, sep, _value = item.partition("=")
        if sep:
            raise ValidationError(
                f"--env {name}=...: values are not taken on the command line (others can read it in ps and the "
                "shell history)",
                field="environment",
                hint=f"export {name}=... then pass --env {name}, or put {name}=VALUE lines in a file and pass "
                "--env-file FILE ('-' for stdin)",
            )
        if not name:
            raise ValidationError("--env needs a variable name", field="environment")
        if name not in os.environ:
            raise ValidationError(
                f"--env {name}: no variable {name} in this shell's environment",
                field="environment",
                hint=f"export {name}=... first (KEY=VALUE on the command line is not accepted), or use --env-file",
            )
        env[name] = os.environ[name]
    return env or None


def _env_file(path: str) -> dict[str, str]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"--env-file {path}: {exc.strerror or exc}", field="environment") from None
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.removeprefix("export ").partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"--env-file {path}, line {number}: expected NAME=VALUE", field="environment")
        env[name.strip()] = value
    return env


def deploy(ctx: Context) -> int:
    a = ctx.args
    handle = ctx.px.apps.deploy(
        a.catalog_id,
        hostname=a.hostname,
        host=a.host,
        node=a.node,
        environment=_environment(ctx),
        resources=_resources(ctx),
        strategy=a.strategy,
    )
    return finish(ctx, handle, show_app)


def deploy_image(ctx: Context) -> int:
    a = ctx.args
    handle = ctx.px.apps.deploy_image(
        a.reference,
        hostname=a.hostname,
        host=a.host,
        node=a.node,
        environment=_environment(ctx),
        ports=list(a.port),
        resources=_resources(ctx),
    )
    return finish(ctx, handle, show_app)


def list_apps(ctx: Context) -> int:
    a = ctx.args
    apps = list(ctx.px.apps.list(status=a.status, search=a.search, host=a.host))
    if ctx.json:
        print_json(apps)
        return EXIT_OK
    table(
        ctx.out,
        ("HOSTNAME", "STATUS", "CATALOG", "NODE", "VMID", "URL", "ID"),
        ((x.hostname, x.status, x.catalog_id, x.node, x.vmid, x.url, x.id) for x in apps),
        empty="no apps: deploy one with `proximity apps deploy CATALOG_ID --hostname NAME`",
    )
    return EXIT_OK


def _app(ctx: Context) -> App:
    return resolve_app(ctx.px, ctx.args.app, host=getattr(ctx.args, "host", None))


def show(ctx: Context) -> int:
    app = _app(ctx)
    if ctx.json:
        print_json(app)
    else:
        show_app(ctx, app)
    return EXIT_OK


def start(ctx: Context) -> int:
    return finish(ctx, ctx.px.apps.start(_app(ctx).id), show_app)


def restart(ctx: Context) -> int:
    return finish(ctx, ctx.px.apps.restart(_app(ctx).id), show_app)


def stop(ctx: Context) -> int:
    timeout = ctx.args.shutdown_timeout
    if timeout is not None and not 1 <= timeout <= 3600:
        raise ValidationError(
            f"--shutdown-timeout must be whole seconds from 1 to 3600, not {timeout}",
            field="shutdown_timeout",
            hint="Leave it out for the app's own default",
        )
    # flags left out are None: the app's own default (docs/cli.md)
    handle = ctx.px.apps.stop(_app(ctx).id, force=ctx.args.force, timeout=timeout)
    return finish(ctx, handle, show_app)


def remove(ctx: Context) -> int:
    app = _app(ctx)
    keep = bool(ctx.args.keep_container)
    what = (
        f"forget app {app.hostname} (container {app.vmid} is left as it is)"
        if keep
        else f"destroy app {app.hostname} and its container {app.vmid or ''} with its data"
    )
    confirm(ctx, what.replace("  ", " "))
    return finish(ctx, ctx.px.apps.delete(app.id, destroy=not keep))


def clone(ctx: Context) -> int:
    app = _app(ctx)
    return finish(ctx, ctx.px.apps.clone(app.id, hostname=ctx.args.hostname, node=ctx.args.node), show_app)


def discover(ctx: Context) -> int:
    found = list(ctx.px.apps.discover(ctx.args.host))
    if ctx.json:
        print_json(found)
        return EXIT_OK
    table(
        ctx.out,
        ("HOST", "NODE", "VMID", "NAME", "STATUS", "TAGS", "LOCK"),
        ((c.host, c.node, c.vmid, c.name, c.status, c.tags, c.lock) for c in found),
        empty="every container is managed (or there are none)",
    )
    return EXIT_OK


def adopt(ctx: Context) -> int:
    a = ctx.args
    handle = ctx.px.apps.adopt(a.vmid, host=a.host, node=a.node, catalog_id=a.catalog_id, hostname=a.hostname)
    return finish(ctx, handle, show_app)


def logs(ctx: Context) -> int:
    app = _app(ctx)
    text = ctx.px.apps.logs(app.id, tail=ctx.args.tail, service=ctx.args.service)
    if ctx.json:
        print_json({"logs": text})
    elif text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:  # an empty answer is not a silent one: stdout stays empty for scripts
        ctx.err.print(f"{app.hostname}: no output logged yet")
    return EXIT_OK


def credentials(ctx: Context) -> int:
    creds = ctx.px.apps.credentials(_app(ctx).id)
    # shown in clear on purpose: this command exists to reveal them (model_dump would mask them)
    root = creds.root_password.get_secret_value() if creds.root_password is not None else None
    secrets = {k: v.get_secret_value() for k, v in creds.secrets.items()}
    if ctx.json:
        print_json({"app_id": creds.app_id, "root_password": root, "secrets": secrets})
        return EXIT_OK
    detail(ctx.out, [("root password", root), *secrets.items()])
    return EXIT_OK


def updates(ctx: Context) -> int:
    app_id = _app(ctx).id if ctx.args.app else None
    found = list(ctx.px.apps.updates(app_id=app_id, pull=not ctx.args.no_pull))
    if ctx.json:
        print_json(found)
        return EXIT_OK
    table(
        ctx.out,
        ("HOSTNAME", "CATALOG", "VERSION", "NEWER", "IMAGES"),
        (
            (
                u.hostname,
                u.catalog_id,
                u.current_version,
                u.available_version or "-",
                ", ".join(f"{i.image} -> {i.available_digest[:19]}" for i in u.images) or "-",
            )
            for u in found
        ),
        empty="every app is up to date",
    )
    return EXIT_OK


def update(ctx: Context) -> int:
    return finish(ctx, ctx.px.apps.update(_app(ctx).id, version=ctx.args.version), show_app)


def update_window(ctx: Context) -> int:
    from pydantic import ValidationError as PydanticError

    from proximity_sdk.models.update import UpdateWindow

    a = ctx.args
    app = _app(ctx)
    if a.off:
        window = ctx.px.apps.set_update_window(app.id, window=None)
    elif a.start is not None:
        fields: dict[str, Any] = {"start": a.start, "minutes": a.minutes}
        if a.days:
            fields["days"] = tuple(d.strip().lower() for d in a.days.split(",") if d.strip())
        try:
            wanted = UpdateWindow.model_validate(fields)
        except PydanticError as exc:
            problem = exc.errors()[0]
            raise ValidationError(
                f"update window: {'.'.join(map(str, problem['loc']))}: {problem['msg']}",
                field="window",
                hint="--start HH:MM (UTC), --days mon,...,sun, --minutes 15..1440",
            ) from None
        window = ctx.px.apps.set_update_window(app.id, window=wanted)
    else:
        window = ctx.px.apps.update_window(app.id)
    if ctx.json:
        print_json(window)
    elif window is None:
        ctx.out.print(f"{app.hostname}: no automatic updates")
    else:
        ctx.out.print(
            f"{app.hostname}: updated automatically on {','.join(window.days)} from {window.start} UTC "
            f"for {window.minutes} min (when something is newer)"
        )
    return EXIT_OK
