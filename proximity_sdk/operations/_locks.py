"""Waiting out a Proxmox task that holds a container's lock (one left running by a dead runner)."""

from __future__ import annotations

import time

from proximity_sdk.engine.context import OperationContext
from proximity_sdk.errors import LockedError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.containers import container_status

__all__ = ["wait_unlocked"]

LOCK_WAIT = 600.0
_POLL = 1.0


def wait_unlocked(
    ctx: OperationContext, client: ProxmoxClient, node: str, vmid: int, *, wait: float = LOCK_WAIT
) -> None:
    """Until the container on ``node`` has no ``lock`` (or is gone). A clone, snapshot or
    migration task that outlived the runner which started it keeps the lock while it runs;
    acting before it ends would be refused. A cancel or a takeover still stops the wait."""
    deadline = time.monotonic() + wait
    said = False
    while True:
        status = container_status(client, node, vmid)
        if status is None or not status.lock:
            return
        if time.monotonic() >= deadline:
            raise LockedError(
                f"CT {vmid} on node {node} is still locked ({status.lock}) after {wait:g}s",
                hint=f"Check its tasks on node {node}; a stale lock is removed with `pct unlock {vmid}` there",
            )
        if not said:
            ctx.event(f"CT {vmid} is locked ({status.lock}): waiting for the Proxmox task that holds it")
            said = True
        ctx.checkpoint()
        time.sleep(_POLL)
