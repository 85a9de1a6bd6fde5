"""VMID and static-address reservations in the store (SQLite and PostgreSQL), including races
between threads, between separate Store instances and between real processes."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from proximity_sdk.errors import ConflictError, NotFoundError, ValidationError
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.settings import Settings, parse_pool
from proximity_sdk.store import Store
from tests.deploy._helpers import add_host, add_operation, reservations
from tests.harness.db import executed

T = TypeVar("T")


def _race(count: int, work: Callable[[int], T]) -> list[T]:
    """Run work(i) in `count` threads released at the same moment; re-raise the first failure."""
    barrier = threading.Barrier(count)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def _url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def test_vmid_reserve_release_and_held(store: Store) -> None:
    repo = reservations(store)
    host = add_host(store)
    other = add_host(store, "pve2")
    op = add_operation(store, host)
    assert repo.reserve_vmid(host, 150, operation_id=op) is True
    assert repo.reserve_vmid(host, 150) is False  # taken: nothing changes
    assert repo.reserve_vmid(other, 150) is True  # VMIDs are per host (cluster)
    app = store.apps.create(host_id=host, hostname="web", status="running", vmid=170, resources=Resources())
    assert repo.held_vmids(host) == {150, 170}  # app VMIDs are held too
    [row] = repo.vmid_reservations(host_id=host)
    assert (row.vmid, row.operation_id, row.app_id) == (150, op, None)

    repo.attach_vmid(host, 150, app_id=app.id)
    assert repo.vmid_reservations(app_id=app.id)[0].vmid == 150
    assert repo.release_vmid(host, 150) is True
    assert repo.release_vmid(host, 150) is False
    assert repo.held_vmids(host) == {170}
    with pytest.raises(NotFoundError, match="not reserved"):
        repo.attach_vmid(host, 150, app_id=app.id)


def test_vmid_reservation_refs_and_range_are_checked(store: Store) -> None:
    repo = reservations(store)
    host = add_host(store)
    with pytest.raises(NotFoundError, match="no host"):
        repo.reserve_vmid("missing-host", 200)
    with pytest.raises(NotFoundError, match="no operation"):
        repo.reserve_vmid(host, 200, operation_id="missing-op")
    with pytest.raises(ValidationError, match="not a Proxmox VMID"):
        repo.reserve_vmid(host, 99)
    assert repo.vmid_reservations() == []


def test_every_referent_is_checked_in_one_select_that_reads_no_row(store: Store) -> None:
    repo = reservations(store)
    host = add_host(store)
    op = add_operation(store, host)
    app = store.apps.create(host_id=host, hostname="web", status="running", resources=Resources())
    with pytest.raises(NotFoundError, match="no app with id 'missing-app'"):
        repo.reserve_vmid(host, 200, operation_id=op, app_id="missing-app")
    with pytest.raises(NotFoundError, match="no operation with id 'missing-op'"):
        repo.try_reserve_address("10.0.0.5", operation_id="missing-op", app_id=app.id)
    assert repo.vmid_reservations() == [] and repo.address_reservations() == []

    with executed(store) as sent:
        assert repo.reserve_vmid(host, 200, operation_id=op, app_id=app.id) is True
    # an operation's row carries its params and an app's its config: the check reads neither
    [probe] = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
    assert "EXISTS" in probe.upper() and "params" not in probe and "config" not in probe
    [row] = repo.vmid_reservations(host_id=host)
    assert (row.vmid, row.operation_id, row.app_id) == (200, op, app.id)


def test_release_for_operation_keeps_what_an_app_took_over(store: Store) -> None:
    repo = reservations(store)
    host = add_host(store)
    op = add_operation(store, host)
    other_op = add_operation(store, host)
    pool = parse_pool("10.1.0.0/28", None)
    app = store.apps.create(host_id=host, hostname="kept", status="running", resources=Resources())
    repo.reserve_vmid(host, 300, operation_id=op)
    repo.reserve_vmid(host, 301, operation_id=op)
    repo.reserve_vmid(host, 302, operation_id=other_op)
    first = repo.reserve_address(pool, operation_id=op)
    second = repo.reserve_address(pool, operation_id=op)
    repo.attach_vmid(host, 301, app_id=app.id)
    repo.attach_address(second, app_id=app.id)

    assert repo.release_for_operation(op) == ([300], [first])
    assert repo.held_vmids(host) == {301, 302}
    assert [a.address for a in repo.address_reservations()] == [second]
    assert repo.release_for_app(app.id) == ([301], [second])
    assert repo.held_vmids(host) == {302}


def test_twenty_threads_racing_for_one_vmid_one_wins(store: Store) -> None:
    repo = reservations(store)
    host = add_host(store)
    wins = _race(20, lambda i: repo.reserve_vmid(host, 500))
    assert wins.count(True) == 1 and wins.count(False) == 19


def test_address_pool_lowest_free_first_release_and_exhaustion(store: Store) -> None:
    settings = Settings(ip_mode="static", ip_pool="10.2.0.0/29", gateway="10.2.0.1")
    pool = settings.pool()
    assert pool is not None
    repo = reservations(store)
    assert settings.gateway is not None
    got = [repo.reserve_address(pool, exclude=[settings.gateway]) for _ in range(5)]
    # /29: hosts .1-.6; .1 is the gateway
    assert got == ["10.2.0.2", "10.2.0.3", "10.2.0.4", "10.2.0.5", "10.2.0.6"]
    with pytest.raises(ConflictError, match=r"10.2.0.1-10.2.0.6 is exhausted: all 6 addresses") as info:
        repo.reserve_address(pool, exclude=[settings.gateway])
    assert "ip_pool" in str(info.value)
    assert repo.release_address("10.2.0.4") is True
    assert repo.release_address("10.2.0.4") is False
    assert repo.reserve_address(pool, exclude=[settings.gateway]) == "10.2.0.4"
    with pytest.raises(ValidationError, match="not an IP address"):
        repo.release_address("not-an-ip")


def test_address_pool_skips_addresses_recorded_for_apps(store: Store) -> None:
    repo = reservations(store)
    host = add_host(store)
    store.apps.create(host_id=host, hostname="old", status="running", address="10.3.0.1", resources=Resources())
    assert repo.reserve_address(parse_pool("10.3.0.0/29", None)) == "10.3.0.2"
    assert repo.try_reserve_address("10.3.0.2") is False


def test_concurrent_address_reservations_are_distinct(store: Store, tmp_path: Path) -> None:
    pool = parse_pool("10.4.0.0/27", None)  # 30 host addresses
    # two Store instances on one database behave like two processes
    second = Store.open(_url(store), data_dir=tmp_path / "data")  # the store fixture's data dir
    try:
        repos = [reservations(store), reservations(second)]
        got = _race(24, lambda i: repos[i % 2].reserve_address(pool))
    finally:
        second.close()
    assert len(set(got)) == 24
    assert sorted(got, key=ipaddress.ip_address) == [f"10.4.0.{i}" for i in range(1, 25)]


def test_threads_of_one_process_reserving_at_once_insert_each_address_once(store: Store) -> None:
    """They read the held addresses at the same moment: each tries an address no sibling is
    trying or took since that read, instead of all trying the lowest free one, then the next."""
    pool = parse_pool("10.5.0.0/26", None)
    with executed(store) as sent:
        got = _race(16, lambda _i: store.reservations.reserve_address(pool))
    inserts = [s for s in sent if s.lstrip().upper().startswith("INSERT INTO ADDRESS_RESERVATIONS")]
    assert sorted(got, key=ipaddress.ip_address) == [f"10.5.0.{i}" for i in range(1, 17)]
    assert len(inserts) == 16
    # what a sibling reserved is not held back from a later caller once released
    assert store.reservations.release_address("10.5.0.3") is True
    assert store.reservations.reserve_address(pool) == "10.5.0.3"


def test_reservations_hold_across_real_processes(store: Store, tmp_path: Path) -> None:
    host = add_host(store)
    script = textwrap.dedent(
        """
        import sys
        from proximity_sdk.models.settings import parse_pool
        from proximity_sdk.store import Store
        from proximity_sdk.store.reservations_repo import ReservationsRepository
        url, data_dir, host = sys.argv[1:4]
        store = Store.open(url, data_dir=data_dir)
        repo = ReservationsRepository(store._ctx)
        pool = parse_pool("10.5.0.0/26", None)
        got = []
        for _ in range(5):
            got.append(repo.reserve_address(pool))
            vmid = 1000
            while not repo.reserve_vmid(host, vmid):
                vmid += 1
            got.append(str(vmid))
        print(" ".join(got))
        store.close()
        """
    )
    data_dir = tmp_path / "data"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, _url(store), str(data_dir), host],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outputs.extend(out.split())
    addresses = [o for o in outputs if "." in o]
    vmids = [int(o) for o in outputs if "." not in o]
    assert len(addresses) == len(set(addresses)) == 20
    assert sorted(vmids) == list(range(1000, 1020))
    assert reservations(store).held_vmids(host) == set(range(1000, 1020))
