"""`proximity nodes`: list, storages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from proximity_sdk.cli._exit import EXIT_OK
from proximity_sdk.cli._output import gib, print_json, table

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context

__all__ = ["list_nodes", "node_rows", "storages"]


def node_rows(nodes: Iterable[Any]) -> list[Sequence[object]]:
    return [(n.name, n.status, n.cpus, gib(n.maxmem), gib(n.maxdisk), n.pve_version) for n in nodes]


def list_nodes(ctx: Context) -> int:
    px = ctx.px
    if ctx.args.sync:
        hosts = [px.hosts.get(ctx.args.host)] if ctx.args.host else list(px.hosts.list())
        for host in hosts:
            px.hosts.sync_nodes(host.id)
    nodes = list(px.nodes.list(ctx.args.host))
    if ctx.json:
        print_json(nodes)
        return EXIT_OK
    names = {h.id: h.name for h in px.hosts.list()}
    table(
        ctx.out,
        ("HOST", "NODE", "STATUS", "CPUS", "MEMORY", "DISK", "PVE"),
        [(names.get(n.host_id, n.host_id), *row) for n, row in zip(nodes, node_rows(nodes), strict=True)],
        empty="no nodes: add a host first (`proximity hosts add`)",
    )
    return EXIT_OK


def storages(ctx: Context) -> int:
    found = list(ctx.px.nodes.storages(ctx.args.node, host=ctx.args.host, content=ctx.args.content))
    if ctx.json:
        print_json(found)
        return EXIT_OK
    table(
        ctx.out,
        ("STORAGE", "TYPE", "CONTENT", "SHARED", "ACTIVE", "AVAILABLE", "TOTAL"),
        (
            (
                s.storage,
                s.type,
                ",".join(s.content_types),
                "yes" if s.shared else "no",
                "yes" if s.active else "no",
                gib(s.avail),
                gib(s.total),
            )
            for s in found
        ),
    )
    return EXIT_OK
