"""In-flight memory of placement: apps being deployed or cloned whose container Proxmox does not list yet."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from proximity_sdk.engine.context import OperationContext
from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.errors import ConflictError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.resources import Resources
from proximity_sdk.operations._capacity import in_flight, place, placing
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow
from tests.harness.pve import HarnessPve

GATE = 10.0


def _until(done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _host(store: Store, name: str = "lab") -> str:
    return store.hosts.add(name=name, url=f"https://{name}:8006", token_id="root@pam!px", token_secret="t").id


def test_in_flight_counts_unborn_apps_not_yet_listed_by_proxmox(store: Store) -> None:
    host = _host(store)
    other = _host(store, "other")
    store.settings.update(default_memory_mb=768)
    store.apps.create(hostname="a", host_id=host, node="pve1", resources=Resources(memory_mb=2048))
    store.apps.create(hostname="b", host_id=host, node="pve1", vmid=201)  # default memory
    store.apps.create(hostname="c", host_id=host, node="pve2", vmid=202, status=AppStatus.CLONING)
    store.apps.create(hostname="d", host_id=host, node="pve2", vmid=203, resources=Resources(memory_mb=4096))
    store.apps.create(hostname="e", host_id=host, node="pve2", vmid=204, status=AppStatus.RUNNING)
    store.apps.create(hostname="f", host_id=host)  # not placed: no node yet
    store.apps.create(hostname="g", host_id=other, node="pve1", resources=Resources(memory_mb=999))
    me = store.apps.create(hostname="h", host_id=host, node="pve2", resources=Resources(memory_mb=512))

    # 203's container is listed (its memory is in /cluster/resources already): not counted twice
    assert in_flight(store, host, {203, 204}) == {"pve1": 2048 + 768, "pve2": 768 + 512}
    # the placement itself is not counted, and the default given is used instead of the settings'
    assert in_flight(store, host, {203}, exclude_app_id=me.id, default_memory_mb=1024) == {
        "pve1": 2048 + 1024,
        "pve2": 1024,
    }


def test_a_deploy_that_ended_after_the_proxmox_read_still_counts(store: Store) -> None:
    """place() reads /cluster/resources before its lock: a deploy that finished in between has a
    container that read does not list and is no longer deploying; changed_since counts it."""
    host = _host(store)
    app = store.apps.create(hostname="a", host_id=host, node="pve1", resources=Resources(memory_mb=4096))
    earlier = store.apps.create(hostname="b", host_id=host, node="pve1", vmid=299, status=AppStatus.RUNNING)
    read_at = utcnow()
    store.apps.update(app.id, status=AppStatus.RUNNING, vmid=300)
    assert in_flight(store, host, set()) == {}  # what the read and the unborn apps alone would say
    assert in_flight(store, host, set(), changed_since=read_at) == {"pve1": 4096}
    assert in_flight(store, host, {300}, changed_since=read_at) == {}  # listed: counted by Proxmox already
    assert earlier.vmid == 299  # running before the read, so its container was in it: not counted


def test_placements_in_one_process_count_the_one_before(
    store: Store, pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    """Two placements one after the other: the second sees the first's memory although its
    container does not exist yet, and picks the other node; a third fits nowhere."""
    host = _host(store)
    pve.add_node("pve2")
    pve.add_ct(100, node="pve2", config={"memory": 1024})  # pve1 is the emptier node at first
    apps = [store.apps.create(hostname=f"app{i}", host_id=host, resources=Resources(memory_mb=5120)) for i in range(3)]

    def one(app_id: str) -> str:
        return place(
            pve_client, store, host_id=host, app_id=app_id, memory_mb=5120, overcommit=1.0, default_memory_mb=512
        ).node

    assert [one(apps[0].id), one(apps[1].id)] == ["pve1", "pve2"]
    assert store.apps.get(apps[1].id).node == "pve2"  # stored under the lock, for the next one
    with pytest.raises(ConflictError, match="no online node has 5120 MiB"):
        one(apps[2].id)  # 8 GiB each at overcommit 1: 3 GiB left on pve1, 2 GiB on pve2
    assert store.apps.get(apps[2].id).node is None


def test_place_reads_proxmox_before_taking_the_lock(store: Store, pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    host = _host(store)
    app = store.apps.create(hostname="a", host_id=host, resources=Resources(memory_mb=1024))
    chosen: list[str] = []
    with placing(host):
        worker = threading.Thread(
            target=lambda: chosen.append(
                place(
                    pve_client,
                    store,
                    host_id=host,
                    app_id=app.id,
                    memory_mb=1024,
                    overcommit=2.0,
                    default_memory_mb=512,
                ).node
            )
        )
        worker.start()
        deadline = time.monotonic() + 10
        while not any(r.path.endswith("/cluster/resources") for r in pve.recorded):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)
        assert worker.is_alive() and not chosen  # read done, waiting for the lock to choose
    worker.join(timeout=10)
    assert chosen == ["pve1"]


def test_a_burst_in_one_process_spreads_past_the_nodes_whose_slots_its_operations_take(
    store: Store, pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    """With one mutation slot per node, a second deploy placed while the first is under way goes
    to the other node, though the first's node still has more free memory: there it would wait
    for the slot. Once the first ends, its node is preferred again by memory."""
    host = _host(store)
    pve.add_node("pve2")
    pve.add_ct(100, node="pve2", config={"memory": 1024})  # pve1 has the most free memory throughout
    apps = [store.apps.create(hostname=f"app{i}", host_id=host, resources=Resources(memory_mb=512)) for i in range(3)]
    engine = OperationEngine(store, lease_seconds=2, node_slots=1)
    placed: dict[str, str] = {}
    go_on = threading.Event()

    class Places(OperationKind):
        name = "places"
        steps = ("place", "hold")

        def run(self, ctx: OperationContext) -> dict[str, Any]:
            with ctx.step("place"):
                app_id = str(ctx.operation.app_id)
                placed[app_id] = place(
                    pve_client,
                    store,
                    host_id=host,
                    app_id=app_id,
                    memory_mb=512,
                    overcommit=1.0,
                    default_memory_mb=512,
                    load=ctx,
                ).reason
            with ctx.step("hold"):
                assert go_on.wait(GATE)
            return {}

    engine.register(Places())
    try:
        first = engine.submit("places", app_id=apps[0].id)
        _until(lambda: apps[0].id in placed)
        second = engine.submit("places", app_id=apps[1].id)
        _until(lambda: apps[1].id in placed)
        assert store.apps.get(apps[0].id).node == "pve1"
        assert store.apps.get(apps[1].id).node == "pve2"
        assert "passed over: pve1, where every slot is taken" in placed[apps[1].id]
        go_on.set()
        first.wait(timeout=10)
        second.wait(timeout=10)
        # both ended: nothing of this process is headed anywhere, so memory alone decides again
        third = engine.submit("places", app_id=apps[2].id)
        third.wait(timeout=10)
        assert store.apps.get(apps[2].id).node == "pve1"
        assert "passed over" not in placed[apps[2].id]
    finally:
        go_on.set()
        engine.close(wait=False)
        engine.drain(timeout=10)
