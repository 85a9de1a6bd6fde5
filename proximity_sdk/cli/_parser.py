"""The argument parser of `proximity`. Standard library only: it is built for every run, --help included.

Each command sets ``handler="module:function"`` (a module of this package, imported only when the
command runs); the function takes a :class:`~proximity_sdk.cli._context.Context`.
"""

from __future__ import annotations

import argparse

from proximity_sdk import __version__
from proximity_sdk.cli._exit import EPILOG

__all__ = ["build_parser"]

_SUPPRESS = argparse.SUPPRESS


def _output_options() -> argparse.ArgumentParser:
    """--json and --debug after the command too (`proximity apps list --json`). SUPPRESS keeps the
    value given before the command when they are not repeated after it."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--json",
        action="store_true",
        default=_SUPPRESS,
        help="print machine-readable JSON (and nothing else) on stdout",
    )
    parent.add_argument(
        "--debug", action="store_true", default=_SUPPRESS, help="show tracebacks and debug logs on stderr"
    )
    return parent


class _Builder:
    def __init__(self, root: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._root = root
        self._common = _output_options()

    def group(self, name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        parser = self._root.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(group_parser=parser)
        return parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")

    def leaf(
        self,
        sub: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: str,
        help_text: str,
        *,
        operation: bool = False,
    ) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=help_text, parents=[self._common])
        parser.set_defaults(handler=handler)
        if operation:
            wait = parser.add_argument_group("operation")
            wait.add_argument(
                "--no-wait",
                action="store_true",
                help="print the operation id and return (locally the process still runs it "
                "to the end: see docs/cli.md)",
            )
            wait.add_argument(
                "--timeout",
                type=float,
                metavar="SECONDS",
                help="stop waiting after this long (exit 1; the operation goes on)",
            )
            wait.add_argument(
                "--watch", action="store_true", help="with --json: print each event as a JSON line before the result"
            )
            wait.add_argument(
                "-v", "--verbose", action="store_true", help="also show debug events (Proxmox task log lines)"
            )
        return parser


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"proximity {__version__}")
    out = parser.add_argument_group("output")
    out.add_argument(
        "--json", action="store_true", default=False, help="print machine-readable JSON (and nothing else) on stdout"
    )
    out.add_argument("--debug", action="store_true", default=False, help="show tracebacks and debug logs on stderr")
    conn = parser.add_argument_group("connection (flags > environment > config file > defaults)")
    conn.add_argument(
        "--config", metavar="PATH", help="config file (env PROXIMITY_CONFIG; default ~/.config/proximity/config.toml)"
    )
    conn.add_argument("--profile", metavar="NAME", help="profile of the config file (env PROXIMITY_PROFILE)")
    conn.add_argument("--local", action="store_true", default=None, help="run locally even if an agent is configured")
    conn.add_argument("--data-dir", metavar="DIR", help="local state directory (env PROXIMITY_DATA_DIR)")
    conn.add_argument(
        "--database-url",
        metavar="URL",
        help="local database, e.g. postgresql+psycopg://... (env PROXIMITY_DATABASE_URL)",
    )
    conn.add_argument("--agent", metavar="HOST:PORT", help="talk to a proximity-agent (env PROXIMITY_AGENT)")
    conn.add_argument(
        "--token-file", metavar="PATH", help="file holding the agent's bearer token (or env PROXIMITY_TOKEN)"
    )
    conn.add_argument("--ca-file", metavar="PATH", help="CA that signed the agent's certificate (PROXIMITY_CA_FILE)")
    conn.add_argument("--cert-file", metavar="PATH", help="client certificate for mutual TLS (PROXIMITY_CERT_FILE)")
    conn.add_argument("--key-file", metavar="PATH", help="its private key (PROXIMITY_KEY_FILE)")


def _catalog(b: _Builder) -> None:
    sub = b.group("catalog", "the apps that can be deployed")
    p = b.leaf(sub, "list", "_catalog:list_apps", "list catalog apps")
    p.add_argument("--category", help="only this category")
    p = b.leaf(sub, "search", "_catalog:search", "search catalog apps by name, tags and description")
    p.add_argument("query")
    p = b.leaf(sub, "show", "_catalog:show", "one catalog app in detail")
    p.add_argument("catalog_id", metavar="CATALOG_ID")


def _hosts(b: _Builder) -> None:
    sub = b.group("hosts", "registered Proxmox hosts (an API endpoint: one node or a cluster)")
    p = b.leaf(sub, "add", "_hosts:add", "register a Proxmox host (checked, and its nodes synced, first)")
    p.add_argument("name", help="a short name: lowercase letters, digits, '-'")
    p.add_argument("--url", required=True, help="https://<host>:8006")
    auth = p.add_argument_group("credentials (an API token is preferred)")
    auth.add_argument("--token-id", metavar="USER@REALM!NAME", help="API token id, e.g. root@pam!proximity")
    auth.add_argument(
        "--token-secret-file",
        metavar="PATH",
        help="file with the token secret ('-': stdin; else env PROXIMITY_HOST_TOKEN_SECRET, else a prompt)",
    )
    auth.add_argument("--user", metavar="USER@REALM", help="user for password (ticket) auth, e.g. root@pam")
    auth.add_argument(
        "--password-file",
        metavar="PATH",
        help="file with the password ('-': stdin; else env PROXIMITY_HOST_PASSWORD, else a prompt)",
    )
    tls = p.add_argument_group("TLS")
    tls.add_argument(
        "--ca-file", dest="host_ca_file", metavar="PATH", help="the cluster CA (/etc/pve/pve-root-ca.pem on a node)"
    )
    tls.add_argument("--insecure", action="store_true", help="do not verify the certificate (not recommended)")
    ssh = p.add_argument_group("node shell (SSH)")
    ssh.add_argument("--ssh-user", help="default root")
    ssh.add_argument("--ssh-port", type=int, help="default 22")
    ssh.add_argument("--ssh-key", metavar="PATH", help="private key file")
    ssh.add_argument("--known-hosts", metavar="PATH", help="known_hosts file with the nodes' keys")
    ssh.add_argument("--trust-on-first-use", action="store_true", help="pin unknown node keys on first contact")
    ssh.add_argument(
        "--ssh-address",
        action="append",
        default=[],
        metavar="NODE=ADDRESS",
        help="where to SSH for a node (repeat; default: the node name)",
    )
    p.add_argument("--no-check", action="store_true", help="store it without connecting first")
    b.leaf(sub, "list", "_hosts:list_hosts", "list hosts (the default first)")
    p = b.leaf(sub, "show", "_hosts:show", "one host and its nodes")
    p.add_argument("host", metavar="HOST", help="name or id")
    p = b.leaf(sub, "rm", "_hosts:remove", "forget a host (refused while it has apps)")
    p.add_argument("host", metavar="HOST")
    p = b.leaf(sub, "test", "_hosts:test", "connect with the stored credentials (exit 5 when it fails)")
    p.add_argument("host", metavar="HOST", nargs="?", help="default: the default host")
    p = b.leaf(sub, "default", "_hosts:default", "show the default host, or make HOST the default")
    p.add_argument("host", metavar="HOST", nargs="?")
    p = b.leaf(sub, "keys", "_hosts:keys", "the SSH host keys pinned for the host's nodes")
    p.add_argument("host", metavar="HOST")
    p = b.leaf(
        sub,
        "accept-key",
        "_hosts:accept_key",
        "accept the new SSH host key of a node (after a reinstall), checked against its fingerprint",
    )
    p.add_argument("host", metavar="HOST")
    p.add_argument("node", metavar="NODE")
    p.add_argument("fingerprint", metavar="SHA256:...", help="verified on the node's console (ssh-keygen -lf)")


def _nodes(b: _Builder) -> None:
    sub = b.group("nodes", "nodes of the hosts")
    p = b.leaf(sub, "list", "_nodes:list_nodes", "nodes as last synced")
    p.add_argument("--host", help="only this host")
    p.add_argument("--sync", action="store_true", help="read them from Proxmox first")
    p = b.leaf(sub, "storages", "_nodes:storages", "the storages a node sees now")
    p.add_argument("node", metavar="NODE")
    p.add_argument("--host", help="default: the default host")
    p.add_argument("--content", help="only storages holding this content (rootdir, vztmpl, backup, ...)")


def _apps(b: _Builder) -> None:
    sub = b.group("apps", "deployed apps: one catalog app in one LXC container each")
    p = b.leaf(sub, "deploy", "_apps:deploy", "deploy a catalog app into a new container", operation=True)
    p.add_argument("catalog_id", metavar="CATALOG_ID")
    p.add_argument("--hostname", required=True, help="the app's name and the container's hostname")
    p.add_argument("--host", help="default: the default host")
    p.add_argument("--node", help="default: chosen by free capacity")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass the variable NAME with its value from this shell's environment (repeat); "
        "values never go on the command line",
    )
    p.add_argument("--env-file", metavar="PATH", help="NAME=VALUE lines (# comments); '-' reads them from stdin")
    p.add_argument("--cores", type=int)
    p.add_argument("--memory", type=int, metavar="MB")
    p.add_argument("--swap", type=int, metavar="MB")
    p.add_argument("--disk", type=int, metavar="GB")
    p.add_argument(
        "--strategy",
        choices=("auto", "oci", "compose"),
        default="auto",
        help="auto (default): a native OCI container where the app and node (PVE >= 9.1) allow it",
    )
    p = b.leaf(
        sub,
        "deploy-image",
        "_apps:deploy_image",
        "deploy any OCI image as a native OCI container (PVE >= 9.1; no SSH)",
        operation=True,
    )
    p.add_argument("reference", metavar="IMAGE", help="registry/name:tag")
    p.add_argument("--hostname", required=True, help="the app's name and the container's hostname")
    p.add_argument("--host", help="default: the default host")
    p.add_argument("--node", help="default: chosen by free capacity")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass the variable NAME with its value from this shell's environment (repeat); "
        "values never go on the command line",
    )
    p.add_argument("--env-file", metavar="PATH", help="NAME=VALUE lines (# comments); '-' reads them from stdin")
    p.add_argument("--port", action="append", type=int, default=[], help="a port the image listens on (repeat)")
    p.add_argument("--cores", type=int)
    p.add_argument("--memory", type=int, metavar="MB")
    p.add_argument("--swap", type=int, metavar="MB")
    p.add_argument("--disk", type=int, metavar="GB")
    p = b.leaf(sub, "list", "_apps:list_apps", "list apps")
    p.add_argument("--status", help="running, stopped, error, ...")
    p.add_argument("--search", help="part of the hostname")
    p.add_argument("--host", help="only this host")
    p = b.leaf(sub, "show", "_apps:show", "one app in detail")
    p.add_argument("app", metavar="APP", help="id or hostname")
    p.add_argument("--host", help="the host, when the hostname exists on several")
    for name, help_text in (("start", "start an app"), ("restart", "restart an app")):
        p = b.leaf(sub, name, f"_apps:{name}", help_text, operation=True)
        p.add_argument("app", metavar="APP")
        p.add_argument("--host")
    p = b.leaf(sub, "stop", "_apps:stop", "shut an app down", operation=True)
    p.add_argument("app", metavar="APP")
    p.add_argument("--host")
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="kill the container when the shutdown takes too long (--no-force: never); default: the "
        "app's (a compose app: no; a native OCI app: yes, as docker stop)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=int,
        default=None,
        metavar="SECONDS",
        help="1 to 3600; default: the app's (a compose app: 60; a native OCI app: its stop_grace_period, else 10)",
    )
    p = b.leaf(sub, "rm", "_apps:remove", "destroy an app's container and forget the app", operation=True)
    p.add_argument("app", metavar="APP")
    p.add_argument("--host")
    p.add_argument("--keep-container", action="store_true", help="only forget the app (for adopted ones)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p = b.leaf(sub, "clone", "_apps:clone", "copy an app into a new container", operation=True)
    p.add_argument("app", metavar="APP")
    p.add_argument("--host")
    p.add_argument("--hostname", required=True, help="the new app's name")
    p.add_argument("--node", help="default: the source's node")
    p = b.leaf(sub, "discover", "_apps:discover", "containers no app manages")
    p.add_argument("--host", help="default: every host")
    p = b.leaf(sub, "adopt", "_apps:adopt", "make an existing container an app, unchanged", operation=True)
    p.add_argument("vmid", type=int, metavar="VMID")
    p.add_argument("--host", help="default: the default host")
    p.add_argument("--node", help="where it is expected (checked)")
    p.add_argument("--catalog-id", help="what it runs, if it is a catalog app")
    p.add_argument("--hostname", help="the app's name (default: the container's name)")
    p = b.leaf(sub, "logs", "_apps:logs", "the last lines of the app's compose services (an OCI app: its console)")
    p.add_argument("app", metavar="APP")
    p.add_argument("--host")
    p.add_argument("-n", "--tail", type=int, default=200, help="lines (default 200)")
    p.add_argument("--service", help="one compose service (not for an OCI app: one process)")
    p = b.leaf(sub, "credentials", "_apps:credentials", "root password and generated secrets (shown in clear)")
    p.add_argument("app", metavar="APP")
    p.add_argument("--host")
    p = b.leaf(sub, "updates", "_apps:updates", "apps with a newer catalog version or new image digests")
    p.add_argument("app", metavar="APP", nargs="?", help="check this app only")
    p.add_argument("--host")
    p.add_argument("--no-pull", action="store_true", help="compare catalog versions only (no pull in the containers)")
    p = b.leaf(
        sub,
        "update",
        "_apps:update",
        "update an app (a safety backup first; restored if anything fails)",
        operation=True,
    )
    p.add_argument("app", metavar="APP")
    p.add_argument("--host")
    p.add_argument("--version", help="the catalog version expected (refused if the catalog has another)")
    p = b.leaf(
        sub,
        "update-window",
        "_apps:update_window",
        "show or set the weekly window (UTC) in which the app is updated automatically",
    )
    p.add_argument("app", metavar="APP")
    p.add_argument("--host")
    window = p.add_mutually_exclusive_group()
    window.add_argument("--start", metavar="HH:MM", help="open the window at this time (UTC)")
    window.add_argument("--off", action="store_true", help="no automatic updates")
    p.add_argument("--days", metavar="DAYS", help="comma-separated, e.g. sat,sun (default: every day)")
    p.add_argument("--minutes", type=int, default=120, help="how long it stays open (default 120)")


def _backups(b: _Builder) -> None:
    sub = b.group("backups", "backups of apps (vzdump), restores and schedules")
    p = b.leaf(sub, "create", "_backups:create", "back an app up", operation=True)
    p.add_argument("app", metavar="APP", help="id or hostname")
    p.add_argument("--host")
    p.add_argument("--mode", default="snapshot", help="snapshot (default), suspend or stop")
    p.add_argument("--compression", default="zstd", help="zstd (default), gzip, lzo or none")
    p.add_argument("--target", help="a configured backup target (default: Proxmox storage local)")
    p.add_argument("--note")
    p = b.leaf(sub, "list", "_backups:list_backups", "list backups, newest first")
    p.add_argument("app", metavar="APP", nargs="?", help="only this app's")
    p.add_argument("--host")
    p.add_argument("--status", help="completed, failed, ...")
    p = b.leaf(sub, "restore", "_backups:restore", "restore an app from a backup", operation=True)
    p.add_argument("backup_id", metavar="BACKUP_ID")
    p.add_argument(
        "--in-place", action="store_true", help="overwrite the container (after a safety backup) instead of a new one"
    )
    p.add_argument("--storage", help="disk storage (default: the current one)")
    p = b.leaf(sub, "rm", "_backups:remove", "delete a backup (its archive and record)", operation=True)
    p.add_argument("backup_id", metavar="BACKUP_ID")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p = b.leaf(sub, "schedule", "_backups:schedule", "back an app up on a cron schedule (UTC)")
    p.add_argument("app", metavar="APP")
    p.add_argument("--host")
    p.add_argument("--cron", required=True, help='5 fields, e.g. "0 3 * * *"')
    p.add_argument("--keep-last", type=int, default=7, help="default 7")
    p.add_argument("--keep-daily", type=int)
    p.add_argument("--keep-weekly", type=int)
    p.add_argument("--target")
    p = b.leaf(sub, "schedules", "_backups:schedules", "list backup schedules")
    p.add_argument("app", metavar="APP", nargs="?")
    p.add_argument("--host")
    p = b.leaf(sub, "unschedule", "_backups:unschedule", "delete a backup schedule")
    p.add_argument("schedule_id", metavar="SCHEDULE_ID")


def _operations(b: _Builder) -> None:
    sub = b.group("operations", "long actions (deploy, backup, ...): their status and events")
    p = b.leaf(sub, "list", "_operations:list_operations", "recent operations, newest first")
    p.add_argument("--app", help="only this app's (id or hostname)")
    p.add_argument("--host", help="the app's host, when its hostname exists on several")
    p.add_argument("--status", help="pending, running, succeeded, failed, cancelled")
    p.add_argument("--limit", type=int, default=50, help="default 50")
    p = b.leaf(sub, "show", "_operations:show", "one operation and its events")
    p.add_argument("operation_id", metavar="OPERATION_ID")
    p.add_argument("-v", "--verbose", action="store_true", help="also show debug events")
    p = b.leaf(sub, "watch", "_operations:watch", "follow an operation until it ends", operation=True)
    p.add_argument("operation_id", metavar="OPERATION_ID")
    p = b.leaf(sub, "cancel", "_operations:cancel", "ask an operation to stop (what it created is rolled back)")
    p.add_argument("operation_id", metavar="OPERATION_ID")


def _misc(b: _Builder, root: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub = b.group("config", "the settings in effect")
    b.leaf(sub, "show", "_config:show", "the resolved settings and where each comes from (secrets hidden)")
    sandbox = root.add_parser(
        "sandbox",
        help="try it: a sandbox Proxmox, an agent, and a first app deployed with live progress",
        description="Start a sandbox Proxmox (fake; nothing really runs) and a proximity-agent on this machine, "
        "deploy a sample app with live progress, and show how to use the same commands against it "
        "and against a real Proxmox host. Serves until Ctrl-C.",
    )
    sandbox.add_argument(
        "--app",
        metavar="CATALOG_ID",
        help="the app to deploy first (default uptime-kuma; with --real demo-web, whose image "
        "the sandbox serves from a local registry)",
    )
    sandbox.add_argument("--hostname", default="demo", help="its hostname (default demo)")
    sandbox.add_argument("--once", action="store_true", help="stop after the first deploy instead of serving")
    sandbox.add_argument(
        "--real",
        action="store_true",
        help="real LXC containers behind the sandbox's API (root, LXC: scripts/real-node)",
    )
    sandbox.set_defaults(handler="_sandbox:run", raw_handler=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proximity",
        description="Self-hosted apps on Proxmox VE.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser)
    root = parser.add_subparsers(dest="command", metavar="COMMAND")
    builder = _Builder(root)
    _catalog(builder)
    _hosts(builder)
    _nodes(builder)
    _apps(builder)
    _backups(builder)
    _operations(builder)
    _misc(builder, root)
    return parser
