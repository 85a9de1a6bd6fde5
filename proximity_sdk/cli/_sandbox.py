"""`proximity sandbox`: everything on embedded defaults, and a first app deployed with live progress.

It starts a sandbox Proxmox (a fake PVE 9 API and its nodes' shell, :mod:`proximity_sdk.sandbox`),
a real ``proximity-agent`` process (state in SQLite in the sandbox's directory), connects to that
agent as every remote client does, registers the sandbox as a host, deploys a sample app with live
progress and shows it. Then it says how to use the same commands against the agent from another
terminal, and against a real Proxmox host. It keeps serving until Ctrl-C (``--once``: stop now).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["run"]

SAMPLE_APP = "uptime-kuma"
REAL_SAMPLE_APP = "demo-web"  # its image is served by the real-mode sandbox's own registry


def _banner(console: Console, text: str) -> None:
    from rich.panel import Panel

    console.print(Panel(text, title="[bold yellow]SANDBOX[/]", border_style="yellow", expand=False))


def _nodes(console: Console, px: Any) -> None:
    from rich.table import Table

    table = Table(title="Nodes the SDK sees", title_justify="left")
    for column in ("NODE", "STATUS", "CPUS", "MEMORY", "STORAGES"):
        table.add_column(column)
    for node in px.nodes.list():
        storages = ", ".join(f"{s.storage} ({s.type})" for s in px.nodes.storages(node.name))
        memory = "-" if node.maxmem is None else f"{node.maxmem / 1024**3:.1f} GiB"
        table.add_row(node.name, node.status, str(node.cpus or "-"), memory, storages)
    console.print(table)


def _apps(console: Console, px: Any) -> None:
    from rich.table import Table

    table = Table(title="Apps", title_justify="left")
    for column in ("HOSTNAME", "APP", "STATUS", "NODE", "VMID", "URL"):
        table.add_column(column)
    for app in px.apps.list():
        table.add_row(
            app.hostname,
            f"{app.catalog_id or '-'} {app.catalog_version or ''}".strip(),
            app.status.value,
            app.node or "-",
            str(app.vmid or "-"),
            app.url or "-",
        )
    console.print(table)


def _check_app(app_id: str) -> None:
    """Refuse an unknown ``--app`` before anything starts (the sandbox's agent loads no plugins either)."""
    from proximity_sdk.catalog.catalog import Catalog
    from proximity_sdk.plugins.manager import PluginManager

    Catalog(plugins=PluginManager(entry_points=False)).get(app_id)


def path_line() -> str | None:
    """``export PATH=...`` when a new terminal would not find this ``proximity`` (a venv not activated)."""
    # not resolved: a venv's python is a symlink to the system's, and its bin/ is what matters
    places = [Path(sys.argv[0]).absolute().parent] if sys.argv and sys.argv[0] else []
    places.append(Path(sys.executable).absolute().parent)
    here = next((place for place in places if (place / "proximity").is_file()), None)
    if here is None:
        return None
    found = shutil.which("proximity", path=os.environ.get("PATH", ""))
    if found is not None and Path(found).absolute().parent == here:
        return None
    # a new terminal's PATH is not knowable from here; this one's is the best guess
    return f"export PATH={shlex.quote(str(here))}:$PATH"


def _next_steps(
    console: Console, target: str, token: str, hostname: str, *, url: str | None = None, real: bool = False
) -> None:
    agent = f"export PROXIMITY_AGENT={target} PROXIMITY_TOKEN={shlex.quote(token)}"
    path = path_line()
    # real mode reaches no public registry: only the sandbox's own image deploys
    more = (
        f"  proximity apps deploy {REAL_SAMPLE_APP} --hostname web2\n" + (f"  curl {url}\n" if url else "")
        if real
        else "  proximity catalog search wiki\n  proximity apps deploy gitea --hostname git\n"
    )
    console.print(
        "\n[bold]The same commands, from another terminal[/] (this sandbox's agent; the token dies with it):\n"
        + (f"  {path}\n" if path else "")
        + f"  {agent}\n"
        "  proximity apps list\n"
        f"  proximity backups create {hostname}\n" + more,
        highlight=False,
        soft_wrap=True,
    )


def _show_answer(console: Console, url: str) -> None:
    """What the app's URL answers from this machine (real mode: a real service behind it)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - http to the sandbox's container
            status, body = int(answer.status), answer.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, body = int(exc.code), ""
    except (urllib.error.URLError, OSError) as exc:
        console.print(f"[red]{url} does not answer from this machine:[/] {exc}", highlight=False)
        return
    first = next((line.strip() for line in body.splitlines() if "<h1>" in line), "")
    first = first.replace("<h1>", "").replace("</h1>", "")
    console.print(
        f"{url} answers HTTP {status} from this machine" + (f": {first}" if first else ""),
        highlight=False,
        soft_wrap=True,
    )


def _real_host_steps(console: Console) -> None:
    console.print(
        "[bold]A real Proxmox VE host[/] (an API token and the cluster CA; SSH to the nodes for the compose step):\n"
        "  proximity hosts add pve --url https://pve.example.com:8006 --token-id 'root@pam!proximity' \\\n"
        "      --token-secret-file ~/pve-token --ca-file ~/pve-root-ca.pem --ssh-key ~/.ssh/id_ed25519\n"
        "  proximity apps deploy uptime-kuma --hostname status\n"
        "Without PROXIMITY_AGENT the commands run locally (state in SQLite in your data directory);\n"
        "with it, against a `proximity-agent serve` your team runs. `proximity --help` lists them all.\n",
        highlight=False,
        soft_wrap=True,
    )


def _wait_for_interrupt(console: Console) -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print("[dim]Serving until Ctrl-C ...[/]")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    from proximity_sdk._client import Proximity
    from proximity_sdk.cli._context import make_console
    from proximity_sdk.cli._progress import follow
    from proximity_sdk.sandbox import Sandbox
    from proximity_sdk.sandbox._agent import SandboxAgent

    console = make_console(stderr=False)
    real = bool(getattr(args, "real", False))
    app_id = str(getattr(args, "app", None) or (REAL_SAMPLE_APP if real else SAMPLE_APP))
    hostname = str(getattr(args, "hostname", None) or "demo")
    once = bool(getattr(args, "once", False))
    if not (real and app_id == REAL_SAMPLE_APP):  # demo-web is in the catalog the real sandbox writes
        _check_app(app_id)
    if real:
        console.print(
            "Real mode: checking the node, the Debian template (built once, about 1.5 min) and the "
            f"{REAL_SAMPLE_APP} image in a local registry ..."
        )
    with Sandbox.start(real=real) as sandbox:
        what = (
            "Its containers are real LXC containers on lxcbr0."
            if real
            else "Containers are directories;\nnothing really runs."
        )
        _banner(
            console,
            "A fake Proxmox VE 9 cluster on this machine: its API on "
            f"{sandbox.url}\nand its nodes' shell over SSH on 127.0.0.1:{sandbox.shell.port}. "
            f"{what} Files: " + str(sandbox.directory),
        )
        state = sandbox.directory / "agent"
        if real:
            # the agent's API carries no registry settings: the host (trusting the sandbox's
            # registry) goes into the agent's store before it starts
            with SandboxAgent.prepare(state) as store:
                sandbox.add_to(store, name="sandbox")
        with console.status("starting an agent (proximity-agent serve, state in SQLite) ..."):
            agent = SandboxAgent.start(state, catalog_paths=sandbox.catalog_paths)
        try:
            console.print(f"Agent serving gRPC on [bold]{agent.target}[/]; connecting as its admin.")
            with Proximity.connect(agent.target, token=agent.token) as px:
                host = px.hosts.get("sandbox") if real else sandbox.add_to(px, name="sandbox")
                console.print(
                    f"Host [bold]{host.name}[/] added: API token {sandbox.token_id}, "
                    "TLS verified against its CA, SSH host key pinned."
                )
                if sandbox.registry is not None:
                    console.print(
                        f"Its registry settings trust the sandbox's local registry "
                        f"[bold]{sandbox.registry.address}[/] (plain HTTP), which serves the "
                        f"{REAL_SAMPLE_APP} image.",
                        highlight=False,
                    )
                _nodes(console, px)
                console.print(f"\nDeploying [bold]{app_id}[/] as [bold]{hostname}[/] ...")
                deploying: Any = px.apps.deploy(app_id, hostname=hostname)  # an agent's handle, same API
                app = follow(deploying, console=console)
                console.print(
                    f"[green]{app.hostname} is {app.status.value}[/] on {app.node}, CT {app.vmid}, "
                    f"at {app.url or app.address} (in the sandbox).\n"
                )
                _apps(console, px)
                if real and app.url:
                    _show_answer(console, app.url)
                if once:
                    # its agent and token are gone a moment later: no instructions that cannot work
                    console.print(
                        "\n--once: the sandbox stops now. Run `proximity sandbox` without --once to keep it "
                        "serving and use it from another terminal.\n",
                        highlight=False,
                        soft_wrap=True,
                    )
                    _real_host_steps(console)
                else:
                    _next_steps(console, agent.target, agent.token, hostname, url=app.url, real=real)
                    _real_host_steps(console)
                    _wait_for_interrupt(console)
        finally:
            agent.stop()
    console.print("Sandbox stopped; its files are gone.")
    return 0
