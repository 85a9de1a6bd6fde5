"""Reconcile: app records follow what Proxmox (fakepve) holds, from one request per host."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.maintenance import AppUsage
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve, serve_pve

MIB = 1024**2


def _app(
    px: Proximity, vmid: int, status: AppStatus = AppStatus.RUNNING, *, node: str = "pve1", host: str = "lab"
) -> App:
    return px.store.apps.create(
        hostname=f"app-{vmid}", host_id=px.hosts.get(host).id, status=status, node=node, vmid=vmid, adopted=True
    )


def _resources_calls(pve: HarnessPve, since: int = 0) -> list[str]:
    return [r.query for r in pve.recorded[since:] if r.path.endswith("/cluster/resources")]


@pytest.fixture
def fleet(lab: Proximity, pve: HarnessPve) -> dict[int, App]:
    """Four containers, each with its app record, all in line with Proxmox to begin with."""
    pve.nodes["pve2"] = {"online": True}
    for vmid, status in ((201, "running"), (202, "running"), (203, "stopped"), (204, "running")):
        pve.add_ct(vmid, f"app-{vmid}", node="pve1", status=status, config={"memory": 1024})
    return {
        vmid: _app(lab, vmid, AppStatus.STOPPED if vmid == 203 else AppStatus.RUNNING) for vmid in (201, 202, 203, 204)
    }


def test_reconcile_follows_status_moves_and_vanished_containers(
    lab: Proximity, pve: HarnessPve, fleet: dict[int, App]
) -> None:
    pve.ct(201).status = "stopped"  # stopped outside Proximity
    pve.ct(202).node = "pve2"  # migrated outside Proximity
    pve.ct(203).status = "running"  # started outside Proximity
    pve.cts.remove(pve.ct(204))  # destroyed outside Proximity
    mark = len(pve.recorded)
    client = lab._clients.get(lab.hosts.get("lab").id)
    sent = client.request_count

    report = lab.maintenance.reconcile()

    assert client.request_count - sent == 1
    assert _resources_calls(pve, mark) == [""]  # every type: the node rows say which statuses hold
    assert len(pve.recorded) - mark == 1
    [host] = report.hosts
    assert (host.reachable, host.requests, host.containers, host.apps, host.updated) == (True, 1, 3, 4, 3)
    apps = {vmid: lab.apps.get(app.id) for vmid, app in fleet.items()}
    assert apps[201].status == AppStatus.STOPPED
    assert (apps[202].status, apps[202].node) == (AppStatus.RUNNING, "pve2")
    assert apps[203].status == AppStatus.RUNNING
    assert apps[204].status == AppStatus.VANISHED  # the record is kept
    assert [c.app_id for c in report.vanished] == [fleet[204].id]
    assert [(c.node_before, c.node_after) for c in report.moved] == [("pve1", "pve2")]
    assert {c.app_id for c in report.changes} == {fleet[v].id for v in (201, 202, 203, 204)}
    usage = AppUsage.of(apps[201])
    assert usage is not None
    assert usage.maxmem == 1024 * MIB
    assert AppUsage.of(apps[204]) is None

    # nothing new: nothing changes
    again = lab.maintenance.reconcile()
    assert again.changes == []

    # the container comes back: so does its app
    pve.add_ct(204, "app-204", node="pve1", status="stopped")
    back = lab.maintenance.reconcile()
    assert [c.app_id for c in back.returned] == [fleet[204].id]
    assert lab.apps.get(fleet[204].id).status == AppStatus.STOPPED


def test_apps_under_an_operation_or_in_error_are_left_alone(
    lab: Proximity, pve: HarnessPve, fleet: dict[int, App]
) -> None:
    for vmid in (201, 202, 203):
        pve.cts.remove(pve.ct(vmid))
    pve.ct(204).node = "pve2"
    lab.store.apps.update(fleet[201].id, status=AppStatus.DEPLOYING)
    lab.store.operations.create("stop", steps=("stop",), app_id=fleet[202].id)  # unfinished, not run here
    lab.store.apps.update(fleet[203].id, status=AppStatus.ERROR)
    lab.store.apps.update(fleet[204].id, status=AppStatus.ERROR)

    report = lab.maintenance.reconcile()

    assert report.hosts[0].skipped_busy == 2
    assert lab.apps.get(fleet[201].id).status == AppStatus.DEPLOYING
    assert lab.apps.get(fleet[202].id).status == AppStatus.RUNNING
    assert lab.apps.get(fleet[203].id).status == AppStatus.ERROR  # gone, but error needs a person
    error_app = lab.apps.get(fleet[204].id)
    assert (error_app.status, error_app.node) == (AppStatus.ERROR, "pve2")  # follows its container
    assert [c.app_id for c in report.changes] == [fleet[204].id]


def test_an_unreachable_host_changes_no_record_and_is_reported(
    lab: Proximity, pve: HarnessPve, pve_ca: str, fleet: dict[int, App]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    lab.hosts.add(
        "gone",
        url=f"https://127.0.0.1:{closed}",
        token_id=TOKEN_ID,
        token_secret=TOKEN_SECRET,
        ca_file=pve_ca,
        check=False,
    )
    lost = _app(lab, 201, host="gone")
    for vmid in (201, 202):  # if the reachable host were mixed up with the other, these would vanish
        pve.cts.remove(pve.ct(vmid))

    pve.flaky_network(drop_rate=1.0)  # the lab host drops every connection too
    before = {a.id: a for a in lab.apps.list()}
    report = lab.maintenance.reconcile()
    assert {h.host: h.reachable for h in report.hosts} == {"lab": False, "gone": False}
    assert {h.host for h in report.unreachable} == {"lab", "gone"}
    assert all(h.error and h.error_kind for h in report.unreachable)
    assert report.changes == []
    assert {a.id: a for a in lab.apps.list()} == before
    assert lab.apps.get(lost.id).status == AppStatus.RUNNING

    pve.flaky_network(drop_rate=0.0)
    report = lab.maintenance.reconcile()
    assert {h.host: h.reachable for h in report.hosts} == {"lab": True, "gone": False}
    assert {c.app_id for c in report.vanished} == {fleet[201].id, fleet[202].id}
    assert lab.apps.get(lost.id).status == AppStatus.RUNNING  # still untouched: its host is still gone


def test_an_offline_node_keeps_its_apps_status(lab: Proximity, pve: HarnessPve, fleet: dict[int, App]) -> None:
    pve.set_node_offline("pve1")
    pve.ct(201).status = "stopped"  # not visible while the node is offline
    report = lab.maintenance.reconcile("lab")
    assert report.hosts[0].unknown == 4
    assert report.changes == []
    assert lab.apps.get(fleet[201].id).status == AppStatus.RUNNING
    pve.set_node_offline("pve1", offline=False)
    lab.maintenance.reconcile("lab")
    assert lab.apps.get(fleet[201].id).status == AppStatus.STOPPED


def test_sync_nodes_reports_every_host(lab: Proximity, pve: HarnessPve) -> None:
    pve.nodes["pve2"] = {"online": True}
    pve.set_node_offline("pve2")
    lab.hosts.add("gone", url="https://127.0.0.1:9", token_id=TOKEN_ID, token_secret=TOKEN_SECRET, check=False)
    report = lab.maintenance.sync_nodes()
    by_host = {h.host: h for h in report.hosts}
    assert (by_host["lab"].ok, by_host["lab"].nodes, by_host["lab"].online) == (True, ["pve1", "pve2"], ["pve1"])
    assert not by_host["gone"].ok and by_host["gone"].error_kind
    assert {n.name: n.status for n in lab.nodes.list("lab")} == {"pve1": "online", "pve2": "offline"}


@pytest.fixture
def px_on(database_url: str, tmp_path: Path, pve: HarnessPve, pve_ca: str) -> Iterator[Proximity]:
    """Proximity on SQLite and on PostgreSQL (no node shell: reconcile needs none)."""
    with Proximity.local(
        database_url=database_url, data_dir=tmp_path / "px-db", secret_key=Fernet.generate_key(), entry_points=False
    ) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca)
        yield px


def test_the_bulk_update_keeps_the_rest_of_the_config_on_every_database(px_on: Proximity, pve: HarnessPve) -> None:
    host_id = px_on.hosts.get("lab").id
    apps = []
    for vmid in range(400, 410):
        pve.add_ct(vmid, f"app-{vmid}", status="running", config={"memory": 768})
        apps.append(
            px_on.store.apps.create(
                hostname=f"app-{vmid}",
                host_id=host_id,
                status=AppStatus.RUNNING,
                node="pve1",
                vmid=vmid,
                config={"compose_text": "services: {}", "main_port": 80},
            )
        )
    pve.ct(400).status = "stopped"
    pve.cts.remove(pve.ct(401))
    report = px_on.maintenance.reconcile()
    assert report.hosts[0].updated == 9
    assert {c.app_id for c in report.changes} == {apps[0].id, apps[1].id}
    for app in apps:
        now = px_on.apps.get(app.id)
        assert now.config["compose_text"] == "services: {}"
        assert now.config["main_port"] == 80
        usage = AppUsage.of(now)
        assert (usage.maxmem if usage else None) == (None if app.vmid == 401 else 768 * MIB)
    first = px_on.apps.get(apps[0].id)
    assert (first.status, px_on.apps.get(apps[1].id).status) == (AppStatus.STOPPED, AppStatus.VANISHED)
    assert first.status_changed_at > apps[0].status_changed_at
    assert px_on.apps.get(apps[2].id).status_changed_at == apps[2].status_changed_at


def test_every_host_is_asked_at_the_same_time(lab: Proximity, pve: HarnessPve, pve_pki: tuple[str, str]) -> None:
    """Each of three hosts answers its ``/cluster/resources`` only once all three have been asked:
    one after another, the first would wait for the others in vain and be reported unreachable."""
    hosts = 3
    together = threading.Barrier(hosts, timeout=15)

    def wait_for_the_others(fake: HarnessPve) -> None:
        recorded = fake._record

        def record(request: Any, body: bytes) -> None:
            recorded(request, body)
            if request.path.endswith("/cluster/resources"):
                together.wait()  # blocks this fake's own loop only: each fake serves on its own thread

        fake._record = record  # type: ignore[method-assign]

    with contextlib.ExitStack() as stack:
        fakes = [pve]
        for i in range(1, hosts):
            fake, _served = stack.enter_context(serve_pve(*pve_pki))
            fakes.append(fake)
            lab.hosts.add(f"lab-{i}", url=fake.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_pki[0])
        for i, fake in enumerate(fakes):
            fake.add_ct(300 + i, f"app-{300 + i}", node="pve1", status="running", config={"memory": 512})
            _app(lab, 300 + i, AppStatus.STOPPED, host="lab" if i == 0 else f"lab-{i}")
            wait_for_the_others(fake)

        report = lab.maintenance.reconcile()

    assert not together.broken
    assert {h.host: h.reachable for h in report.hosts} == {"lab": True, "lab-1": True, "lab-2": True}
    assert all(h.requests == 1 for h in report.hosts)
    assert {c.vmid: c.status_after for c in report.changes} == {300 + i: AppStatus.RUNNING for i in range(hosts)}
