"""VMID allocation against fakepve (over HTTPS) and the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from proximity_sdk.errors import AlreadyExistsError, ConflictError, ValidationError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.containers import ContainerSpec
from proximity_sdk.proxmox.vmids import VmidAllocator, create_with_vmid_retry
from proximity_sdk.store import Store
from tests.deploy._helpers import add_host, add_operation, put_template, reservations
from tests.harness.pve import HarnessPve


def _spec(vmid: int, volid: str, hostname: str) -> ContainerSpec:
    return ContainerSpec(vmid=vmid, hostname=hostname, ostemplate=volid, memory_mb=256, disk_gb=2)


def test_twenty_concurrent_allocate_and_create_all_succeed_with_distinct_vmids(
    pve: HarnessPve, pve_client: ProxmoxClient, store: Store
) -> None:
    volid = put_template(pve)
    repo = reservations(store)
    host = add_host(store)
    pve.add_ct(100, name="existing")
    count = 20
    foreign = 5
    barrier = threading.Barrier(count + foreign)
    created: dict[int, int] = {}
    errors: list[BaseException] = []
    foreign_outcomes: list[str] = []
    moves: list[tuple[int, int]] = []

    def ours(i: int) -> None:
        try:
            # no process lock: threads race through the table exactly as separate processes would
            allocator = VmidAllocator(pve_client, repo, host_id=host, process_lock=False)
            barrier.wait()
            vmid = allocator.reserve()
            spec, _result = create_with_vmid_retry(
                pve_client,
                "pve1",
                _spec(vmid, volid, f"app-{i}"),
                allocator=allocator,
                attempts=10,
                on_vmid_change=lambda old, new: moves.append((old, new)),
            )
            created[i] = spec.vmid
        except BaseException as exc:
            errors.append(exc)

    def outsider(i: int) -> None:
        # another tool on the same cluster doing the naive nextid + create, with no reservation
        barrier.wait()
        try:
            vmid = pve_client.next_vmid()
            pve_client.post("/nodes/pve1/lxc", vmid=vmid, ostemplate=volid, hostname=f"other-{i}", rootfs="local-lvm:1")
            foreign_outcomes.append("created")
        except AlreadyExistsError:
            foreign_outcomes.append("collided")

    threads = [threading.Thread(target=ours, args=(i,)) for i in range(count)]
    threads += [threading.Thread(target=outsider, args=(i,)) for i in range(foreign)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]
    vmids = sorted(created.values())
    assert len(vmids) == count and len(set(vmids)) == count
    assert 100 not in vmids
    for i, vmid in created.items():
        ct = pve.ct(vmid)
        assert ct is not None and ct.config["hostname"] == f"app-{i}"
    # the table holds exactly the ids our containers got (collided ones were released)
    assert {r.vmid for r in repo.vmid_reservations(host_id=host)} == set(vmids)
    assert len(foreign_outcomes) == foreign
    # ours only ever moved off an id an outsider really holds (a thread whose view of the cluster
    # predates the outsider's create may pick a released id again, and moves on again)
    for old, _new in moves:
        holder = pve.ct(old)
        assert holder is not None and holder.config["hostname"].startswith("other-")


def test_collision_at_create_moves_to_the_next_id_and_records_the_change(
    pve: HarnessPve, pve_client: ProxmoxClient, store: Store
) -> None:
    volid = put_template(pve)
    repo = reservations(store)
    host = add_host(store)
    op = add_operation(store, host)
    allocator = VmidAllocator(pve_client, repo, host_id=host)
    vmid = allocator.reserve(operation_id=op)
    assert vmid == 100
    pve.add_ct(100, name="sneaky")  # created outside Proximity after we reserved
    pve.add_ct(101, name="sneaky-2")
    changes: list[tuple[int, int]] = []
    events: list[tuple[str, str]] = []
    spec, result = create_with_vmid_retry(
        pve_client,
        "pve1",
        _spec(vmid, volid, "web"),
        allocator=allocator,
        operation_id=op,
        emit=lambda message, level="info": events.append((level, message)),
        on_vmid_change=lambda old, new: changes.append((old, new)),
    )
    assert spec.vmid == 102
    assert result.upid.type == "vzcreate" and result.upid.vmid == 102
    assert changes == [(100, 102)]
    assert ("warning", "VMID 100 was taken outside Proximity meanwhile; using 102") in events
    assert [(r.vmid, r.operation_id) for r in repo.vmid_reservations(host_id=host)] == [(102, op)]
    ct = pve.ct(102)
    assert ct is not None and ct.config["hostname"] == "web"
    sneaky = pve.ct(100)
    assert sneaky is not None and sneaky.config["hostname"] == "sneaky"


def test_collisions_beyond_the_attempts_raise_already_exists(
    pve: HarnessPve, pve_client: ProxmoxClient, store: Store
) -> None:
    volid = put_template(pve)
    repo = reservations(store)
    host = add_host(store)
    allocator = VmidAllocator(pve_client, repo, host_id=host)
    vmid = allocator.reserve()
    pve.add_ct(vmid)
    with pytest.raises(AlreadyExistsError, match=f"CT {vmid} already exists"):
        create_with_vmid_retry(pve_client, "pve1", _spec(vmid, volid, "web"), allocator=allocator, attempts=1)
    with pytest.raises(ValidationError, match="attempts"):
        create_with_vmid_retry(pve_client, "pve1", _spec(vmid, volid, "web"), allocator=allocator, attempts=0)


def test_configured_range_skips_used_and_reserved_ids_and_reports_exhaustion(
    pve: HarnessPve, pve_client: ProxmoxClient, store: Store
) -> None:
    repo = reservations(store)
    host = add_host(store)
    pve.add_ct(5000)
    repo.reserve_vmid(host, 5002)
    allocator = VmidAllocator(pve_client, repo, host_id=host, vmid_min=5000, vmid_max=5003)
    assert allocator.reserve() == 5001
    assert allocator.reserve() == 5003
    with pytest.raises(ConflictError, match=r"no free VMID in 5000\.\.5003"):
        allocator.reserve()
    assert allocator.release(5001) is True
    assert allocator.reserve() == 5001
    # the configured range never asks /cluster/nextid
    assert not any(r.path.endswith("/cluster/nextid") for r in pve.recorded)
    with pytest.raises(ValidationError, match="vmid_min"):
        VmidAllocator(pve_client, repo, host_id=host, vmid_min=300, vmid_max=200)


def _nextid_held_and_103_used(pve: HarnessPve, pve_client: ProxmoxClient, store: Store) -> VmidAllocator:
    """100, 101 and 103 on the cluster, 102 held in the table: nextid says 102."""
    repo = reservations(store)
    host = add_host(store)
    for vmid in (100, 101, 103):
        pve.add_ct(vmid)
    repo.reserve_vmid(host, 102)
    return VmidAllocator(pve_client, repo, host_id=host)


def test_without_a_range_candidates_start_at_nextid(pve: HarnessPve, pve_client: ProxmoxClient, store: Store) -> None:
    allocator = _nextid_held_and_103_used(pve, pve_client, store)
    # nextid says 102 (free in Proxmox) but the table holds it; 103 is used on the cluster
    got: list[Any] = [allocator.reserve(), allocator.reserve()]
    assert got == [104, 105]


def test_reserve_reads_proxmox_before_taking_the_process_lock(
    pve: HarnessPve, pve_client: ProxmoxClient, store: Store
) -> None:
    """The lock only keeps this process's threads from racing each other through the table; its
    Proxmox reads need no lock (ids in use by Proximity are in the table, and a create that meets
    one made outside it since moves on), so a slow read never queues the other deploys."""
    repo = reservations(store)
    host = add_host(store)
    pve.add_ct(100)
    allocator = VmidAllocator(pve_client, repo, host_id=host)
    got: list[int] = []
    with VmidAllocator._locks[host]:
        worker = threading.Thread(target=lambda: got.append(allocator.reserve()))
        worker.start()
        deadline = time.monotonic() + 10
        while not any(r.path.endswith("/cluster/nextid") for r in pve.recorded):
            assert time.monotonic() < deadline, "the reads waited for the lock"
            time.sleep(0.01)
        assert any(r.path.endswith("/cluster/resources") for r in pve.recorded)
        time.sleep(0.1)
        assert worker.is_alive() and not got  # read done, waiting for the lock to reserve
    worker.join(timeout=10)
    assert got == [101]
    assert repo.held_vmids(host) == {101}


def test_reserve_skips_the_vmids_the_caller_listed_without_reading_them_again(
    pve: HarnessPve, pve_client: ProxmoxClient, store: Store
) -> None:
    """A deploy hands over the guests its placement just listed: the allocation then asks
    Proxmox only for nextid, and skips what that listing showed (103 here, which nextid does
    not mention)."""
    allocator = _nextid_held_and_103_used(pve, pve_client, store)
    mark = len(pve.recorded)
    assert allocator.reserve(in_use={100, 101, 103}) == 104
    paths = [r.path for r in pve.recorded[mark:]]
    assert paths == ["/api2/json/cluster/nextid"]
    # an empty listing is a listing too (a cluster with no guests yet): nothing read again, and
    # only the table is skipped (103 is not in it: its create would collide, and move on)
    assert allocator.reserve(in_use=()) == 103
    assert not any(r.path.endswith("/cluster/resources") for r in pve.recorded[mark:])
