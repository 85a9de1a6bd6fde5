"""An operation engine over the test's store (SQLite and PostgreSQL), with the toy kinds registered."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.models.app import App
from proximity_sdk.store import Store
from tests.operations._toys import Blocking, Cancellable, Slotted, Steps


@dataclass
class Toys:
    steps: Steps
    loop: Cancellable
    slotted: Slotted
    blocking: Blocking

    def release_all(self) -> None:
        self.steps.release.set()
        self.blocking.release.set()


@pytest.fixture
def toys() -> Toys:
    return Toys(Steps(), Cancellable(), Slotted(), Blocking())


@pytest.fixture
def engine(store: Store, toys: Toys) -> Iterator[OperationEngine]:
    engine = OperationEngine(store, lease_seconds=2, node_slots=2)
    for kind in (toys.steps, toys.loop, toys.slotted, toys.blocking):
        engine.register(kind)
    try:
        yield engine
    finally:
        toys.release_all()
        engine.close(wait=False)
        engine.drain(timeout=10)  # workers stop at their next checkpoint, before the store closes


@pytest.fixture
def app(store: Store) -> App:
    """An app record (operations reference apps and hosts by foreign key)."""
    store.hosts.add(name="pve1", url="https://pve1:8006", token_id="root@pam!px", token_secret="t")
    return store.apps.create(hostname="git-1", host_id="pve1", vmid=105)
