"""What both deploy strategies share, and the kinds that make a container as a deploy does (clone).

The app's URL; the rollback of a deploy-like journal (the container, its console log, VMID and
address reservations); what a failed operation reserved without journalling it.
"""

from __future__ import annotations

import contextlib
import time

from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ProximityError
from proximity_sdk.models.app import App
from proximity_sdk.operations._journal import follow_vmid_change
from proximity_sdk.proxmox._ctspec import ContainerSpec
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.console_log import read_console, remove_console
from proximity_sdk.proxmox.containers import container_status, destroy_container
from proximity_sdk.proxmox.vmids import VmidAllocator, create_with_vmid_retry
from proximity_sdk.store import Store

__all__ = ["app_url", "create_journalled", "release_effects", "release_unjournalled"]


def app_url(address: str | None, port: int | None) -> str | None:
    if not address or not port:
        return None
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}"


# the console lines of a failed OCI container a rollback keeps in the events
_CONSOLE_TAIL = 20

# How long a rollback waits for the Proxmox tasks still working on the container (a create or
# start whose requester died goes on in Proxmox), and how often it looks.
TASK_WAIT_SECONDS = 900.0
_TASK_POLL = 0.5


def create_journalled(
    ctx: OperationContext,
    store: Store,
    client: ProxmoxClient,
    allocator: VmidAllocator,
    *,
    app: App,
    node: str,
    spec: ContainerSpec,
    root_password: str | None = None,
) -> int:
    """Create the container (both strategies' ``create`` step) and return its VMID, which may
    differ from the spec's when Proxmox gave that one away meanwhile (the journal follows it).
    ``root_password``: the container's, kept in the app's record with the journal entry."""
    moved = follow_vmid_change(ctx, store, app_id=app.id, host_id=app.host_id, node=node)
    # journalled before the request (the unit commits at the end of its block, before it): a
    # crash during the create task must still find it
    with ctx.unit():
        if root_password is not None:
            store.apps.patch(app.id, root_password=root_password)
        ctx.record("container", host_id=app.host_id, node=node, vmid=spec.vmid)
    with ctx.node_slot(app.host_id, node):
        created, _ = create_with_vmid_retry(
            client,
            node,
            spec,
            allocator=allocator,
            operation_id=ctx.id,
            app_id=app.id,
            emit=emitter(ctx),
            on_vmid_change=moved,
        )
    return created.vmid


def _busy(client: ProxmoxClient, node: str, vmid: int) -> str | None:
    """What still works on the container: its lock or a running task; None when idle or gone."""
    status = container_status(client, node, vmid)
    if status is None:
        return None
    if status.lock:
        return f"locked ({status.lock})"
    tasks = client.get(f"/nodes/{node}/tasks", vmid=vmid, source="active") or []
    running = [
        str(t.get("type")) for t in tasks if isinstance(t, dict) and not t.get("endtime") and not t.get("status")
    ]  # a finished task has its exit status and end time
    return f"task {', '.join(running)} running" if running else None


def _wait_idle(ctx: OperationContext, client: ProxmoxClient, node: str, vmid: int) -> None:
    """Until no Proxmox task works on the container. A process that died during the create or the
    start left that task running: destroying now would be refused (a create holds ``lock: create``
    and the container has no name yet) or lose the race (a start finishing after the running-check
    fails the destroy). A task that outlives the wait is left to ``destroy_container`` to report."""
    deadline = time.monotonic() + TASK_WAIT_SECONDS
    said = False
    while time.monotonic() < deadline:
        busy = _busy(client, node, vmid)
        if busy is None:
            return
        if not said:
            ctx.event(f"CT {vmid} is busy ({busy}): waiting for Proxmox to finish before destroying it")
            said = True
        ctx.checkpoint()  # a takeover still stops this runner while it waits
        time.sleep(_TASK_POLL)


def release_effects(ctx: OperationContext, services: Services, *, expect_hostname: str | None) -> None:
    """Undo a deploy-like operation's journal, newest first: destroy the container it created,
    give back its VMID and address. Each entry is dropped once undone, so a rerun resumes."""
    for effect in reversed(ctx.effects):
        kind = effect["kind"]
        if kind == "container":
            client = services.clients.get(effect["host_id"])
            _wait_idle(ctx, client, effect["node"], int(effect["vmid"]))
            destroy_container(
                client, effect["node"], int(effect["vmid"]), emit=emitter(ctx), expect_hostname=expect_hostname
            )
            ctx.event(f"container {effect['vmid']} destroyed")
            ctx.forget("container", vmid=effect["vmid"])
        elif kind == "console_log":
            # what the container printed tells why it failed: its last lines go into the events
            # before the file goes (left behind if the node shell fails)
            with contextlib.suppress(ProximityError):
                shell = services.shells.get(effect["host_id"])
                text = read_console(shell, effect["node"], int(effect["vmid"]), tail=_CONSOLE_TAIL)
                for line in (text or "").splitlines():
                    ctx.event(f"CT {effect['vmid']} console: {line.rstrip(chr(13))[:500]}", level="warning")
                remove_console(shell, effect["node"], int(effect["vmid"]))
            ctx.forget("console_log", vmid=effect["vmid"])
        elif kind == "vmid":
            services.store.reservations.release_vmid(effect["host_id"], int(effect["vmid"]))
            ctx.forget("vmid", vmid=effect["vmid"])
        elif kind == "address":
            services.store.reservations.release_address(effect["address"])
            ctx.forget("address", address=effect["address"])


def release_unjournalled(ctx: OperationContext, store: Store) -> None:
    """Give back what the failed operation reserved but never journalled: a process that died
    between a reservation's commit and its ``ctx.record`` left a row only the operation id names.
    What the journal still holds (a rollback left it unfinished) stays for the janitor."""
    kept_vmids = {(str(e["host_id"]), int(e["vmid"])) for e in ctx.effects if e["kind"] in ("vmid", "container")}
    kept_addresses = {str(e["address"]) for e in ctx.effects if e["kind"] == "address"}
    for vmid in store.reservations.vmid_reservations(operation_id=ctx.id):
        if (vmid.host_id, vmid.vmid) not in kept_vmids:
            store.reservations.release_vmid(vmid.host_id, vmid.vmid)
    for address in store.reservations.address_reservations(operation_id=ctx.id):
        if address.address not in kept_addresses:
            store.reservations.release_address(address.address)
