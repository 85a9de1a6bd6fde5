"""VMID and static-address reservations: what an operation has taken before Proxmox knows it.

Both tables have the reserved value as their primary key (VMIDs per host), so the database
decides who gets a value: an insert that finds the key taken does nothing, and the caller moves
on to the next candidate. That holds across threads, processes and agents sharing one database.
Each insert is its own short transaction, so a reservation is durable (and visible to others)
the moment the call returns; a crash after it leaves a row an operation can find and release.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import threading
import time
import typing
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import CursorResult, Select, bindparam, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from proximity_sdk.errors import ConflictError, NotFoundError, ValidationError
from proximity_sdk.models.settings import IPPool
from proximity_sdk.store._common import StoreContext
from proximity_sdk.store.tables import (
    AddressReservationRow,
    AppRow,
    HostRow,
    OperationRow,
    VmidReservationRow,
)

__all__ = ["AddressReservation", "ReservationsRepository", "VmidReservation"]


class VmidReservation(BaseModel):
    """A VMID held on a host by an operation and/or an app."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host_id: str
    vmid: int
    operation_id: str | None = None
    app_id: str | None = None
    reserved_at: datetime


class AddressReservation(BaseModel):
    """A static pool address held by an operation and/or an app."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    address: str
    operation_id: str | None = None
    app_id: str | None = None
    reserved_at: datetime


def _vmid_model(row: VmidReservationRow) -> VmidReservation:
    return VmidReservation(
        host_id=row.host_id,
        vmid=row.vmid,
        operation_id=row.operation_id,
        app_id=row.app_id,
        reserved_at=row.reserved_at,
    )


def _address_model(row: AddressReservationRow) -> AddressReservation:
    return AddressReservation(
        address=row.address,
        operation_id=row.operation_id,
        app_id=row.app_id,
        reserved_at=row.reserved_at,
    )


def _rowcount(result: object) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _insert_ignoring_conflict(s: Session, table: Any, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when this call inserted the row.

    RETURNING tells whether a row went in (psycopg reports no rowcount for this statement)."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - the store only opens SQLite and PostgreSQL
        raise ValidationError(f"reservations are not supported on {dialect}")
    key = next(iter(table.primary_key.columns))
    return s.execute(stmt.returning(key)).first() is not None


_CLAIM_MEMORY_S = 60.0  # how long an address reserved here is remembered (_claim)

# what each referent is, its table's id column, and the error when it is missing
_REFERENTS: tuple[tuple[str, Any, str, str | None], ...] = (
    ("host_id", HostRow.id, "no host with id {!r}", "Reserve VMIDs for a registered host"),
    ("operation_id", OperationRow.id, "no operation with id {!r}", None),
    ("app_id", AppRow.id, "no app with id {!r}", None),
)


@functools.cache
def _refs_probe(given: tuple[bool, bool, bool]) -> Select[Any]:
    """One SELECT of whether each given referent exists: built once per combination."""
    probes = [
        exists().where(column == bindparam(name)).label(name)
        for (name, column, _, _), wanted in zip(_REFERENTS, given, strict=True)
        if wanted
    ]
    return typing.cast(Select[Any], select(*probes))


def _check_refs(s: Session, *, host_id: str | None, operation_id: str | None, app_id: str | None) -> None:
    # Checked up front so a missing referent is a clear NotFoundError, not an IntegrityError. One
    # round trip of EXISTS, not a row loaded per referent: an operation's row carries its params
    # and an app's its config, and a deploy's reservations checked them five times
    values = {"host_id": host_id, "operation_id": operation_id, "app_id": app_id}
    given = tuple(values[name] is not None for name, *_ in _REFERENTS)
    if not any(given):
        return
    found = s.execute(_refs_probe(given), {k: v for k, v in values.items() if v is not None}).one()._mapping
    for name, _, message, hint in _REFERENTS:
        if values[name] is not None and not found[name]:
            raise NotFoundError(message.format(values[name]), hint=hint)


def _address_text(address: object) -> str:
    try:
        return str(ipaddress.ip_address(str(address)))
    except ValueError:
        raise ValidationError(f"{address!r} is not an IP address", field="address") from None


def _pool_addresses(pool: IPPool) -> Iterator[str]:
    first, last = int(pool.first), int(pool.last)
    factory = ipaddress.IPv4Address if pool.first.version == 4 else ipaddress.IPv6Address
    for value in range(first, last + 1):
        yield str(factory(value))


class ReservationsRepository:
    """VMIDs per host and static addresses, reserved race-free through the primary keys."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        # addresses this process's threads are inserting now, and when each of the last minute's
        # was reserved (monotonic seconds): see _claim
        self._claiming: set[str] = set()
        self._reserved_at: dict[str, float] = {}
        self._claiming_lock = threading.Lock()

    # ------------------------------------------------------------------ VMIDs

    def reserve_vmid(
        self, host_id: str, vmid: int, *, operation_id: str | None = None, app_id: str | None = None
    ) -> bool:
        """Take ``vmid`` on the host; False when someone already holds it (nothing changes then)."""
        if isinstance(vmid, bool) or not isinstance(vmid, int) or not 100 <= vmid <= 999_999_999:
            raise ValidationError(f"vmid {vmid!r} is not a Proxmox VMID (100 to 999999999)", field="vmid")
        with self._ctx.session(immediate=True) as s:
            _check_refs(s, host_id=host_id, operation_id=operation_id, app_id=app_id)
            return _insert_ignoring_conflict(
                s,
                VmidReservationRow.__table__,
                {"host_id": host_id, "vmid": vmid, "operation_id": operation_id, "app_id": app_id},
            )

    def held_vmids(self, host_id: str) -> set[int]:
        """VMIDs nobody else may take on this host: reserved ones and those recorded for apps."""
        with self._ctx.session() as s:
            reserved = s.execute(select(VmidReservationRow.vmid).where(VmidReservationRow.host_id == host_id))
            apps = s.execute(select(AppRow.vmid).where(AppRow.host_id == host_id, AppRow.vmid.is_not(None)))
            return {int(v) for (v,) in reserved} | {int(v) for (v,) in apps if v is not None}

    def vmid_reservations(
        self, *, host_id: str | None = None, operation_id: str | None = None, app_id: str | None = None
    ) -> list[VmidReservation]:
        """Reservations, filtered by what is given, ordered by host and VMID."""
        query = select(VmidReservationRow).order_by(VmidReservationRow.host_id, VmidReservationRow.vmid)
        if host_id is not None:
            query = query.where(VmidReservationRow.host_id == host_id)
        if operation_id is not None:
            query = query.where(VmidReservationRow.operation_id == operation_id)
        if app_id is not None:
            query = query.where(VmidReservationRow.app_id == app_id)
        with self._ctx.session() as s:
            return [_vmid_model(r) for r in s.execute(query).scalars()]

    def attach_vmid(self, host_id: str, vmid: int, *, app_id: str) -> None:
        """Record that the app now owns the reserved VMID (it outlives the operation)."""
        with self._ctx.session(immediate=True) as s:
            _check_refs(s, host_id=None, operation_id=None, app_id=app_id)
            done = _rowcount(
                s.execute(
                    update(VmidReservationRow)
                    .where(VmidReservationRow.host_id == host_id, VmidReservationRow.vmid == vmid)
                    .values(app_id=app_id)
                )
            )
            if done != 1:
                raise NotFoundError(f"VMID {vmid} is not reserved on host {host_id!r}")

    def release_vmid(self, host_id: str, vmid: int) -> bool:
        """Give the VMID back; False when it was not reserved (releasing twice is harmless)."""
        with self._ctx.session() as s:
            stmt = delete(VmidReservationRow).where(
                VmidReservationRow.host_id == host_id, VmidReservationRow.vmid == vmid
            )
            return _rowcount(s.execute(stmt)) == 1

    # -------------------------------------------------------------- addresses

    def try_reserve_address(self, address: str, *, operation_id: str | None = None, app_id: str | None = None) -> bool:
        """Take this exact address; False when someone already holds it."""
        text = _address_text(address)
        with self._ctx.session(immediate=True) as s:
            _check_refs(s, host_id=None, operation_id=operation_id, app_id=app_id)
            return _insert_ignoring_conflict(
                s,
                AddressReservationRow.__table__,
                {"address": text, "operation_id": operation_id, "app_id": app_id},
            )

    def held_addresses(self) -> set[str]:
        """Addresses nobody else may take: reserved ones and those recorded for apps."""
        with self._ctx.session() as s:
            reserved = s.execute(select(AddressReservationRow.address)).scalars()
            apps = s.execute(select(AppRow.address).where(AppRow.address.is_not(None))).scalars()
            out = set(reserved)
            for value in apps:
                try:
                    out.add(str(ipaddress.ip_address(str(value))))
                except ValueError:
                    continue  # a hostname or garbage recorded for an adopted app: not a pool address
            return out

    def reserve_address(
        self,
        pool: IPPool,
        *,
        operation_id: str | None = None,
        app_id: str | None = None,
        exclude: Iterable[str] = (),
    ) -> str:
        """The lowest free address of the pool, reserved. ``exclude`` is never handed out (the
        gateway, addresses found in use on the network). ConflictError when the pool is full."""
        if not isinstance(pool, IPPool):
            raise ValidationError(f"pool must be an IPPool (Settings.pool()), not {type(pool).__name__}")
        skip = {_address_text(a) for a in exclude}
        with self._ctx.session() as s:
            # check once here: a bad reference would otherwise fail every candidate below
            _check_refs(s, host_id=None, operation_id=operation_id, app_id=app_id)
        while True:
            read_at = time.monotonic()
            taken = self.held_addresses() | skip
            for candidate in _pool_addresses(pool):
                if candidate in taken or not self._claim(candidate, read_at):
                    continue
                reserved = False
                try:
                    reserved = self.try_reserve_address(candidate, operation_id=operation_id, app_id=app_id)
                finally:
                    self._unclaim(candidate, reserved)
                if reserved:
                    return candidate
                # another process took it since the read: read again, for what else it took
                # meanwhile too (each round ends with one more address taken: this ends)
                break
            else:
                break
        size = int(pool.last) - int(pool.first) + 1
        raise ConflictError(
            f"the static address pool {pool.first}-{pool.last} is exhausted: all {size} addresses are "
            f"reserved or excluded",
            hint="Widen ip_pool in settings, delete apps you no longer need, or switch ip_mode to dhcp",
        )

    def _claim(self, address: str, read_at: float) -> bool:
        """Whether ``address`` is this caller's to try: no other thread of this process is
        inserting it, nor reserved it after the caller read the held addresses (``read_at``), which
        that read may have missed. Threads that read the held addresses at about the same moment
        would otherwise all try the lowest free one, then the next: 16 threads at once tried 135
        inserts for 16 addresses, 3 stores of 16 tried 1,172 for 48 (``bench/reservations.py``).
        Between processes the table still decides."""
        with self._claiming_lock:
            if address in self._claiming or self._reserved_at.get(address, -math.inf) >= read_at:
                return False
            self._claiming.add(address)
            return True

    def _unclaim(self, address: str, reserved: bool) -> None:
        now = time.monotonic()
        with self._claiming_lock:
            self._claiming.discard(address)
            if reserved:
                self._reserved_at[address] = now
            # no caller reads for a minute: older ones can no longer be missed by a read
            for old in [a for a, at in self._reserved_at.items() if now - at > _CLAIM_MEMORY_S]:
                del self._reserved_at[old]

    def address_reservations(
        self, *, operation_id: str | None = None, app_id: str | None = None
    ) -> list[AddressReservation]:
        query = select(AddressReservationRow).order_by(AddressReservationRow.address)
        if operation_id is not None:
            query = query.where(AddressReservationRow.operation_id == operation_id)
        if app_id is not None:
            query = query.where(AddressReservationRow.app_id == app_id)
        with self._ctx.session() as s:
            return [_address_model(r) for r in s.execute(query).scalars()]

    def attach_address(self, address: str, *, app_id: str) -> None:
        """Record that the app now owns the reserved address."""
        text = _address_text(address)
        with self._ctx.session(immediate=True) as s:
            _check_refs(s, host_id=None, operation_id=None, app_id=app_id)
            stmt = update(AddressReservationRow).where(AddressReservationRow.address == text)
            if _rowcount(s.execute(stmt.values(app_id=app_id))) != 1:
                raise NotFoundError(f"address {text} is not reserved")

    def release_address(self, address: str) -> bool:
        """Give the address back; False when it was not reserved."""
        text = _address_text(address)
        with self._ctx.session() as s:
            stmt = delete(AddressReservationRow).where(AddressReservationRow.address == text)
            return _rowcount(s.execute(stmt)) == 1

    # ---------------------------------------------------------------- rollback

    def release_for_operation(self, operation_id: str) -> tuple[list[int], list[str]]:
        """Release everything an operation reserved that no app has taken over (its rollback).

        Returns the released VMIDs and addresses."""
        with self._ctx.session(immediate=True) as s:
            vmids = s.execute(
                delete(VmidReservationRow)
                .where(VmidReservationRow.operation_id == operation_id, VmidReservationRow.app_id.is_(None))
                .returning(VmidReservationRow.vmid)
            ).scalars()
            released_vmids = sorted(int(v) for v in vmids)
            addresses = s.execute(
                delete(AddressReservationRow)
                .where(
                    AddressReservationRow.operation_id == operation_id,
                    AddressReservationRow.app_id.is_(None),
                )
                .returning(AddressReservationRow.address)
            ).scalars()
            return released_vmids, sorted(addresses)

    def release_for_app(self, app_id: str) -> tuple[list[int], list[str]]:
        """Release the VMIDs and addresses an app holds (on delete). Returns what was released."""
        with self._ctx.session(immediate=True) as s:
            vmids = s.execute(
                delete(VmidReservationRow).where(VmidReservationRow.app_id == app_id).returning(VmidReservationRow.vmid)
            ).scalars()
            released_vmids = sorted(int(v) for v in vmids)
            addresses = s.execute(
                delete(AddressReservationRow)
                .where(AddressReservationRow.app_id == app_id)
                .returning(AddressReservationRow.address)
            ).scalars()
            return released_vmids, sorted(addresses)
