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

4. **Leftovers of failed rollbacks**: an operation that ended failed or cancelled with a journal
   that still holds something (its rollback failed: a container it created, a VMID or address
   reservation, a snapshot, an unfinished backup volume) is taken by the janitor (compare-and-set
   in the store, so one replica does it), which runs the kind's rollback again: each entry is
   forgotten once undone, so every attempt resumes where the last stopped. Each attempt is an event
   of the operation. A failed attempt waits ``cleanup_backoff * 2 ** (attempts - 1)`` (at most six
   hours) before the next; the wait is in the store, so it survives restarts.
   ``stuck_leftovers()`` counts those that failed ``STUCK_AFTER`` attempts or more, and those the
   janitor does not retry alone (an update's or restore's journal, whose undo rewrites an app's
   disk: a person decides): the agent's ``proximity_janitor_stuck_leftovers`` gauge, worth an alert.

What cannot be done now (host unreachable, container locked) is reported and retried next pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING

from proximity_sdk.engine.context import LeaseLost, OperationContext
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ConflictError, LockedError, NotFoundError, ProximityError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.maintenance import JanitorReport, RetiredContainer, RetiredDestroyed
from proximity_sdk.models.operation import Operation, OperationStatus
from proximity_sdk.models.proxmox import ClusterResource
from proximity_sdk.operations.reconcile import containers_by_vmid
from proximity_sdk.proxmox.containers import destroy_container
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.maintenance_repo import (
    Leftover,
    claim_leftovers,
    drop_retired,
    leases,
    leftovers,
    release_leftovers,
    retired_containers,
    seize_operation,
    vmid_owner,
)

if TYPE_CHECKING:
    from proximity_sdk.engine.engine import OperationEngine
    from proximity_sdk.engine.kinds import OperationKind

__all__ = ["RETRYABLE_EFFECTS", "STUCK_AFTER", "DeadlineExceeded", "Janitor"]

log = logging.getLogger(__name__)

# how long the janitor holds an operation it fails: its rollback may destroy containers
_TAKEOVER_LEASE = timedelta(minutes=30)
# journal entries whose undo is safe whenever it runs: it only removes what the operation created
RETRYABLE_EFFECTS = frozenset({"container", "vmid", "address", "snapshot", "volume", "location"})
#: failed cleanup attempts after which leftovers count as stuck (the alert-worthy gauge)
STUCK_AFTER = 3
_MAX_BACKOFF = timedelta(hours=6)


class _CleanupContext(OperationContext):
    """The context of a cleanup attempt on an ended operation: it is "ours" while the janitor's
    claim holds (the operation is no longer running, so the runner's check cannot apply)."""

    def checkpoint(self) -> None:
        if self._lost.is_set():
            raise LeaseLost(self.id)
        runner, _expires = leases(self.store, [self.id]).get(self.id, (None, None))
        if runner != self.runner_id:
            self._lost.set()
            raise LeaseLost(self.id)


class DeadlineExceeded(Exception):
    """The operation ran past its deadline; the janitor failed it."""


class Janitor:
    """One instance per engine; ``run()`` is one pass (the agent schedules it)."""

    def __init__(
        self, services: Services, engine: OperationEngine, *, cleanup_backoff: timedelta = timedelta(minutes=5)
    ) -> None:
        self.services = services
        self.engine = engine
        self.cleanup_backoff = cleanup_backoff
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
        cleaned: list[str] = []
        still: list[str] = []
        self._leftovers(cleaned, still, errors)
        return JanitorReport(
            started_at=started,
            elapsed_ms=(time.perf_counter() - began) * 1000,
            failed=failed,
            asked_to_stop=asked,
            resumed=resumed,
            retired_destroyed=destroyed,
            cleaned_up=cleaned,
            cleanup_failed=still,
            errors=errors,
        )

    def stuck_leftovers(self) -> int:
        """Ended operations whose leftovers the janitor failed to clean ``STUCK_AFTER`` times or
        more, or will not clean alone: each needs a person."""
        return sum(
            1 for left in leftovers(self.services.store) if left.attempts >= STUCK_AFTER or not self._retryable(left)
        )

    # leftovers of failed rollbacks ------------------------------------------------------------------

    @staticmethod
    def _retryable(left: Leftover) -> bool:
        return all(e.get("kind") in RETRYABLE_EFFECTS for e in left.effects)

    def _leftovers(self, cleaned: list[str], still: list[str], errors: list[str]) -> None:
        store = self.services.store
        now = utcnow()
        for left in leftovers(store):
            if left.retry_at is not None and left.retry_at > now:
                continue  # backing off, or another replica's janitor works on it
            kinds = ", ".join(sorted({str(e.get("kind")) for e in left.effects}))
            if not self._retryable(left):
                errors.append(
                    f"operation {left.id} ({left.kind}) ended with a journal the janitor does not undo "
                    f"alone ({kinds}): see its events and clean up by hand"
                )
                continue
            try:
                impl = self.engine.kind(left.kind)
            except ProximityError:
                errors.append(
                    f"operation {left.id} ({left.kind}) left {kinds}, but this process does not know "
                    "its kind: left to a process that does"
                )
                continue
            op = store.operations.get(left.id)
            busy = (store.operations.active_for(app_id=op.app_id) if op.app_id else None) or (
                store.operations.active_for(host_id=op.host_id, vmid=op.vmid) if op.host_id and op.vmid else None
            )
            if busy is not None:
                errors.append(
                    f"operation {left.id} left {kinds}; operation {busy.id} works on the same app now "
                    "(retried next pass)"
                )
                continue
            if not claim_leftovers(store, left.id, self.runner_id, _TAKEOVER_LEASE):
                continue
            if self._clean(op, impl, left, errors):
                cleaned.append(left.id)
            else:
                still.append(left.id)

    def _clean(self, op: Operation, impl: OperationKind, left: Leftover, errors: list[str]) -> bool:
        store = self.services.store
        attempt = left.attempts + 1
        _, params, effects = store.operations.load(op.id)
        ctx = _CleanupContext(
            store,
            op,
            self.runner_id,
            params=params,
            effects=effects,
            notify=self.engine.notify,
            slots=self.engine.node_slots,
            lost=threading.Event(),
        )
        containers = {(str(e.get("host_id")), int(e["vmid"])) for e in left.effects if e.get("kind") == "container"}
        ctx.event(
            f"janitor: undoing what the rollback left (attempt {attempt}): "
            + ", ".join(sorted({str(e.get("kind")) for e in left.effects})),
            level="warning",
        )
        ctx.rolling_back = True
        try:
            impl.rollback(ctx)
            if ctx.effects:
                raise ProximityError(
                    "the rollback ended with entries still in the journal: "
                    + ", ".join(sorted({str(e.get("kind")) for e in ctx.effects}))
                )
        except LeaseLost:
            return False
        except Exception as exc:
            delay = min(self.cleanup_backoff * 2 ** (attempt - 1), _MAX_BACKOFF)
            ctx.event(f"janitor: attempt {attempt} failed ({exc}); next attempt in {delay}", level="error")
            release_leftovers(store, op.id, self.runner_id, attempts=attempt, retry_at=utcnow() + delay)
            errors.append(
                f"operation {op.id} ({op.kind}): cleanup attempt {attempt} failed: {exc} (retried in {delay})"
            )
            log.warning("janitor: cleanup of operation %s failed (attempt %d): %s", op.id, attempt, exc)
            return False
        finally:
            self.engine.notify(op.id)
        self._forget_destroyed(op, containers)
        ctx.event(f"janitor: nothing left (attempt {attempt})")
        release_leftovers(store, op.id, self.runner_id, attempts=attempt, retry_at=None)
        log.info("janitor: what operation %s left is undone", op.id)
        return True

    def _forget_destroyed(self, op: Operation, containers: set[tuple[str, int]]) -> None:
        """A failed deploy's app in ``error`` kept the VMID of the container its rollback could not
        destroy; now it is gone, the record forgets it."""
        if not op.app_id or not containers:
            return
        store = self.services.store
        try:
            app = store.apps.get(op.app_id)
        except NotFoundError:
            return
        if app.status == AppStatus.ERROR and app.vmid is not None and (app.host_id, app.vmid) in containers:
            store.apps.update(app.id, vmid=None, address=None)

    # deadlines --------------------------------------------------------------------------------------

    def _deadlines(self, hard_grace: timedelta, failed: list[str], asked: list[str], errors: list[str]) -> None:
        store = self.services.store
        due = store.operations.past_deadline()
        held = leases(store, [op.id for op in due])
        for op in due:
            if op.deadline is None:
                continue
            try:
                self.engine.kind(op.kind)
            except ProximityError:
                errors.append(
                    f"operation {op.id} ({op.kind}) is past its deadline, but this process does not "
                    "know its kind: left to a process that does"
                )
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
                    store.operations.append_event(
                        op.id, "past its deadline: the janitor asked it to stop", step=op.current_step, level="warning"
                    )
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
        store = self.services.store
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
                client = self.services.clients.get(host_id)
                listing = containers_by_vmid(client.cluster_resources(kind="vm"))
            except ProximityError as exc:
                errors.append(f"retired containers on host {host_id}: {exc} (retried next pass)")
                continue
            for app_id, entry in items:
                done = self._destroy_retired(app_id, entry, listing.get(entry.vmid), errors)
                if done is not None:
                    destroyed.append(done)
        return destroyed

    def _destroy_retired(
        self, app_id: str, entry: RetiredContainer, seen: ClusterResource | None, errors: list[str]
    ) -> RetiredDestroyed | None:
        store = self.services.store
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
                with self.engine.node_slots.slot(entry.host_id, node):
                    gone = (
                        destroy_container(
                            self.services.clients.get(entry.host_id), node, entry.vmid, expect_hostname=entry.hostname
                        )
                        is None
                    )
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
