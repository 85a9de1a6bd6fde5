"""What /cluster/resources and /cluster/status say when Proxmox cannot know (pve-manager
PVE::API2Tools extract_*_stats, API2/Cluster.pm get_status) and how reconcile, placement and task
waits take it (docs/fidelity.md, "Unknown and quorum")."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.errors import ConflictError
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.proxmox import ClusterResource
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.placement import choose_node, cluster_quorate, node_capacities, pick_node
from proximity_sdk.proxmox.tasks import wait_task
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve

GIB = 1024**3


@pytest.fixture
def lab(tmp_path: Path, pve: HarnessPve, pve_ca: str) -> Iterator[Proximity]:
    pve.add_node("pve2")
    with Proximity.local(data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca)
        yield px


def _app(px: Proximity, vmid: int, status: AppStatus, node: str = "pve1") -> App:
    return px.store.apps.create(
        hostname=f"app-{vmid}", host_id=px.hosts.get("lab").id, status=status, node=node, vmid=vmid, adopted=True
    )


# ------------------------------------------------------------------- the sandbox


def test_a_departed_nodes_guests_stay_listed_with_their_last_status(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # extract_vm_stats: the status is the RRD entry's; a node that left broadcasts no new one
    pve.add_node("pve2")
    pve.add_ct(300, node="pve2", status="running")
    pve.set_node_offline("pve2")
    pve.ct(300).status = "stopped"  # whatever happened there, nobody hears of it
    rows = {r.id: r for r in pve_client.cluster_resources()}
    assert rows["node/pve2"].status == "offline"
    assert rows["lxc/300"].status == "running"  # fakepve said "unknown"
    pve.set_node_offline("pve2", offline=False)
    assert {r.id: r for r in pve_client.cluster_resources()}["lxc/300"].status == "stopped"


def test_a_guest_without_an_rrd_entry_is_unknown(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    pve.add_ct(301, status="running")
    pve.status_unknown.add(301)
    [row] = [r for r in pve_client.cluster_resources(kind="vm") if r.vmid == 301]
    assert row.status == "unknown"
    assert pve_client.lxc_status("pve1", 301).status == "running"  # status/current asks LXC itself


def test_an_inactive_storage_is_unknown_and_a_disabled_one_is_absent(
    pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    # extract_storage_stats: no RRD entry -> "unknown"; resources skips !storage_check_enabled
    pve.storages["local-lvm"]["active"] = 0
    pve.storages["local"]["disable"] = 1
    rows = {r.storage: r for r in pve_client.cluster_resources(kind="storage")}
    assert rows["local-lvm"].status == "unknown"
    assert "local" not in rows


# ------------------------------------------------------------------- reconcile


def test_reconcile_takes_no_status_from_an_unknown_row(lab: Proximity, pve: HarnessPve) -> None:
    pve.add_ct(310, status="stopped")
    app = _app(lab, 310, AppStatus.RUNNING)
    pve.status_unknown.add(310)
    report = lab.maintenance.reconcile()
    assert report.hosts[0].unknown == 1
    assert lab.apps.get(app.id).status == AppStatus.RUNNING
    pve.status_unknown.clear()
    lab.maintenance.reconcile()
    assert lab.apps.get(app.id).status == AppStatus.STOPPED


def test_reconcile_takes_no_status_from_a_departed_nodes_guest(lab: Proximity, pve: HarnessPve) -> None:
    # was: the stale "running" of a node that left made a stopped app running
    pve.add_ct(311, node="pve2", status="running")
    app = _app(lab, 311, AppStatus.STOPPED, node="pve2")
    pve.set_node_offline("pve2")
    report = lab.maintenance.reconcile()
    assert report.hosts[0].unknown == 1
    assert lab.apps.get(app.id).status == AppStatus.STOPPED


# ------------------------------------------------------------------- placement


def test_no_placement_without_quorum(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # get_status: quorum loss shows only as quorate 0 on the cluster row
    assert cluster_quorate(pve_client) is True
    pve.lose_quorum()
    assert cluster_quorate(pve_client) is False
    with pytest.raises(ConflictError, match="no quorum"):
        pick_node(pve_client, memory_mb=512, overcommit=2.0)
    pve.regain_quorum()
    assert pick_node(pve_client, memory_mb=512, overcommit=2.0).node == "pve1"


def test_quorum_cannot_be_read_without_sys_audit_on_root(pve: HarnessPve, pve_ca: str) -> None:
    pve.add_token("px@pve!quorum", "s3cret", {"/vms": ["VM.Audit"]})
    with ProxmoxClient(url=pve.url, token_id="px@pve!quorum", token_secret="s3cret", ca_file=pve_ca) as client:
        assert cluster_quorate(client) is None


def test_a_node_whose_status_is_unknown_is_never_chosen() -> None:
    # extract_node_stats: "unknown" without an RRD entry, "offline" when the cluster lost it
    rows = [
        ClusterResource(id=f"node/{name}", type="node", node=name, status=status, maxmem=8 * GIB)
        for name, status in (("a", "unknown"), ("b", "offline"), ("c", "online"))
    ]
    capacities = node_capacities(rows, overcommit=1.0)
    assert choose_node(capacities, memory_mb=512).node == "c"
    with pytest.raises(ConflictError, match="node 'a' is unknown"):
        choose_node(capacities, memory_mb=512, node="a")


# ------------------------------------------------------------------- task waits


def test_a_wait_outlasts_a_node_that_stops_answering(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # was: the first 595 ended the wait although the task went on to "TASK OK"
    pve.add_ct(320)
    upid = str(pve_client.post("/nodes/pve1/lxc/320/status/start"))
    pve.set_node_offline("pve1")
    timer = threading.Timer(0.6, pve.set_node_offline, args=("pve1",), kwargs={"offline": False})
    timer.start()
    try:
        result = wait_task(pve_client, upid, timeout=30)
    finally:
        timer.cancel()
    assert result.exitstatus == "OK" and result.polls > 1


def test_reconcile_right_after_a_start_keeps_the_record_until_the_status_is_broadcast(
    lab: Proximity, pve: HarnessPve
) -> None:
    # extract_vm_stats: "unknown" until pvestatd broadcasts the started container
    pve.rrd_lag = 1
    pve.add_ct(330, status="stopped")
    app = _app(lab, 330, AppStatus.STOPPED)
    client = lab._clients.get(lab.hosts.get("lab").id)
    wait_task(client, str(client.post("/nodes/pve1/lxc/330/status/start")))
    assert lab.maintenance.reconcile().hosts[0].unknown == 1
    assert lab.apps.get(app.id).status == AppStatus.STOPPED  # not "vanished", not a guess
    lab.maintenance.reconcile()
    assert lab.apps.get(app.id).status == AppStatus.RUNNING
