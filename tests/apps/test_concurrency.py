"""Many deploys at once on one node: all succeed, no VMID or address is handed out twice."""

from __future__ import annotations

from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationFailed
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.resources import Resources
from tests.harness.pve import HarnessPve


def test_twenty_concurrent_deploys_on_one_node(lab: Proximity, pve: HarnessPve) -> None:
    # the node has 8 GiB: 20 x 1 GiB fits with an overcommit of 3 (24 GiB), not with the default 2
    lab.settings.update(
        ip_mode="static", ip_pool="10.30.0.0/24", gateway="10.30.0.1", health_timeout_seconds=5, memory_overcommit=3.0
    )
    handles = [lab.apps.deploy("gitea", hostname=f"git-{i}", resources=Resources(memory_mb=1024)) for i in range(20)]
    apps = [h.wait(timeout=240) for h in handles]

    assert all(a.status == AppStatus.RUNNING for a in apps)
    vmids = [a.vmid for a in apps]
    addresses = [a.address for a in apps]
    assert len(set(vmids)) == 20
    assert len(set(addresses)) == 20
    assert "10.30.0.1" not in addresses  # the gateway is never handed out
    # Proxmox holds exactly these containers, each with the address its record says
    assert sorted(ct.vmid for ct in pve.cts) == sorted(vmids)
    for app in apps:
        net0 = pve.ct(app.vmid).config["net0"]
        assert f"ip={app.address}/24" in net0
        assert "gw=10.30.0.1" in net0
    host_id = apps[0].host_id
    assert lab.store.reservations.held_vmids(host_id) == set(vmids)
    assert lab.store.reservations.held_addresses() == set(addresses)


def test_concurrent_placements_never_promise_more_than_the_node_has(lab: Proximity, pve: HarnessPve) -> None:
    """8 GiB x 2 = 16 GiB: of 20 deploys of 1 GiB started at once, exactly 16 fit; the others are refused."""
    handles = [lab.apps.deploy("gitea", hostname=f"git-{i}", resources=Resources(memory_mb=1024)) for i in range(20)]
    ok, refused = [], []
    for handle in handles:
        try:
            ok.append(handle.wait(timeout=240))
        except OperationFailed as exc:
            refused.append(exc)
    assert [exc.step for exc in refused] == ["place"] * 4
    assert len(ok) == 16
    assert len(pve.cts) == 16
