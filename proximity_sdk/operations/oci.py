"""What every kind does with a native OCI app (``config["runtime"] == "oci"``): tell one, record
or drop its console log, check its health. How one is deployed: :mod:`proximity_sdk.operations.deploy.oci`.

An OCI app's console log: Proxmox discards an application container's output, so the node shell
(when the host has one) has the container copy it into a file on its node (:func:`keep_console`);
without a node shell the app runs all the same, with no console log.

Health of an OCI app (deploy, start, restart, restore): the container is running per the API
(an application container stops when its entrypoint exits); no port is probed, since nothing
can run inside it and Proximity may not reach the container's network.
"""

from __future__ import annotations

from typing import Any

from proximity_sdk.engine.context import OperationContext
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ProximityError, ProxmoxError, ValidationError
from proximity_sdk.models.app import App
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.console_log import console_log_path, prepare_node, record_console, remove_console
from proximity_sdk.proxmox.containers import container_status

__all__ = [
    "NO_NODE_SHELL",
    "drop_console",
    "has_console_log",
    "is_oci",
    "keep_console",
    "oci_health",
    "prepare_console_node",
]

# config["console_log_cause"] of an OCI app whose console is not recorded: the host had no node shell
# (else "refused": the node refused the config edit)
NO_NODE_SHELL = "no_node_shell"


def is_oci(app: App) -> bool:
    """Whether the app runs as a native OCI application container (no compose, no node shell)."""
    return app.config.get("runtime") == "oci"


def has_console_log(app: App) -> bool:
    """Whether the app's container copies its console into a file on its node (an OCI app deployed
    with a node shell)."""
    return is_oci(app) and bool(app.config.get("console_log"))


def keep_console(
    ctx: OperationContext, services: Services, app: App, node: str, vmid: int, *, journal: bool = True
) -> dict[str, Any]:
    """Have container ``vmid`` (stopped: before its first start) copy its console into a file on
    ``node``, through the node shell; the app config keys that say whether it does.

    Proxmox discards an application container's output, so this file is the only record of it.
    Without a node shell, or when the node refuses the edit, the app goes on without one (a warning
    says why, and ``px.apps.logs`` repeats it): the deploy does not fail for a log."""
    try:
        shell = services.shells.get(app.host_id)
    except ValidationError:
        why = "host has no SSH access (the node shell writes the console log setting)"
        ctx.event(f"the console output of CT {vmid} is not recorded: the {why}; Proxmox discards it", level="warning")
        return {
            "console_log": False,
            "console_log_note": f"it was deployed while its {why}",
            "console_log_cause": NO_NODE_SHELL,
        }
    if journal:
        ctx.record("console_log", host_id=app.host_id, node=node, vmid=vmid)  # the file goes with a rollback
    try:
        note = record_console(shell, node, vmid)
    except ProximityError as exc:
        if journal:
            ctx.forget("console_log", vmid=vmid)
        ctx.event(f"the console output of CT {vmid} is not recorded: {exc.message}", level="warning")
        return {
            "console_log": False,
            "console_log_note": f"recording it failed: {exc.message}",
            "console_log_cause": "refused",
        }
    ctx.event(f"console output recorded in {console_log_path(vmid)} on node {node}" + (f" ({note})" if note else ""))
    return {"console_log": True, "console_log_note": None, "console_log_cause": None}


def prepare_console_node(ctx: OperationContext, services: Services, app: App, node: str) -> None:
    """The console log directory on ``node`` before the app's container starts there (a migration's
    target): LXC refuses to start a container whose log file it cannot open. Raises when the node
    shell cannot do it, before anything moved."""
    note = prepare_node(services.shells.get(app.host_id), node)
    ctx.event(f"console log directory ready on node {node}" + (f" ({note})" if note else ""))


def drop_console(ctx: OperationContext, services: Services, app: App, node: str, vmid: int) -> None:
    """Remove CT ``vmid``'s console log from ``node`` (the container is gone from there); a node
    shell that fails leaves the file, with a warning."""
    path = console_log_path(vmid)
    try:
        remove_console(services.shells.get(app.host_id), node, vmid)
    except ProximityError as exc:
        ctx.event(f"console log {path} left on node {node}: {exc.message}", level="warning")
        return
    ctx.event(f"console log {path} removed from node {node}")


def oci_health(ctx: OperationContext, client: ProxmoxClient, node: str, vmid: int) -> None:
    """An OCI app is healthy when its container runs per the API (it stops when its entrypoint exits)."""
    status = container_status(client, node, vmid)
    if status is None or not status.running:
        state = "gone" if status is None else status.status
        raise ProxmoxError(
            f"CT {vmid} is {state} after its start: the application's entrypoint exited",
            hint=f"Its console output says why: px.apps.logs(app_id) when it is recorded (a failed "
            f"deploy lists its last lines in the operation's events), or `pct console {vmid}` on "
            f"node {node} while it runs",
        )
    ctx.event(f"CT {vmid} is running (native OCI app: health is the container's state in the Proxmox API)")
