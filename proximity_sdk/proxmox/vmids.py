"""VMID allocation that is safe across threads, processes and agents.

``/cluster/nextid`` reserves nothing: two callers asking at once get the same id and one create
fails. So an id is only ours once a row in the shared reservation table says so (its primary
key decides between racing callers), and a create that still meets "already exists" (a
container made outside Proximity since we looked) moves on to the next free id.

Candidates: with a configured range (``vmid_min``/``vmid_max`` in settings) the range from its
start; otherwise from ``/cluster/nextid`` upwards. Ids in use on the cluster (one
``/cluster/resources`` read) and ids held in the table are skipped without a database round trip.

The table is reached through :class:`VmidReservations` (``ReservationsRepository`` of the store
fits it), so this module does not depend on the store.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from typing import Protocol

from proximity_sdk.errors import AlreadyExistsError, ConflictError, ValidationError
from proximity_sdk.proxmox._ctspec import ContainerSpec
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.containers import create_container
from proximity_sdk.proxmox.progress import Emit, emit_to
from proximity_sdk.proxmox.tasks import TaskResult
from proximity_sdk.proxmox.validate import VMID_MAX, VMID_MIN, check_node_name, check_vmid

__all__ = ["VmidAllocator", "VmidReservations", "create_with_vmid_retry"]

# Candidates tried per allocation before giving up: each costs one small database transaction.
MAX_CANDIDATES = 1000


class VmidReservations(Protocol):
    """The reservation table as the allocator needs it."""

    def reserve_vmid(
        self, host_id: str, vmid: int, *, operation_id: str | None = None, app_id: str | None = None
    ) -> bool: ...

    def held_vmids(self, host_id: str) -> set[int]: ...

    def release_vmid(self, host_id: str, vmid: int) -> bool: ...


class VmidAllocator:
    """Reserves VMIDs on one host (one Proxmox cluster: VMIDs are cluster-wide).

    Threads of one process also take a local lock while choosing (``process_lock``), which
    spares them from racing each other through the table; other processes are kept apart by the
    table alone. ``process_lock=False`` leaves every race to the table (as between processes).
    """

    _locks: dict[str, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(
        self,
        client: ProxmoxClient,
        reservations: VmidReservations,
        *,
        host_id: str,
        vmid_min: int | None = None,
        vmid_max: int | None = None,
        process_lock: bool = True,
    ) -> None:
        if not isinstance(host_id, str) or not host_id:
            raise ValidationError("host_id is required", field="host_id")
        lower = check_vmid(vmid_min, field="vmid_min") if vmid_min is not None else None
        upper = check_vmid(vmid_max, field="vmid_max") if vmid_max is not None else None
        if lower is not None and upper is not None and lower > upper:
            raise ValidationError(f"vmid_min ({lower}) is above vmid_max ({upper})", field="vmid_min")
        self.client = client
        self.reservations = reservations
        self.host_id = host_id
        self.vmid_min = lower
        self.vmid_max = upper
        if process_lock:
            with VmidAllocator._locks_guard:
                self._lock: AbstractContextManager[object] = VmidAllocator._locks.setdefault(host_id, threading.Lock())
        else:
            self._lock = contextlib.nullcontext()

    def _used_on_cluster(self) -> set[int]:
        return {r.vmid for r in self.client.cluster_resources(kind="vm") if r.vmid is not None}

    def reserve(
        self,
        *,
        operation_id: str | None = None,
        app_id: str | None = None,
        after: int | None = None,
        in_use: Collection[int] | None = None,
    ) -> int:
        """Reserve and return a VMID free on the cluster and in the table.

        ``after``: only ids above it (the next one after a collision). ``in_use``: the cluster's
        guest VMIDs from a ``/cluster/resources`` answer the caller has just read (a deploy's
        placement: ``PlacementDecision.vmids_in_use``), instead of reading it again; None reads
        it. Raises ConflictError when the range has no free id."""
        # Proxmox is read before the lock: an id another thread takes meanwhile is in the table
        # read below, and one made outside Proximity meanwhile (or since the caller's listing)
        # fails the create, which moves on (create_with_vmid_retry). Under the lock, only the table.
        used = set(in_use) if in_use is not None else self._used_on_cluster()
        if self.vmid_min is None and self.vmid_max is None:
            start = self.client.next_vmid()
        else:
            start = self.vmid_min if self.vmid_min is not None else VMID_MIN
        upper = self.vmid_max if self.vmid_max is not None else VMID_MAX
        if after is not None:
            start = max(start, after + 1)
        with self._lock:
            skip = used | self.reservations.held_vmids(self.host_id)
            tried = 0
            vmid = start
            while vmid <= upper and tried < MAX_CANDIDATES:
                if vmid not in skip:
                    tried += 1
                    if self.reservations.reserve_vmid(self.host_id, vmid, operation_id=operation_id, app_id=app_id):
                        return vmid
                vmid += 1
        where = f"{start}..{upper}"
        raise ConflictError(
            f"no free VMID in {where} on host {self.host_id} ({tried} candidates were taken meanwhile)"
            if tried
            else f"no free VMID in {where} on host {self.host_id}",
            hint="Widen vmid_min/vmid_max in settings, or remove unused guests and stale reservations",
        )

    def release(self, vmid: int) -> bool:
        """Give a reserved VMID back (False when it was not reserved)."""
        return self.reservations.release_vmid(self.host_id, check_vmid(vmid))


def create_with_vmid_retry(
    client: ProxmoxClient,
    node: str,
    spec: ContainerSpec,
    *,
    allocator: VmidAllocator,
    operation_id: str | None = None,
    app_id: str | None = None,
    emit: Emit | None = None,
    on_vmid_change: Callable[[int, int], object] | None = None,
    attempts: int = 5,
    timeout: float = 900.0,
) -> tuple[ContainerSpec, TaskResult]:
    """Create ``spec`` (its VMID already reserved by the caller); when Proxmox says the VMID
    already exists, reserve the next free one, call ``on_vmid_change(old, new)`` (record it!),
    release the old reservation and try again, up to ``attempts`` times.

    Returns the spec actually created (its ``vmid`` may differ) and the create task's result.
    The new id is reserved before the old one is released, so at every moment the operation
    holds a reservation it can find after a crash."""
    check_node_name(node)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValidationError(f"attempts must be a positive integer, not {attempts!r}", field="attempts")
    current = spec
    for attempt in range(1, attempts + 1):
        try:
            return current, create_container(client, node, current, emit=emit, timeout=timeout)
        except AlreadyExistsError:
            if attempt == attempts:
                raise
            old = current.vmid
            new = allocator.reserve(operation_id=operation_id, app_id=app_id, after=old)
            emit_to(emit, f"VMID {old} was taken outside Proximity meanwhile; using {new}", "warning")
            if on_vmid_change is not None:
                on_vmid_change(old, new)
            allocator.release(old)
            current = current.model_copy(update={"vmid": new})
    raise AssertionError("unreachable")  # pragma: no cover
