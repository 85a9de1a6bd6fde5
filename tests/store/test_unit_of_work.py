"""The store's unit of work: the store calls of one thread inside ``Store.unit()`` are one
transaction, whichever repositories make them."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from proximity_sdk.errors import AlreadyExistsError, NotFoundError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.operation import OperationStatus
from proximity_sdk.store import Store
from proximity_sdk.store._common import UnitOfWorkFailed


@pytest.fixture
def app_id(store: Store) -> str:
    store.hosts.add(name="pve1", url="https://pve1:8006", token_id="root@pam!px", token_secret="t1")
    return store.apps.create(hostname="git-1", host_id="pve1").id


def _running(store: Store, app_id: str) -> str:
    op = store.operations.create("deploy", steps=("a",), app_id=app_id)
    assert store.operations.claim(op.id, "me", timedelta(seconds=60))
    return op.id


def test_a_unit_commits_every_call_at_its_end_and_each_call_sees_the_ones_before(store: Store, app_id: str) -> None:
    op_id = _running(store, app_id)
    seen_outside: list[object] = []
    with store.unit():
        store.apps.patch(app_id, vmid=150)
        store.operations.set_side_effects(op_id, "me", [{"kind": "vmid", "vmid": 150}])
        store.operations.append_event(op_id, "VMID 150 reserved")
        assert store.apps.get(app_id).vmid == 150  # read inside: the unit's own writes
        assert store.operations.side_effects(op_id) == [{"kind": "vmid", "vmid": 150}]
        if store.dialect == "postgresql":  # another connection reads what was committed (SQLite: locked)
            thread = threading.Thread(target=lambda: seen_outside.append(store.apps.get(app_id).vmid))
            thread.start()
            thread.join()
            assert seen_outside == [None], "nothing is visible before the unit ends"
    assert store.apps.get(app_id).vmid == 150
    assert store.operations.side_effects(op_id) == [{"kind": "vmid", "vmid": 150}]
    assert [e.message for e in store.operations.events(op_id)] == ["VMID 150 reserved"]


def test_a_unit_that_raises_writes_nothing(store: Store, app_id: str) -> None:
    op_id = _running(store, app_id)

    def work() -> None:
        with store.unit():
            store.operations.set_side_effects(op_id, "me", [{"kind": "container", "vmid": 150}])
            store.apps.patch(app_id, status=AppStatus.RUNNING)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        work()
    assert store.operations.side_effects(op_id) == []
    assert store.apps.get(app_id).status is AppStatus.DEPLOYING


def test_a_call_that_failed_inside_a_unit_fails_the_whole_unit_even_when_caught(store: Store, app_id: str) -> None:
    store.apps.create(hostname="git-2", host_id="pve1", vmid=200)

    def work() -> None:
        with store.unit():
            store.apps.patch(app_id, address="10.0.0.5")
            with pytest.raises(AlreadyExistsError):
                store.apps.patch(app_id, vmid=200)

    with pytest.raises(UnitOfWorkFailed):
        work()
    assert store.apps.get(app_id).address is None, "what came before the failed call is not committed"


def test_a_unit_inside_a_unit_is_the_outer_one(store: Store, app_id: str) -> None:

    def work() -> None:
        with store.unit():
            with store.unit():
                store.apps.patch(app_id, node="n1")
            assert store.apps.get(app_id).node == "n1"
            store.apps.patch("missing", node="n1")

    with pytest.raises(NotFoundError):
        work()
    assert store.apps.get(app_id).node is None


def test_another_thread_is_not_in_the_unit(store: Store, app_id: str) -> None:
    op_id = _running(store, app_id)
    done = threading.Event()

    def other() -> None:  # waits for the unit's lock (SQLite) or row lock (PostgreSQL), then writes its own
        store.operations.append_event(op_id, "from another thread")
        done.set()

    thread = threading.Thread(target=other)

    def work() -> None:
        with store.unit():
            store.operations.append_event(op_id, "in the unit")
            thread.start()
            assert not done.wait(0.3), "the other thread's write waits for the unit"
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        work()
    thread.join(10)
    assert [e.message for e in store.operations.events(op_id)] == ["from another thread"]
    assert store.operations.get(op_id).status is OperationStatus.RUNNING


def test_after_commit_calls_at_once_outside_a_unit_and_inside_one_only_once_it_committed(
    store: Store, app_id: str
) -> None:
    seen: list[tuple[str, AppStatus]] = []

    def status_from_another_thread(label: str) -> None:
        # another thread, so another transaction: it reads only what is committed
        found: list[AppStatus] = []
        reader = threading.Thread(target=lambda: found.append(store.apps.get(app_id).status))
        reader.start()
        reader.join(20)
        seen.append((label, found[0]))

    store.after_commit(lambda: seen.append(("outside", store.apps.get(app_id).status)))
    assert seen == [("outside", AppStatus.DEPLOYING)]
    with store.unit():
        store.apps.patch(app_id, status=AppStatus.RUNNING)
        store.after_commit(lambda: status_from_another_thread("first"))
        store.after_commit(lambda: seen.append(("second", store.apps.get(app_id).status)))
        assert len(seen) == 1  # not yet
    assert seen[1:] == [("first", AppStatus.RUNNING), ("second", AppStatus.RUNNING)]

    def rolled_back() -> None:
        with store.unit():
            store.apps.patch(app_id, status=AppStatus.ERROR)
            store.after_commit(lambda: seen.append(("rolled back", AppStatus.ERROR)))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        rolled_back()
    assert len(seen) == 3 and store.apps.get(app_id).status == AppStatus.RUNNING
