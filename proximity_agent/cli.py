"""``proximity-agent``: run the agent and look after its database.

::

    proximity-agent [--config FILE] serve            the gRPC API, the periodic jobs, the metrics
    proximity-agent [--config FILE] migrate          bring the database to the newest schema
    proximity-agent [--config FILE] token create [--admin] [--user NAME] [--name NAME] [--expires-days N]
    proximity-agent [--config FILE] token list [--user NAME]
    proximity-agent [--config FILE] token revoke TOKEN_ID
    proximity-agent [--config FILE] plugins          the plugins the agent loads

Settings come from ``--config`` (TOML or JSON; default ``$PROXIMITY_AGENT_CONFIG``) and the
``PROXIMITY_AGENT_*`` variables (see ``proximity_agent/settings.py``). ``token create`` prints
the token, and only the token, on stdout: it is shown this once and stored only as a hash.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TextIO

from proximity_agent import __version__
from proximity_agent.settings import CONFIG_ENV, AgentSettings
from proximity_sdk.errors import ProximityError, ValidationError
from proximity_sdk.models.user import Role

__all__ = ["main"]

log = logging.getLogger("proximity_agent")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="proximity-agent", description="The Proximity gRPC agent.")
    parser.add_argument("--version", action="version", version=f"proximity-agent {__version__}")
    parser.add_argument("--config", metavar="FILE", help=f"settings file, TOML or JSON (default ${CONFIG_ENV})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="serve the gRPC API and run the periodic jobs")
    commands.add_parser("migrate", help="bring the database to the newest schema")
    commands.add_parser("plugins", help="list the plugins the agent loads")
    token = commands.add_parser("token", help="create, list and revoke API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    create = token.add_parser("create", help="issue a token (printed once)")
    create.add_argument("--admin", action="store_true", help="for an admin user (created when missing)")
    create.add_argument("--user", help="the user (default with --admin: 'admin'); a missing one is created")
    create.add_argument("--name", default="cli", help="a name for the token (default: cli)")
    create.add_argument("--expires-days", type=float, metavar="N", help="the token expires after N days")
    listing = token.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--user", help="only this user's tokens")
    revoke = token.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = AgentSettings.load(args.config)
        if args.command == "serve":
            from proximity_agent._serve import serve

            return serve(settings)
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "plugins":
            return _plugins(settings, sys.stdout)
        return _token(args, settings, sys.stdout)
    except ProximityError as exc:
        print(f"proximity-agent: error: {exc}", file=sys.stderr)
        hint = getattr(exc, "hint", None)
        if hint and hint not in str(exc):
            print(f"  hint: {hint}", file=sys.stderr)
        return 2 if isinstance(exc, ValidationError) else 1


# migrate -------------------------------------------------------------------------------------------


def _migrate(settings: AgentSettings) -> int:
    from proximity_sdk.store import default_data_dir
    from proximity_sdk.store._engine import create_store_engine, resolve_database_url
    from proximity_sdk.store._migrate import current_revision, head_revision, upgrade

    # the schema alone: no secret key needed, nothing else opened (a deploy job can run this first)
    url = resolve_database_url(settings.database_url, settings.data_dir or default_data_dir())
    engine = create_store_engine(url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    shown = url.render_as_string(hide_password=True)
    if before == after:
        print(f"{shown}: already at revision {after} (newest: {head_revision()})")
    else:
        print(f"{shown}: migrated from {before or 'an empty database'} to revision {after}")
    return 0


# token ---------------------------------------------------------------------------------------------


def _token(args: argparse.Namespace, settings: AgentSettings, out: TextIO) -> int:
    from proximity_sdk.store import Store
    from proximity_sdk.store.base import utcnow

    store = Store.open(settings.database_url, data_dir=settings.data_dir, secret_key=settings.resolved_secret_key())
    try:
        users = store.users
        action = str(args.token_command)
        if action == "create":
            if args.expires_days is not None and args.expires_days <= 0:
                raise ValidationError("--expires-days must be a positive number of days", field="expires_days")
            name = args.user or ("admin" if args.admin else None)
            if name is None:
                raise ValidationError("say whose token it is: --user NAME (a member), or --admin", field="user")
            role = Role.ADMIN if args.admin else Role.MEMBER
            expires = utcnow() + timedelta(days=args.expires_days) if args.expires_days else None
            user, record, secret, created = users.issue_token_for(name, role=role, name=args.name, expires_at=expires)
            if created:
                print(f"created {role.value} user {name!r}", file=sys.stderr)
            print(
                f"token {record.id} ({record.name!r}) for {user.role.value} {user.name!r}: shown once, store it now",
                file=sys.stderr,
            )
            out.write(secret + "\n")
            return 0
        if action == "list":
            chosen = [users.get(args.user)] if args.user else users.list()
            rows = [("ID", "USER", "ROLE", "NAME", "CREATED", "EXPIRES", "LAST USED")]
            for user in chosen:
                for token in users.tokens(user.id):
                    rows.append(
                        (
                            token.id,
                            user.name,
                            user.role.value,
                            token.name,
                            _when(token.created_at),
                            _when(token.expires_at),
                            _when(token.last_used_at),
                        )
                    )
            _table(rows, out)
            return 0
        users.revoke_token(args.token_id)
        print(f"revoked token {args.token_id}", file=out)
        return 0
    finally:
        store.close()


def _when(moment: object) -> str:
    from datetime import datetime

    return moment.strftime("%Y-%m-%d %H:%M") if isinstance(moment, datetime) else "-"


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


# plugins -------------------------------------------------------------------------------------------


def _plugins(settings: AgentSettings, out: TextIO) -> int:
    from proximity_sdk.plugins.manager import PluginManager

    manager = PluginManager(entry_points=settings.entry_points)
    pm = manager.pluggy
    dists = {id(plugin): f"{dist.project_name} {dist.version}" for plugin, dist in pm.list_plugin_distinfo()}
    rows = [("PLUGIN", "FROM", "HOOKS")]
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(caller.name.removeprefix("proximity_") for caller in pm.get_hookcallers(plugin) or [])
        rows.append((name, dists.get(id(plugin), "built-in"), ", ".join(hooks) or "-"))
    _table(rows, out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
