"""What the periodic jobs write: reconcile's bulk update, retired containers, operations the
janitor takes from a runner that hangs.

Functions over a :class:`Store` rather than a repository attribute, so the core store does not
depend on them. Each is one transaction.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pydantic
from sqlalchemy import String, Table, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from proximity_sdk.errors import NotFoundError
from proximity_sdk.models.app import ACTIVE_APP_STATUSES, AppStatus
from proximity_sdk.models.maintenance import AppChange, RetiredContainer
from proximity_sdk.models.operation import OperationStatus
from proximity_sdk.store.base import UTCDateTime, utcnow
from proximity_sdk.store.tables import AppRow, OperationRow

if TYPE_CHECKING:
    from proximity_sdk.store import Store

__all__ = [
    "Observed",
    "ReconcileOutcome",
    "add_retired",
    "apply_observations",
    "claim_leftovers",
    "drop_retired",
    "leases",
    "leftovers",
    "release_leftovers",
    "retired_containers",
    "retired_of",
    "seize_operation",
    "vmid_owner",
]

_ACTIVE_OPS = (OperationStatus.PENDING, OperationStatus.RUNNING)
# ended operations whose journal may still hold what a failed rollback left
_ENDED_WITH_ROLLBACK = (OperationStatus.FAILED, OperationStatus.CANCELLED)
_APPS = typing.cast(Table, AppRow.__table__)
_PG_USAGE = text(
    "UPDATE apps SET config = jsonb_set(coalesce(apps.config::jsonb, '{}'::jsonb), '{usage}', o.usage)::json, "
    "updated_at = :now FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS o(id varchar, usage jsonb) "
    "WHERE apps.id = o.id"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("rows", type_=String()))
_PROXMOX_STATUS = {"running": AppStatus.RUNNING, "stopped": AppStatus.STOPPED}


@dataclass(frozen=True)
class Observed:
    """One container as ``/cluster/resources`` listed it."""

    node: str
    status: str
    usage: dict[str, Any]


@dataclass
class ReconcileOutcome:
    apps: int = 0
    updated: int = 0
    skipped_busy: int = 0
    unknown: int = 0
    changes: list[AppChange] = field(default_factory=list)


def apply_observations(
    store: Store, host_id: str, observed: Mapping[int, Observed], *, since: datetime
) -> ReconcileOutcome:
    """Bring the host's app records in line with what Proxmox listed, in one transaction.

    ``observed``: every container of the host by VMID (a VMID missing from it is gone).
    ``since``: when that listing was asked for; an app written after it (an operation finished
    meanwhile) knows better than the listing and is left alone, as is an app in an active state
    or with an unfinished operation. Apps in ``error`` keep their status (it needs a person or an
    operation) but follow their container's node. A container on an offline node (status
    ``unknown``) changes nothing but the node.

    Only the few columns reconcile needs are read, and the usage goes into ``config`` with the
    database's own JSON function, so an app's config (its compose file) never travels for it."""
    out = ReconcileOutcome()
    now = utcnow()
    usage_rows: list[dict[str, Any]] = []
    change_rows: list[dict[str, Any]] = []
    with store.session(immediate=True) as s:
        dialect = s.get_bind().dialect.name
        busy = set(
            s.execute(
                select(OperationRow.app_id).where(
                    OperationRow.status.in_(_ACTIVE_OPS), OperationRow.app_id.is_not(None)
                )
            ).scalars()
        )
        query = select(AppRow.id, AppRow.hostname, AppRow.status, AppRow.node, AppRow.vmid, AppRow.updated_at).where(
            AppRow.host_id == host_id, AppRow.vmid.is_not(None)
        )
        if dialect == "postgresql":
            query = query.with_for_update()
        for row in s.execute(query):
            out.apps += 1
            if row.status in ACTIVE_APP_STATUSES or row.id in busy or row.updated_at > since:
                out.skipped_busy += 1
                continue
            seen = observed.get(row.vmid)
            status, node = row.status, row.node
            if seen is None:
                if status not in (AppStatus.ERROR, AppStatus.VANISHED):
                    status = AppStatus.VANISHED
            else:
                node = seen.node
                wanted = _PROXMOX_STATUS.get(seen.status)
                if wanted is None:
                    out.unknown += 1
                else:
                    if status != AppStatus.ERROR:
                        status = wanted
                    usage_rows.append({"b_id": row.id, "b_usage": json.dumps(seen.usage), "b_now": now})
            if status != row.status or node != row.node:
                change_rows.append(
                    {
                        "b_id": row.id,
                        "b_status": status.value,
                        "b_node": node,
                        "b_now": now,
                        "b_changed": now if status != row.status else None,
                    }
                )
                out.changes.append(
                    AppChange(
                        app_id=row.id,
                        hostname=row.hostname,
                        host_id=host_id,
                        vmid=row.vmid,
                        status_before=row.status,
                        status_after=status,
                        node_before=row.node,
                        node_after=node,
                    )
                )
        apps = _APPS
        if usage_rows:
            _write_usage(s, dialect, usage_rows, now)
            out.updated = len(usage_rows)
        if change_rows:
            s.execute(
                update(apps)
                .where(apps.c.id == bindparam("b_id"))
                .values(
                    status=bindparam("b_status"),
                    node=bindparam("b_node"),
                    updated_at=bindparam("b_now"),
                    status_changed_at=func.coalesce(
                        bindparam("b_changed", type_=UTCDateTime()), apps.c.status_changed_at
                    ),
                ),
                change_rows,
            )
    return out


def _write_usage(s: Session, dialect: str, rows: list[dict[str, Any]], now: datetime) -> None:
    """Set ``config["usage"]`` of many apps with the database's own JSON function: the config
    (the app's compose file) never travels. PostgreSQL: one statement over the rows sent as one
    JSON parameter (a statement per row costs a server round each; a VALUES list costs its
    compilation); SQLite (in process): one executemany."""
    if dialect == "postgresql":
        payload = json.dumps([{"id": r["b_id"], "usage": json.loads(r["b_usage"])} for r in rows])
        s.execute(_PG_USAGE, {"rows": payload, "now": now})
        return
    apps = _APPS
    usage = func.json(bindparam("b_usage", type_=String()))
    s.execute(
        update(apps)
        .where(apps.c.id == bindparam("b_id"))
        .values(
            config=func.json_set(func.coalesce(apps.c.config, text("'{}'")), "$.usage", usage),
            updated_at=bindparam("b_now"),
        ),
        rows,
    )


# retired containers ----------------------------------------------------------------------------------


def _entries(config: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    raw = (config or {}).get("retired")
    return [dict(e) for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []


def retired_of(config: Mapping[str, Any] | None) -> list[RetiredContainer]:
    """The readable retired containers of one app's config."""
    found = []
    for entry in _entries(config):
        try:
            found.append(RetiredContainer.model_validate(entry))
        except pydantic.ValidationError:
            continue
    return found


def add_retired(store: Store, app_id: str, container: RetiredContainer) -> None:
    """Record a container the app keeps until ``container.until`` (the janitor destroys it then).
    Replaces an entry for the same host and VMID."""
    with store.session(immediate=True) as s:
        row = s.get(AppRow, app_id, with_for_update=True)
        if row is None:
            raise NotFoundError(f"no app {app_id!r}")
        kept = [
            e
            for e in _entries(row.config)
            if not (e.get("host_id") == container.host_id and e.get("vmid") == container.vmid)
        ]
        row.config = {**(row.config or {}), "retired": [*kept, container.as_json()]}


def retired_containers(store: Store) -> tuple[list[tuple[str, RetiredContainer]], list[str]]:
    """Every app's retired containers as ``(app_id, container)``, and the entries that cannot be
    read (described, for the report; they are left in place)."""
    found: list[tuple[str, RetiredContainer]] = []
    bad: list[str] = []
    with store.session() as s:
        for app_id, config in s.execute(select(AppRow.id, AppRow.config)):
            for entry in _entries(config):
                try:
                    found.append((app_id, RetiredContainer.model_validate(entry)))
                except pydantic.ValidationError as exc:
                    bad.append(f"app {app_id}: unreadable retired entry {entry!r}: {exc.errors()[0]['msg']}")
    return found, bad


def drop_retired(store: Store, app_id: str, *, host_id: str, vmid: int) -> bool:
    """Forget a retired container (after it was destroyed). False when the entry was not there."""
    with store.session(immediate=True) as s:
        row = s.get(AppRow, app_id, with_for_update=True)
        if row is None:
            return False
        entries = _entries(row.config)
        kept = [e for e in entries if not (e.get("host_id") == host_id and e.get("vmid") == vmid)]
        if len(kept) == len(entries):
            return False
        config = dict(row.config or {})
        if kept:
            config["retired"] = kept
        else:
            config.pop("retired", None)
        row.config = config
        return True


def vmid_owner(store: Store, host_id: str, vmid: int) -> str | None:
    """The app whose current container is this VMID on the host, if any."""
    with store.session() as s:
        return s.execute(select(AppRow.id).where(AppRow.host_id == host_id, AppRow.vmid == vmid)).scalar()


# operations ----------------------------------------------------------------------------------------


def leases(store: Store, op_ids: Sequence[str]) -> dict[str, tuple[str | None, datetime | None]]:
    """``op_id -> (runner_id, lease_expires_at)`` of these operations."""
    if not op_ids:
        return {}
    with store.session() as s:
        rows = s.execute(
            select(OperationRow.id, OperationRow.runner_id, OperationRow.lease_expires_at).where(
                OperationRow.id.in_(list(op_ids))
            )
        )
        return {r.id: (r.runner_id, r.lease_expires_at) for r in rows}


def seize_operation(store: Store, op_id: str, runner_id: str, lease: timedelta) -> bool:
    """Take an unfinished operation even from a runner whose lease is fresh (it hangs): from now
    on its heartbeat and checkpoints find the operation no longer theirs, and its journal writes
    are ignored. Only for operations long past their deadline. False when it had already ended."""
    now = utcnow()
    with store.session() as s:
        result = s.execute(
            update(OperationRow)
            .where(OperationRow.id == op_id, OperationRow.status.in_(_ACTIVE_OPS))
            .values(status=OperationStatus.RUNNING, runner_id=runner_id, lease_expires_at=now + lease, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


# leftovers of failed rollbacks -----------------------------------------------------------------------
#
# An ended (failed or cancelled) operation whose side-effect journal is not empty: its rollback
# could not finish. The janitor takes it like a lease (``runner_id`` and ``lease_expires_at``,
# which an ended operation does not otherwise use), and after a failed attempt leaves
# ``lease_expires_at`` at the time of the next attempt: the backoff survives restarts and is
# shared by every replica. ``params["janitor_attempts"]`` counts the attempts.


@dataclass(frozen=True)
class Leftover:
    """An ended operation whose journal still holds something."""

    id: str
    kind: str
    app_id: str | None
    attempts: int
    retry_at: datetime | None
    effects: list[dict[str, Any]] = field(default_factory=list)


def leftovers(store: Store) -> list[Leftover]:
    """Every ended operation whose journal is not empty, oldest first."""
    with store.session() as s:
        rows = s.execute(
            select(
                OperationRow.id,
                OperationRow.kind,
                OperationRow.app_id,
                OperationRow.params,
                OperationRow.side_effects,
                OperationRow.lease_expires_at,
            )
            .where(
                OperationRow.status.in_(_ENDED_WITH_ROLLBACK),
                OperationRow.side_effects.is_not(None),
                func.cast(OperationRow.side_effects, String) != "[]",
            )
            .order_by(OperationRow.created_at)
        )
        found = []
        for r in rows:
            effects = [dict(e) for e in (r.side_effects or [])]
            if not effects:
                continue
            attempts = int((r.params or {}).get("janitor_attempts", 0) or 0)
            found.append(
                Leftover(
                    id=r.id,
                    kind=r.kind,
                    app_id=r.app_id,
                    attempts=attempts,
                    retry_at=r.lease_expires_at,
                    effects=effects,
                )
            )
        return found


def claim_leftovers(store: Store, op_id: str, runner_id: str, lease: timedelta) -> bool:
    """Take an ended operation's leftovers to clean them up: compare-and-set, so one janitor of
    all the replicas wins, and only once its backoff has passed."""
    now = utcnow()
    with store.session() as s:
        result = s.execute(
            update(OperationRow)
            .where(
                OperationRow.id == op_id,
                OperationRow.status.in_(_ENDED_WITH_ROLLBACK),
                (OperationRow.lease_expires_at.is_(None)) | (OperationRow.lease_expires_at < now),
            )
            .values(runner_id=runner_id, lease_expires_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


def release_leftovers(store: Store, op_id: str, runner_id: str, *, attempts: int, retry_at: datetime | None) -> None:
    """Give the operation back after an attempt: ``retry_at`` is when the next one may start
    (None once nothing is left)."""
    with store.session(immediate=True) as s:
        row = s.get(OperationRow, op_id, with_for_update=True)
        if row is None or row.runner_id != runner_id:
            return
        row.params = {**(row.params or {}), "janitor_attempts": attempts}
        row.lease_expires_at = retry_at
