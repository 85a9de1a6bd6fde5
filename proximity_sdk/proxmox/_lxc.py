"""What the LXC building blocks share: a container's API path, waiting for its task (lock
failures raised as :class:`LockedError`), and checking a timeout argument."""

from __future__ import annotations

import re

from proximity_sdk.errors import LockedError, TaskFailedError, ValidationError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.progress import Emit, task_log_forwarder
from proximity_sdk.proxmox.tasks import TaskResult, wait_task
from proximity_sdk.proxmox.upid import Upid
from proximity_sdk.proxmox.validate import check_node_name, check_vmid

__all__ = ["check_seconds", "lxc_path", "wait_guest_task"]

# How a task's exit status reads when it could not take the guest's lock (config flock or `lock:`).
_LOCK_FAILURE = re.compile(r"can't lock file|is locked|got timeout", re.IGNORECASE)


def lxc_path(node: str, vmid: int, tail: str = "") -> str:
    base = f"/nodes/{check_node_name(node)}/lxc/{check_vmid(vmid)}"
    return f"{base}/{tail}" if tail else base


def wait_guest_task(client: ProxmoxClient, upid: str, *, timeout: float, emit: Emit | None) -> TaskResult:
    try:
        return wait_task(client, upid, timeout=timeout, on_log=task_log_forwarder(emit))
    except TaskFailedError as err:
        if _LOCK_FAILURE.search(err.exitstatus):
            task = Upid.parse(err.upid)
            raise LockedError(
                f"task {task.type} {task.id} on node {task.node} could not take the lock: {err.exitstatus}",
                status=err.status,
                method=err.method,
                path=err.path,
            ) from err
        raise


def check_seconds(timeout: float, field: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValidationError(f"{field} must be a positive number of seconds, not {timeout!r}", field=field)
    return float(timeout)
