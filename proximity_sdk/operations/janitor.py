"""The janitor: operations past their deadline, operations whose runner died, retired containers.

One pass, in this order:

1. **Deadlines** (before recovery, so that an orphan past its deadline is failed, not resumed).
   For each unfinished operation past its deadline:
   - nobody runs it (pending, or its lease expired: the runner died) → the janitor claims it,
     rolls back what its journal holds, lets the kind record the failure (``on_failure``), and
     ends it ``failed`` (``error_kind`` ``DeadlineExceeded``);
   - a live runner holds it (fresh lease) → it is asked to cancel; the runner stops at its next
     step boundary and rolls back itself (the engine ends it ``cancelled``). Taking it over now
     would be unsafe: a runner that is merely slow may still create something it then cannot
     journal;
   - a live runner still holds it ``hard_grace`` after the deadline (default 10 leases) → that
     runner hangs (its heartbeat thread lives on, so its lease never lapses): the janitor takes
     the operation from it (its checkpoints and heartbeat then find it gone, and it stops) and
     fails and rolls it back as above.
2. **Recovery**: ``engine.recover()`` takes over operations whose lease expired and lets their
   kind finish or roll them back.
3. **Retired containers** (``config["retired"]``, see ``models/maintenance.py``): each whose
   ``until`` has passed is destroyed (purge) if it still carries its hostname and no app uses its
   VMID, then forgotten with its VMID reservation. One ``/cluster/resources`` call per host with
   due entries finds the node each is on now.

What cannot be done now (host unreachable, container locked) is reported and retried next pass.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING

from proximity_sdk.errors import ConflictError, LockedError, ProximityError
from proximity_sdk.models.maintenance import JanitorReport, RetiredContainer, RetiredDestroyed
from proximity_sdk.models.operation import Operation, OperationStatus
from proximity_sdk.models.proxmox import ClusterResource
from proximity_sdk.operations.reconcile import containers_by_vmid
from proximity_sdk.operations.runtime import Runtime
from proximity_sdk.proxmox.containers import destroy_container
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.maintenance_repo import (
    drop_retired,
    leases,
    retired_containers,
    seize_operation,
    vmid_owner,
)

if TYPE_CHECKING:
    from proximity_sdk.operations.engine import OperationEngine

__all__ = ["DeadlineExceeded", "Janitor"]

log = logging.getLogger(__name__)

# how long the janitor holds an operation it fails: its rollback may destroy containers
_TAKEOVER_LEASE = timedelta(minutes=30)


class DeadlineExceeded(Exception):
    """The operation ran past its deadline; the janitor failed it."""


class Janitor:
    """One instance per engine; ``run()`` is one pass (the agent schedules it)."""

    def __init__(self, runtime: Runtime, engine: OperationEngine) -> None:
        self.rt = runtime
        self.engine = engine
        # distinct from the engine's own id: a hung runner of this very process loses the operation too
        self.runner_id = f"{engine.runner_id}:janitor"

    def run(self, *, hard_grace: timedelta | None = None) -> JanitorReport:
        started = utcnow()
        began = time.perf_counter()
        failed: list[str] = []
        asked: list[str] = []
        errors: list[str] = []
        self._deadlines(hard_grace if hard_grace is not None else self.engine.lease * 10, failed, asked, errors)
        resumed = self.engine.recover()
        destroyed = self._retired(errors)
        return JanitorReport(started_at=started, elapsed_ms=(time.perf_counter() - began) * 1000, failed=failed,
                             asked_to_stop=asked, resumed=resumed, retired_destroyed=destroyed, errors=errors)

    # deadlines --------------------------------------------------------------------------------------

    def _deadlines(self, hard_grace: timedelta, failed: list[str], asked: list[str], errors: list[str]) -> None:
        store = self.rt.store
        due = store.operations.past_deadline()
        held = leases(store, [op.id for op in due])
        for op in due:
            if op.deadline is None:
                continue
            try:
                self.engine.kind(op.kind)
            except ProximityError:
                errors.append(f"operation {op.id} ({op.kind}) is past its deadline, but this process does not "
                              "know its kind: left to a process that does")
                continue
            now = utcnow()
            _runner, expires = held.get(op.id, (None, None))
            if now >= op.deadline + hard_grace and op.status == OperationStatus.RUNNING:
                taken = seize_operation(store, op.id, self.runner_id, _TAKEOVER_LEASE)
                reason = f"still running {hard_grace} past its deadline: its runner hangs"
            elif op.status == OperationStatus.PENDING or expires is None or expires < now:
                taken = store.operations.claim(op.id, self.runner_id, _TAKEOVER_LEASE)
                reason = "past its deadline and its runner is gone"
            else:
                if not op.cancel_requested:
                    store.operations.request_cancel(op.id)
                    store.operations.append_event(op.id, "past its deadline: the janitor asked it to stop",
                                                  step=op.current_step, level="warning")
                    self.engine.notify(op.id)
                asked.append(op.id)
                continue
            if taken and self._fail(op, reason):
                failed.append(op.id)

    def _fail(self, op: Operation, reason: str) -> bool:
        """Roll back and fail an operation this janitor has claimed. False if another runner took it."""
        deadline = f"{op.deadline:%Y-%m-%d %H:%M:%S} UTC" if op.deadline else "?"
        error = DeadlineExceeded(f"{op.kind} passed its deadline ({deadline}): {reason}")
        done = self.engine.fail_claimed(op.id, self.runner_id, error, message=f"{op.kind} failed: past its deadline")
        return done is not None

    # retired containers ---------------------------------------------------------------------------

    def _retired(self, errors: list[str]) -> list[RetiredDestroyed]:
        store = self.rt.store
        entries, unreadable = retired_containers(store)
        errors.extend(unreadable)
        now = utcnow()
        due: dict[str, list[tuple[str, RetiredContainer]]] = defaultdict(list)
        for app_id, entry in entries:
            if entry.until <= now:
                due[entry.host_id].append((app_id, entry))
        destroyed: list[RetiredDestroyed] = []
        for host_id, items in due.items():
            try:
                client = self.rt.clients.get(host_id)
                listing = containers_by_vmid(client.cluster_resources(kind="vm"))
            except ProximityError as exc:
                errors.append(f"retired containers on host {host_id}: {exc} (retried next pass)")
                continue
            for app_id, entry in items:
                done = self._destroy_retired(app_id, entry, listing.get(entry.vmid), errors)
                if done is not None:
                    destroyed.append(done)
        return destroyed

    def _destroy_retired(self, app_id: str, entry: RetiredContainer, seen: ClusterResource | None,
                         errors: list[str]) -> RetiredDestroyed | None:
        store = self.rt.store
        what = f"retired CT {entry.vmid} ({entry.hostname}) of app {app_id}"
        owner = vmid_owner(store, entry.host_id, entry.vmid)
        if owner is not None:
            drop_retired(store, app_id, host_id=entry.host_id, vmid=entry.vmid)
            errors.append(f"{what}: VMID {entry.vmid} is the container of app {owner}; not destroyed, entry dropped")
            return None
        if store.operations.active_for(host_id=entry.host_id, vmid=entry.vmid) is not None:
            errors.append(f"{what}: an operation works on it now (retried next pass)")
            return None
        node = (seen.node if seen is not None else None) or entry.node
        gone = seen is None
        if not gone:
            try:
                with self.engine._node_slot(entry.host_id, node):
                    gone = destroy_container(self.rt.clients.get(entry.host_id), node, entry.vmid,
                                             expect_hostname=entry.hostname) is None
            except LockedError as exc:
                errors.append(f"{what}: {exc} (retried next pass)")
                return None
            except ConflictError as exc:  # the VMID holds someone else's container now: ours is gone
                drop_retired(store, app_id, host_id=entry.host_id, vmid=entry.vmid)
                errors.append(f"{what}: {exc}; entry dropped")
                return None
            except ProximityError as exc:
                errors.append(f"{what}: {exc} (retried next pass)")
                return None
        drop_retired(store, app_id, host_id=entry.host_id, vmid=entry.vmid)
        for reservation in store.reservations.vmid_reservations(host_id=entry.host_id, app_id=app_id):
            if reservation.vmid == entry.vmid:
                store.reservations.release_vmid(entry.host_id, entry.vmid)
        log.info("janitor: %s destroyed", what)
        return RetiredDestroyed(app_id=app_id, container=entry.model_copy(update={"node": node}), gone=gone)
