"""`proximity hosts`: add, list, show, rm, test, default."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from proximity_sdk.cli._exit import EXIT_OK, EXIT_UNREACHABLE
from proximity_sdk.cli._output import detail, print_json, table
from proximity_sdk.cli._secrets import read_secret
from proximity_sdk.errors import ValidationError

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context
    from proximity_sdk.models.host import Host
    from proximity_sdk.models.ssh import SshAccess

__all__ = ["accept_key", "add", "default", "keys", "list_hosts", "remove", "show", "test"]


def _ssh(ctx: Context) -> SshAccess | None:
    a = ctx.args
    given = (a.ssh_user, a.ssh_port, a.ssh_key, a.known_hosts, a.ssh_address or None, a.trust_on_first_use or None)
    if all(v is None for v in given):
        return None
    from proximity_sdk.models.ssh import SshAccess

    addresses: dict[str, str] = {}
    for item in a.ssh_address:
        node, sep, address = item.partition("=")
        if not sep or not node or not address:
            raise ValidationError(f"--ssh-address {item!r} must be NODE=ADDRESS", field="ssh_address")
        addresses[node] = address
    fields: dict[str, object] = {"addresses": addresses, "trust_on_first_use": bool(a.trust_on_first_use)}
    for name, value in (("user", a.ssh_user), ("port", a.ssh_port), ("known_hosts", a.known_hosts)):
        if value is not None:
            fields[name] = value
    if a.ssh_key is not None:
        fields["key_file"] = str(_existing(a.ssh_key, "ssh_key"))
    if a.known_hosts is not None:
        fields["known_hosts"] = str(_existing(a.known_hosts, "known_hosts"))
    return SshAccess.model_validate(fields)


def _existing(path: str, field: str) -> str:
    from pathlib import Path

    full = Path(path).expanduser()
    if not full.is_file():
        raise ValidationError(f"{field.replace('_', ' ')} file {path!r} does not exist", field=field)
    return str(full.resolve())


def _host_rows(hosts: list[Host]) -> list[tuple[object, ...]]:
    return [
        (
            "*" if h.is_default else "",
            h.name,
            h.url,
            h.token_id or h.user,
            "yes" if h.ssh else "no",
            "verified" if h.verify_tls else "NOT verified",
            h.id,
        )
        for h in hosts
    ]


def _show_host(ctx: Context, host: Host) -> None:
    detail(
        ctx.out,
        [
            ("name", host.name),
            ("id", host.id),
            ("url", host.url),
            ("default", host.is_default),
            ("auth", f"{host.auth} ({host.token_id or host.user})"),
            ("tls", "verified" + (" against its CA" if host.ca_pem else "") if host.verify_tls else "NOT verified"),
            ("node shell", _ssh_text(host)),
            ("added", host.created_at),
        ],
        title=f"host {host.name}",
    )


def _ssh_text(host: Host) -> str | None:
    if host.ssh is None:
        return None
    where = ", ".join(f"{n}={a}" for n, a in sorted(host.ssh.addresses.items())) or "each node by its name"
    return f"ssh as {host.ssh.user}, port {host.ssh.port} ({where})"


def add(ctx: Context) -> int:
    a = ctx.args
    if a.token_id and a.user:
        raise ValidationError("give --token-id or --user, not both", field="token_id")
    if not a.token_id and not a.user:
        raise ValidationError(
            "credentials missing: give --token-id (preferred) or --user",
            field="token_id",
            hint="Create an API token in Datacenter > Permissions > API Tokens",
        )
    creds: dict[str, str] = {}
    if a.token_id:
        creds = {
            "token_id": a.token_id,
            "token_secret": read_secret(
                path=a.token_secret_file, env="PROXIMITY_HOST_TOKEN_SECRET", what="token secret", field="token_secret"
            ),
        }
    else:
        creds = {
            "user": a.user,
            "password": read_secret(
                path=a.password_file, env="PROXIMITY_HOST_PASSWORD", what="password", field="password"
            ),
        }
    ca_file = _existing(a.host_ca_file, "ca_file") if a.host_ca_file else None
    host = ctx.px.hosts.add(
        a.name, url=a.url, verify_tls=not a.insecure, ca_file=ca_file, ssh=_ssh(ctx), check=not a.no_check, **creds
    )
    nodes = list(ctx.px.nodes.list(host.id))
    if ctx.json:
        print_json({"host": host, "nodes": nodes})
        return EXIT_OK
    ctx.err.print(f"[green]added host {host.name}[/green]" + (" (the default)" if host.is_default else ""))
    _show_host(ctx, host)
    if nodes:
        ctx.out.print()
        _nodes_table(ctx, nodes)
    return EXIT_OK


def _nodes_table(ctx: Context, nodes: Sequence[object]) -> None:
    from proximity_sdk.cli._nodes import node_rows

    table(ctx.out, ("NODE", "STATUS", "CPUS", "MEMORY", "DISK", "PVE"), node_rows(nodes))


def list_hosts(ctx: Context) -> int:
    hosts = list(ctx.px.hosts.list())
    if ctx.json:
        print_json(hosts)
        return EXIT_OK
    table(
        ctx.out,
        ("DEFAULT", "NAME", "URL", "AUTH", "SSH", "TLS", "ID"),
        _host_rows(hosts),
        empty="no hosts yet: add one with `proximity hosts add NAME --url https://<host>:8006 ...`",
    )
    return EXIT_OK


def show(ctx: Context) -> int:
    host = ctx.px.hosts.get(ctx.args.host)
    nodes = list(ctx.px.nodes.list(host.id))
    if ctx.json:
        print_json({"host": host, "nodes": nodes})
        return EXIT_OK
    _show_host(ctx, host)
    ctx.out.print()
    _nodes_table(ctx, nodes)
    return EXIT_OK


def remove(ctx: Context) -> int:
    host = ctx.px.hosts.get(ctx.args.host)
    ctx.px.hosts.remove(host.id)
    if ctx.json:
        print_json({"removed": host})
    else:
        ctx.err.print(f"removed host {host.name}")
    return EXIT_OK


def test(ctx: Context) -> int:
    host = ctx.px.hosts.get(ctx.args.host) if ctx.args.host else ctx.px.hosts.default()
    check = ctx.px.hosts.test(host.id)
    if ctx.json:
        print_json(check)
    elif check.ok:
        detail(
            ctx.out,
            [
                ("host", check.name),
                ("result", "ok"),
                ("version", check.version),
                ("nodes", check.nodes),
                ("online", check.online_nodes),
                ("time", f"{check.elapsed_ms:.0f} ms, {check.requests} requests"),
            ],
        )
    else:
        detail(
            ctx.out,
            [
                ("host", check.name),
                ("result", "FAILED"),
                ("error", check.error),
                ("kind", check.error_kind),
                *[("missing", f"{gap.privilege} on {gap.path} ({gap.used_for})") for gap in check.missing_privileges],
            ],
        )
    return EXIT_OK if check.ok else EXIT_UNREACHABLE


def default(ctx: Context) -> int:
    host = ctx.px.hosts.set_default(ctx.args.host) if ctx.args.host else ctx.px.hosts.default()
    if ctx.json:
        print_json(host)
    else:
        ctx.out.print(host.name)
    return EXIT_OK


def keys(ctx: Context) -> int:
    found = list(ctx.px.hosts.host_keys(ctx.args.host))
    if ctx.json:
        print_json(found)
        return EXIT_OK
    table(
        ctx.out,
        ["address", "type", "fingerprint", "pinned"],
        [[k.hostname, k.key_type, k.fingerprint, k.pinned_at] for k in found],
        empty="no SSH host key pinned",
    )
    return EXIT_OK


def accept_key(ctx: Context) -> int:
    a = ctx.args
    key = ctx.px.hosts.accept_host_key(a.host, node=a.node, fingerprint=a.fingerprint)
    if ctx.json:
        print_json(key)
    else:
        detail(
            ctx.out,
            [
                ("address", key.hostname),
                ("type", key.key_type),
                ("fingerprint", key.fingerprint),
                ("pinned", key.pinned_at),
            ],
            title=f"accepted the SSH host key of node {a.node}",
        )
    return EXIT_OK
