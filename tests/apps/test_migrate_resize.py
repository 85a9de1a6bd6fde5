"""Migrate and resize through fakepve and the real sshd: the container's real state checked after each."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import ConflictError, OperationFailed, ValidationError
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.resources import Resources
from tests.harness.pve import HarnessPve


def _marks(op_events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.message.split(":")[0] for e in op_events if e.message.endswith(": started")]


def _sent(pve: HarnessPve, method: str, suffix: str) -> list[dict[str, list[str]]]:
    """The form bodies of the requests sent with ``method`` to a path ending in ``suffix``."""
    return [parse_qs(r.body.decode()) for r in pve.recorded if r.method == method and r.path.endswith(suffix)]


def _deploy(px: Proximity, hostname: str = "git-1") -> App:
    app = px.apps.deploy("gitea", hostname=hostname).wait(timeout=60)
    assert isinstance(app, App) and app.vmid is not None
    return app


# migrate ------------------------------------------------------------------------------------------


def test_migrate_a_running_app_restarts_it_on_the_target(lab: Proximity, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    app = _deploy(lab)
    op = lab.apps.migrate(app.id, node="pve2")
    moved = op.wait(timeout=60)

    assert _marks(list(op.events())) == ["check", "migrate", "address", "health"]
    assert (moved.node, moved.status, moved.vmid) == ("pve2", AppStatus.RUNNING, app.vmid)
    assert app.vmid is not None and moved.address == pve.lease_for(app.vmid)
    assert moved.url == f"http://{moved.address}:3000"
    ct = pve.ct(app.vmid)
    assert (ct.node, ct.status) == ("pve2", "running")
    [body] = _sent(pve, "POST", f"/nodes/pve1/lxc/{app.vmid}/migrate")
    assert body["target"] == ["pve2"] and body["restart"] == ["1"] and body["timeout"] == ["180"]
    # the app goes on from there: the next operations go to the new node
    assert lab.apps.restart(app.id).wait(timeout=30).status == AppStatus.RUNNING
    assert any(r.path == f"/api2/json/nodes/pve2/lxc/{app.vmid}/status/start" for r in pve.recorded)


def test_migrate_a_stopped_app_moves_it_plainly(lab: Proximity, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    app = _deploy(lab)
    lab.apps.stop(app.id).wait(timeout=30)
    op = lab.apps.migrate(app.id, node="pve2")
    moved = op.wait(timeout=60)

    assert _marks(list(op.events())) == ["check", "migrate"]
    assert (moved.node, moved.status) == ("pve2", AppStatus.STOPPED)
    assert (pve.ct(app.vmid).node, pve.ct(app.vmid).status) == ("pve2", "stopped")
    [body] = _sent(pve, "POST", f"/nodes/pve1/lxc/{app.vmid}/migrate")
    assert body == {"target": ["pve2"]}
    assert lab.apps.start(app.id).wait(timeout=30).status == AppStatus.RUNNING
    assert pve.ct(app.vmid).status == "running"


def test_migrate_is_refused_without_room_or_with_a_bad_target(lab: Proximity, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    pve.add_ct(900, node="pve2", config={"memory": 15000})  # 16384 MiB of capacity, 1384 left
    app = _deploy(lab)
    pve.recorded.clear()
    with pytest.raises(ValidationError):
        lab.apps.migrate(app.id, node="bad node")
    with pytest.raises(ValidationError, match="on node pve1 already"):
        lab.apps.migrate(app.id, node="pve1")
    with pytest.raises(ValidationError):
        lab.apps.migrate(app.id, node="pve2", shutdown_timeout=0)
    assert pve.recorded == []
    with pytest.raises(ValidationError, match="not in the cluster"):
        lab.apps.migrate(app.id, node="pve7")
    with pytest.raises(ConflictError, match="cannot take 2048 MiB"):
        lab.apps.migrate(app.id, node="pve2")
    pve.set_node_offline("pve2")
    with pytest.raises(ConflictError, match="offline"):
        lab.apps.migrate(app.id, node="pve2")
    assert {r.method for r in pve.recorded} == {"GET"}
    assert [o.kind for o in lab.operations.list()] == ["deploy"]
    assert pve.ct(app.vmid).node == "pve1"


def test_a_failed_migration_leaves_the_record_where_the_container_is(lab: Proximity, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    app = _deploy(lab)
    pve.fail("POST", f"/lxc/{app.vmid}/migrate", error="migration_aborted")
    op = lab.apps.migrate(app.id, node="pve2")
    with pytest.raises(OperationFailed) as failure:
        op.wait(timeout=60)
    assert failure.value.step == "migrate"
    assert "migration aborted" in str(failure.value)
    after = lab.apps.get(app.id)
    assert (after.node, after.status) == ("pve1", AppStatus.RUNNING)
    assert pve.ct(app.vmid).node == "pve1"


def test_migrate_finishes_when_the_container_is_on_the_target_already(lab: Proximity, pve: HarnessPve) -> None:
    # what a takeover finds when the previous runner died after Proxmox moved the container
    pve.add_node("pve2")
    app = _deploy(lab)
    pve.ct(app.vmid).node = "pve2"
    pve.recorded.clear()
    op = lab.apps.migrate(app.id, node="pve2")
    moved = op.wait(timeout=60)
    assert (moved.node, moved.status) == ("pve2", AppStatus.RUNNING)
    assert f"CT {app.vmid} is on node pve2 already" in [e.message for e in op.events()]
    assert _sent(pve, "POST", "/migrate") == []


# resize -------------------------------------------------------------------------------------------


def test_resize_a_running_app_live(lab: Proximity, pve: HarnessPve) -> None:
    app = _deploy(lab)
    assert app.resources == Resources(cores=2, memory_mb=2048, swap_mb=512, disk_gb=8)
    op = lab.apps.resize(app.id, resources=Resources(cores=4, memory_mb=4096, swap_mb=1024, disk_gb=16))
    resized = op.wait(timeout=60)

    assert _marks(list(op.events())) == ["check", "config", "disk"]
    assert resized.resources == Resources(cores=4, memory_mb=4096, swap_mb=1024, disk_gb=16)
    assert resized.status == AppStatus.RUNNING
    ct = pve.ct(app.vmid)
    assert ct.status == "running"
    assert (ct.config["cores"], ct.config["memory"], ct.config["swap"]) == (4, 4096, 1024)
    assert ct.pending == {}  # taken live, nothing waits for a restart
    assert ct.config["rootfs"].endswith("size=16G")
    [resize] = _sent(pve, "PUT", f"/lxc/{app.vmid}/resize")
    assert (resize["disk"], resize["size"]) == (["rootfs"], ["16G"])


def test_resize_only_what_is_given_and_again_changes_nothing(lab: Proximity, pve: HarnessPve) -> None:
    app = _deploy(lab)
    lab.apps.stop(app.id).wait(timeout=30)
    first = lab.apps.resize(app.id, resources=Resources(memory_mb=3072)).wait(timeout=60)
    assert first.resources == Resources(cores=2, memory_mb=3072, swap_mb=512, disk_gb=8)
    assert first.status == AppStatus.STOPPED
    assert pve.ct(app.vmid).config["memory"] == 3072
    assert pve.ct(app.vmid).config["rootfs"].endswith("size=8G")

    pve.recorded.clear()
    op = lab.apps.resize(app.id, resources=Resources(memory_mb=3072, disk_gb=8))
    assert op.wait(timeout=60).resources == first.resources
    messages = [e.message for e in op.events()]
    assert "cores, memory and swap are as asked already" in messages
    assert f"rootfs of CT {app.vmid} already has 8 GiB" in messages
    assert {r.method for r in pve.recorded} == {"GET"}


def test_resize_refuses_a_smaller_disk_and_too_much_memory(lab: Proximity, pve: HarnessPve) -> None:
    app = _deploy(lab)
    pve.recorded.clear()
    with pytest.raises(ValidationError, match="disks only grow"):
        lab.apps.resize(app.id, resources=Resources(disk_gb=4))
    with pytest.raises(ValidationError, match="nothing to resize"):
        lab.apps.resize(app.id, resources=Resources())
    with pytest.raises(ValidationError):
        lab.apps.resize(app.id, resources={"cores": 2})  # type: ignore[arg-type]
    assert pve.recorded == []
    pve.add_ct(900, node="pve1", config={"memory": 12000})  # 16384 - 2048 - 12000 = 2336 MiB left
    with pytest.raises(ConflictError, match="cannot take 4096 MiB"):
        lab.apps.resize(app.id, resources=Resources(memory_mb=6144))
    # less memory needs no room
    assert lab.apps.resize(app.id, resources=Resources(memory_mb=1024)).wait(timeout=60).resources.memory_mb == 1024
    assert pve.ct(app.vmid).config["memory"] == 1024
    assert pve.ct(app.vmid).config["rootfs"].endswith("size=8G")


def test_a_failed_disk_resize_keeps_the_record_true(lab: Proximity, pve: HarnessPve) -> None:
    app = _deploy(lab)
    pve.fail("PUT", f"/lxc/{app.vmid}/resize", error="could_not_determine_current_size")
    op = lab.apps.resize(app.id, resources=Resources(cores=3, disk_gb=20))
    with pytest.raises(OperationFailed) as failure:
        op.wait(timeout=60)
    assert failure.value.step == "disk"
    after = lab.apps.get(app.id)
    # the cores were applied before the disk failed: the record says so; the disk kept its size
    assert after.resources == Resources(cores=3, memory_mb=2048, swap_mb=512, disk_gb=8)
    assert pve.ct(app.vmid).config["cores"] == 3
    assert after.status == AppStatus.RUNNING
