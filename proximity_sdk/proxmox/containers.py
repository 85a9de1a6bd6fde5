"""One LXC container through the Proxmox API: create, start, shut down, stop, destroy, find its address.

Each function does one thing, waits for its task (log lines go to ``emit``) and is safe to
call again after a crash: starting a running container, stopping a stopped one or destroying a
missing one is a no-op that returns None. A task that fails on a Proxmox lock raises
:class:`LockedError`; any other failed task raises :class:`TaskFailedError` with its log tail.
Inputs are checked before any request (node, VMID, the whole :class:`ContainerSpec`).
"""

from __future__ import annotations

import ipaddress
import re
import time

from proximity_sdk.errors import (
    ConflictError,
    LockedError,
    NotFoundError,
    ProximityError,
    TaskFailedError,
    UnavailableError,
    ValidationError,
)
from proximity_sdk.models.proxmox import LxcInterface, LxcStatus
from proximity_sdk.proxmox._ctspec import (
    ContainerSpec,
    NetworkSpec,
    check_hostname,
    create_params,
    spec_from_settings,
)
from proximity_sdk.proxmox._lxc import check_seconds, lxc_path, wait_guest_task
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.progress import Emit, emit_to
from proximity_sdk.proxmox.tasks import TaskResult
from proximity_sdk.proxmox.validate import check_node_name

__all__ = [
    "ContainerSpec",
    "NetworkSpec",
    "check_hostname",
    "container_exists",
    "container_status",
    "create_container",
    "create_params",
    "destroy_container",
    "shutdown_container",
    "spec_from_settings",
    "start_container",
    "stop_container",
    "wait_for_address",
]


def container_status(client: ProxmoxClient, node: str, vmid: int) -> LxcStatus | None:
    """The container's current status on ``node``, or None when it is not there."""
    try:
        return client.lxc_status(node, vmid)
    except NotFoundError:
        return None


def container_exists(client: ProxmoxClient, node: str, vmid: int) -> bool:
    """Whether the container is on ``node`` (a container on another node does not count)."""
    return container_status(client, node, vmid) is not None


def create_container(
    client: ProxmoxClient, node: str, spec: ContainerSpec, *, emit: Emit | None = None, timeout: float = 900.0
) -> TaskResult:
    """Create the container (stopped) and wait for the ``vzcreate`` task.

    The VMID taken by someone else raises :class:`AlreadyExistsError` (nothing was created:
    try the next id). When the task fails, whatever it left on the node is destroyed before the
    error is raised. A :class:`TaskTimeoutError` leaves the create running (it is not ours to
    cut short); destroy the container later if the operation is abandoned. A connection lost
    during the POST itself (:class:`UnavailableError`) leaves it unknown whether PVE started the
    create: check :func:`container_exists` before trying again (never re-POST blindly).
    """
    check_node_name(node)
    if not isinstance(spec, ContainerSpec):
        raise ValidationError(f"spec must be a ContainerSpec, not {type(spec).__name__}", field="spec")
    check_seconds(timeout)
    upid = client.post(f"/nodes/{node}/lxc", **create_params(spec))
    try:
        return wait_guest_task(client, str(upid), timeout=timeout, emit=emit)
    except (TaskFailedError, LockedError):
        # The POST got a UPID, so PVE had reserved the VMID for us: a container there now is ours.
        _remove_leftover(client, node, spec.vmid, emit)
        raise


def _remove_leftover(client: ProxmoxClient, node: str, vmid: int, emit: Emit | None) -> None:
    try:
        status = container_status(client, node, vmid)
        if status is None:
            return
        if status.lock:
            emit_to(
                emit,
                f"the failed create left CT {vmid} locked ({status.lock}); remove it on node {node} with "
                f"`pct unlock {vmid} && pct destroy {vmid}`",
                "error",
            )
            return
        emit_to(emit, f"removing what the failed create left behind (CT {vmid})", "warning")
        destroy_container(client, node, vmid, emit=emit)
    except ProximityError as cleanup_error:
        # the create's own failure is what the caller must see; the cleanup problem is reported
        emit_to(emit, f"could not remove CT {vmid} after the failed create: {cleanup_error}", "error")


def start_container(
    client: ProxmoxClient, node: str, vmid: int, *, emit: Emit | None = None, timeout: float = 300.0
) -> TaskResult | None:
    """Start the container; None when it was already running."""
    path = lxc_path(node, vmid, "status/start")
    check_seconds(timeout)
    try:
        upid = client.post(path)
    except ConflictError as err:
        if isinstance(err, LockedError) or "already running" not in str(err):
            raise
        emit_to(emit, f"CT {vmid} is already running")
        return None
    return wait_guest_task(client, str(upid), timeout=timeout, emit=emit)


def stop_container(
    client: ProxmoxClient, node: str, vmid: int, *, emit: Emit | None = None, timeout: float = 300.0
) -> TaskResult | None:
    """Stop the container at once (no clean shutdown); None when it was not running."""
    path = lxc_path(node, vmid, "status/stop")
    check_seconds(timeout)
    try:
        upid = client.post(path)
    except ConflictError as err:
        if isinstance(err, LockedError) or "not running" not in str(err):
            raise
        emit_to(emit, f"CT {vmid} is not running")
        return None
    return wait_guest_task(client, str(upid), timeout=timeout, emit=emit)


def shutdown_container(
    client: ProxmoxClient,
    node: str,
    vmid: int,
    *,
    timeout: int = 60,
    force_stop_after: bool = True,
    emit: Emit | None = None,
) -> TaskResult | None:
    """Shut the container down cleanly within ``timeout`` seconds; if it does not stop in time,
    kill it when ``force_stop_after`` (else the :class:`TaskFailedError` is raised).
    None when it was not running.

    ``force_stop_after`` is PVE's own ``forceStop=1``: one ``vzshutdown`` task that runs
    ``lxc-stop --timeout <t>`` without ``--nokill``, so lxc-stop itself kills after the timeout,
    all under the container's config lock (pve-container ``src/PVE/API2/LXC/Status.pm``
    ``vm_shutdown`` → ``src/PVE/LXC.pm`` ``vm_stop``). Without it the task runs
    ``lxc-stop --nokill`` and fails ``container did not stop`` (docs/fidelity.md, row R6)."""
    path = lxc_path(node, vmid, "status/shutdown")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        raise ValidationError(f"timeout must be whole seconds >= 0, not {timeout!r}", field="timeout")
    try:
        upid = client.post(path, timeout=timeout, forceStop=bool(force_stop_after))
    except ConflictError as err:
        if isinstance(err, LockedError) or "not running" not in str(err):
            raise
        emit_to(emit, f"CT {vmid} is not running")
        return None
    try:
        # PVE ends the task itself after `timeout` (+5 s for lxc-stop); the margin covers its bookkeeping
        return wait_guest_task(client, str(upid), timeout=timeout + 60.0, emit=emit)
    except TaskFailedError as err:
        if not force_stop_after:
            raise
        # forceStop's kill failed too (vm_stop gave up waiting for the monitor): a hard stop, its own task
        emit_to(
            emit,
            f"CT {vmid} did not stop within {timeout}s even with forceStop ({err.exitstatus}); stopping it",
            "warning",
        )
        return stop_container(client, node, vmid, emit=emit)


def destroy_container(
    client: ProxmoxClient,
    node: str,
    vmid: int,
    *,
    emit: Emit | None = None,
    timeout: float = 600.0,
    expect_hostname: str | None = None,
) -> TaskResult | None:
    """Destroy the container with its disks and every reference (``purge``); stop it first if it
    runs. None when it is already gone. ``expect_hostname`` guards against a VMID that now holds
    someone else's container (PVE reuses freed ids at once): a different name refuses."""
    path = lxc_path(node, vmid)
    check_seconds(timeout)
    if expect_hostname is not None:
        check_hostname(expect_hostname, field="expect_hostname")
    status = container_status(client, node, vmid)
    if status is None:
        emit_to(emit, f"CT {vmid} is already gone from node {node}")
        return None
    if expect_hostname is not None and status.name != expect_hostname:
        raise ConflictError(
            f"CT {vmid} on node {node} is named {status.name!r}, not {expect_hostname!r}: not destroying it",
            hint="The VMID may have been reused by another container; check it in Proxmox",
        )
    if status.lock:
        raise LockedError(
            f"CT {vmid} on node {node} is locked ({status.lock})",
            hint=f"Wait for the task holding the lock; a stale lock is removed with `pct unlock {vmid}` on node {node}",
        )
    if status.running:
        emit_to(emit, f"stopping CT {vmid} before destroying it")
        stop_container(client, node, vmid, emit=emit)
    try:
        upid = client.delete(path, purge=True, **{"destroy-unreferenced-disks": True})
    except NotFoundError:
        return None
    return wait_guest_task(client, str(upid), timeout=timeout, emit=emit)


def _usable_ipv4(iface: LxcInterface) -> str | None:
    candidates = [a.ip_address for a in iface.ip_addresses if a.ip_address_type == "inet"]
    if not candidates and iface.inet:
        candidates = [iface.inet.split("/", 1)[0]]
    for text in candidates:
        try:
            ip = ipaddress.IPv4Address(text)
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
            return str(ip)
    return None


def _configured_address(client: ProxmoxClient, node: str, vmid: int, interface: str) -> str | None:
    config = client.lxc_config(node, vmid)
    for key in sorted(config.net):
        options = config.net_options(key)
        if options.get("name") == interface:
            for name in ("ip", "ip6"):
                value = options.get(name, "")
                if "/" in value:
                    return str(ipaddress.ip_interface(value).ip)
    return None


#: seconds between status reads while wait_for_address sees interfaces without the address
STATUS_EVERY = 2.0


def wait_for_address(
    client: ProxmoxClient,
    node: str,
    vmid: int,
    *,
    timeout: float = 120.0,
    emit: Emit | None = None,
    static_address: str | None = None,
    interface: str = "eth0",
) -> str:
    """The container's address on ``interface``.

    Static: the configured address is checked against ``static_address`` and the container must
    run; it is returned without waiting for the interface. DHCP: ``/interfaces`` is polled (fast,
    then backing off to 2 s) until the interface has an IPv4 address that is not loopback or
    link-local. A stopped container raises :class:`ConflictError` at once: PVE answers no
    interfaces for it, and its status is also read every :data:`STATUS_EVERY` seconds while the
    address is missing (an application container whose entrypoint exits stops during the wait;
    a node answering interfaces a moment longer must not make that a DHCP timeout). No address in
    time raises :class:`UnavailableError`.
    """
    path = lxc_path(node, vmid, "interfaces")
    limit = check_seconds(timeout)
    if not re.match(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$", interface):
        raise ValidationError(f"interface {interface!r} is not an interface name", field="interface")
    if static_address is not None:
        try:
            wanted = str(ipaddress.ip_address(static_address))
        except ValueError:
            raise ValidationError(f"{static_address!r} is not an IP address", field="static_address") from None
        configured = _configured_address(client, node, vmid, interface)
        if configured != wanted:
            raise ConflictError(
                f"CT {vmid} has {configured or 'no static address'} on {interface}, not {wanted}",
                hint="The container's network config was changed outside Proximity; fix net0 or the record",
            )
        _require_running(client, node, vmid)
        return wanted
    emit_to(emit, f"waiting for CT {vmid} to get an address on {interface}")
    deadline = time.monotonic() + limit
    delay = 0.1
    status_due = time.monotonic() + STATUS_EVERY
    while True:
        try:
            interfaces = client.lxc_interfaces(node, vmid)
        except ConflictError as err:
            if isinstance(err, LockedError):
                raise
            interfaces = []  # real PVE answers "not running" for a stopped container
        for iface in interfaces:
            if iface.name == interface and (address := _usable_ipv4(iface)):
                emit_to(emit, f"CT {vmid} has address {address}")
                return address
        now = time.monotonic()
        if not interfaces or now >= status_due:
            _require_running(client, node, vmid)
            status_due = now + STATUS_EVERY
        now = time.monotonic()
        if now >= deadline:
            raise UnavailableError(
                f"CT {vmid} on node {node} got no IPv4 address on {interface} within {limit:g}s",
                hint="Check that a DHCP server answers on the container's bridge or VLAN, or use the static pool",
                method="GET",
                path=path,
            )
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 1.5, 2.0)


def _require_running(client: ProxmoxClient, node: str, vmid: int) -> None:
    status = client.lxc_status(node, vmid)
    if not status.running:
        raise ConflictError(
            f"CT {vmid} on node {node} is {status.status}; it has no address until it runs",
            hint="Start it first",
        )
