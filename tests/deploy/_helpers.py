"""Shared bits of the deploy building-block tests."""

from __future__ import annotations

from proximity_sdk.store import Store
from proximity_sdk.store.reservations_repo import ReservationsRepository
from proximity_sdk.store.tables import OperationRow
from tests.harness.pve import HarnessPve

__all__ = ["TEMPLATE", "TEMPLATE_VOLID", "add_host", "add_operation", "put_template", "reservations"]

TEMPLATE = "debian-12-standard_12.7-1_amd64.tar.zst"
TEMPLATE_VOLID = f"local:vztmpl/{TEMPLATE}"


def add_host(store: Store, name: str = "pve1") -> str:
    host = store.hosts.add(name=name, url="https://127.0.0.1:8006", token_id="root@pam!px", token_secret="not-used")
    return host.id


def add_operation(store: Store, host_id: str, kind: str = "deploy") -> str:
    """An operation row, so reservations can reference a real operation (the engine writes these)."""
    with store.session() as s:
        row = OperationRow(kind=kind, host_id=host_id, status="running", steps=[], params={})
        s.add(row)
        s.flush()
        return row.id


def reservations(store: Store) -> ReservationsRepository:
    return ReservationsRepository(store._ctx)


def put_template(pve: HarnessPve, name: str = TEMPLATE, storage: str = "local") -> str:
    pve.store_file(storage, name, 128 * 1024**2, content="vztmpl")
    return f"{storage}:vztmpl/{name}"
