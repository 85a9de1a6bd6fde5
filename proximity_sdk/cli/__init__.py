"""`proximity`: the command line. Heavy imports happen inside commands so that --help stays fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from proximity_sdk import __version__

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024**3:.1f} GiB"


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_sandbox(args: argparse.Namespace) -> int:
    import tempfile

    from proximity_sdk._client import Proximity
    from proximity_sdk.sandbox import Sandbox

    with tempfile.TemporaryDirectory(prefix="proximity-sandbox-state-") as state, Sandbox.start() as sandbox:
        print(f"Sandbox Proxmox (a fake PVE 9 API, nothing really runs) at {sandbox.url}")
        with Proximity.local(data_dir=state) as px:
            host = px.hosts.add("sandbox", url=sandbox.url, token_id=sandbox.token_id,
                                token_secret=sandbox.token_secret, ca_file=sandbox.ca_file)
            check = px.hosts.test(host.name)
            print(f"Added host {host.name!r} with API token {sandbox.token_id}, TLS verified against its CA; "
                  f"Proxmox VE {check.version}\n")
            nodes = px.nodes.list()
            print(_table([(n.name, n.status, str(n.cpus or "-"), _gib(n.maxmem), _gib(n.maxdisk)) for n in nodes],
                         ("NODE", "STATUS", "CPUS", "MEMORY", "DISK")))
            rows = []
            for node in nodes:
                for st in px.nodes.storages(node.name):
                    rows.append((node.name, st.storage, st.type, ",".join(st.content_types), _gib(st.avail)))
            print()
            print(_table(rows, ("NODE", "STORAGE", "TYPE", "CONTENT", "AVAILABLE")))
            print(f"\nCatalog: {px.catalog.stats().total_apps} apps ready to deploy "
                  f"(proximity_sdk: px.catalog.list()).")
        if args.serve:
            print("\nServing until Ctrl-C. Connect with:\n"
                  f"  url={sandbox.url}\n  token_id={sandbox.token_id}\n  token_secret={sandbox.token_secret}\n"
                  f"  ca_file={sandbox.ca_file}", flush=True)
            try:
                import threading

                threading.Event().wait()
            except KeyboardInterrupt:
                print("\nstopped")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="proximity", description="Self-hosted apps on Proxmox VE.")
    parser.add_argument("--version", action="version", version=f"proximity {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sandbox = sub.add_parser("sandbox", help="start a sandbox Proxmox and show what the SDK sees through it")
    sandbox.add_argument("--serve", action="store_true", help="keep the sandbox running and print how to connect")
    sandbox.set_defaults(func=_cmd_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from proximity_sdk.errors import ProximityError

    try:
        return int(args.func(args))
    except ProximityError as exc:
        print(f"proximity: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
