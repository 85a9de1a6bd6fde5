"""The janitor: orphaned and overdue operations rolled back, retired containers destroyed after grace."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationCancelled, OperationFailed
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.maintenance import RetiredContainer
from proximity_sdk.models.operation import Operation, OperationStatus
from proximity_sdk.operations.deploy.kind import DeployKind
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.maintenance_repo import add_retired
from proximity_sdk.store.tables import OperationRow
from tests.harness.pve import HarnessPve
from tests.operations._toys import Blocking, Cancellable


def _dead_deploy(px: Proximity, pve: HarnessPve, *, deadline_in: float) -> tuple[Operation, App]:
    """What a process that died during a deploy's `start` step leaves: the operation running under
    its runner with an expired lease, the VMID reserved, the container created and journalled."""
    host = px.hosts.get("lab")
    app = px.store.apps.create(
        hostname="half-done", host_id=host.id, status=AppStatus.DEPLOYING, node="pve1", vmid=180, catalog_id="gitea"
    )
    op = px.store.operations.create(
        "deploy",
        steps=DeployKind.steps,
        app_id=app.id,
        host_id=host.id,
        deadline=utcnow() + timedelta(seconds=deadline_in),
    )
    assert px.store.operations.claim(op.id, "dead-runner", timedelta(seconds=-1))
    assert px.store.reservations.reserve_vmid(host.id, 180, operation_id=op.id, app_id=app.id)
    pve.add_ct(180, "half-done", node="pve1", status="running")
    px.store.operations.set_side_effects(
        op.id,
        "dead-runner",
        [
            {"kind": "vmid", "host_id": host.id, "vmid": 180},
            {"kind": "container", "host_id": host.id, "node": "pve1", "vmid": 180},
        ],
    )
    px.store.operations.set_step(op.id, "dead-runner", "start")
    return px.store.operations.get(op.id), app


def _overdue(px: Proximity, op_id: str) -> None:
    with px.store.session() as s:
        s.execute(update(OperationRow).where(OperationRow.id == op_id).values(deadline=utcnow() - timedelta(seconds=1)))


def test_an_operation_whose_runner_died_is_taken_over_and_rolled_back(lab: Proximity, pve: HarnessPve) -> None:
    op, app = _dead_deploy(lab, pve, deadline_in=3600)
    report = lab.maintenance.janitor()
    assert report.resumed == [op.id]
    assert report.failed == []
    with pytest.raises(OperationFailed, match="stopped at step start"):
        lab.operations.handle(op.id).wait(timeout=30)
    assert pve.ct(180) is None  # the container it made is destroyed
    assert lab.store.reservations.vmid_reservations() == []
    assert lab.apps.get(app.id).status == AppStatus.ERROR


def test_an_orphan_past_its_deadline_is_failed_and_rolled_back_not_resumed(lab: Proximity, pve: HarnessPve) -> None:
    op, app = _dead_deploy(lab, pve, deadline_in=-1)
    report = lab.maintenance.janitor()
    assert report.failed == [op.id]
    assert report.resumed == []
    done = lab.operations.get(op.id)
    assert done.status == OperationStatus.FAILED
    assert done.result["error_kind"] == "DeadlineExceeded"
    assert done.result["failed_step"] == "start"
    assert "deadline" in (done.error or "")
    assert pve.ct(180) is None
    assert lab.store.reservations.vmid_reservations() == []
    failed_app = lab.apps.get(app.id)
    assert failed_app.status == AppStatus.ERROR
    assert "deadline" in failed_app.config["last_error"]["message"]
    messages = [e.message for e in lab.operations.watch(op.id)]
    assert "rolled back" in messages
    assert messages[-1] == "deploy failed: past its deadline"
    # a second pass finds nothing to do
    again = lab.maintenance.janitor()
    assert (again.failed, again.resumed, again.asked_to_stop) == ([], [], [])


def test_a_live_runner_past_its_deadline_is_asked_to_stop_and_rolls_back(lab: Proximity) -> None:
    loop = Cancellable()
    lab.engine.register(loop)
    handle = lab.engine.submit("loop")
    assert loop.spinning.wait(10)
    _overdue(lab, handle.id)
    report = lab.maintenance.janitor()
    assert report.asked_to_stop == [handle.id]
    assert report.failed == []
    with pytest.raises(OperationCancelled):
        handle.wait(timeout=30)
    assert loop.undone == ["setup"]
    assert "past its deadline: the janitor asked it to stop" in [e.message for e in handle.events()]


def test_a_hung_runner_loses_its_operation_after_the_hard_deadline(lab: Proximity) -> None:
    hung = Blocking()  # ignores cancel requests: it never reaches a checkpoint
    lab.engine.register(hung)
    handle = lab.engine.submit("blocking")
    assert hung.entered.wait(10)
    _overdue(lab, handle.id)
    assert lab.maintenance.janitor(hard_grace_seconds=3600).asked_to_stop == [handle.id]
    assert lab.operations.get(handle.id).status == OperationStatus.RUNNING

    report = lab.maintenance.janitor(hard_grace_seconds=0)
    assert report.failed == [handle.id]
    assert lab.operations.get(handle.id).status == OperationStatus.FAILED
    hung.release.set()  # the hung runner wakes up: its result is no longer its to write
    lab.engine.drain(timeout=10)
    final = lab.operations.get(handle.id)
    assert final.status == OperationStatus.FAILED
    assert final.result["error_kind"] == "DeadlineExceeded"


def test_retired_containers_are_destroyed_once_their_grace_period_ended(lab: Proximity, pve: HarnessPve) -> None:
    host = lab.hosts.get("lab")
    app = lab.store.apps.create(hostname="wiki", host_id=host.id, status=AppStatus.RUNNING, node="pve1", vmid=301)
    other = lab.store.apps.create(hostname="other", host_id=host.id, status=AppStatus.RUNNING, node="pve1", vmid=305)
    pve.nodes["pve2"] = {"online": True}
    pve.add_ct(301, "wiki", status="running")  # the app's current container
    pve.add_ct(300, "wiki", node="pve2", status="stopped")  # retired, grace over, moved to pve2 meanwhile
    pve.add_ct(302, "wiki", status="stopped")  # retired, still in its grace period
    pve.add_ct(304, "someone-else", status="stopped")  # its VMID was reused by another container
    pve.add_ct(305, "other", status="running")  # another app's container
    assert lab.store.reservations.reserve_vmid(host.id, 300, app_id=app.id)
    past, future = utcnow() - timedelta(minutes=1), utcnow() + timedelta(hours=24)
    for vmid, until in ((300, past), (302, future), (303, past), (304, past), (305, past)):
        add_retired(
            lab.store, app.id, RetiredContainer(host_id=host.id, node="pve1", vmid=vmid, hostname="wiki", until=until)
        )

    report = lab.maintenance.janitor()

    destroyed = {d.container.vmid: d for d in report.retired_destroyed}
    assert set(destroyed) == {300, 303}
    assert (destroyed[300].gone, destroyed[300].container.node) == (False, "pve2")
    assert destroyed[303].gone  # already gone: only forgotten
    assert pve.ct(300) is None
    for vmid in (301, 302, 304, 305):  # never destroyed
        assert pve.ct(vmid) is not None
    assert len(report.errors) == 2
    assert any("304" in e and "not 'wiki'" in e for e in report.errors)
    assert any("305" in e and other.id in e for e in report.errors)
    left = lab.apps.get(app.id).config["retired"]
    assert [e["vmid"] for e in left] == [302]
    assert lab.store.reservations.vmid_reservations() == []  # 300's reservation went with it

    # the pass is repeatable: the container in its grace period stays until then
    assert lab.maintenance.janitor().retired_destroyed == []
    assert pve.ct(302) is not None


def test_retired_containers_of_an_unreachable_host_wait(lab: Proximity, pve: HarnessPve) -> None:
    host = lab.hosts.get("lab")
    app = lab.store.apps.create(hostname="wiki", host_id=host.id, status=AppStatus.RUNNING, node="pve1", vmid=301)
    pve.add_ct(300, "wiki", status="stopped")
    add_retired(
        lab.store,
        app.id,
        RetiredContainer(
            host_id=host.id, node="pve1", vmid=300, hostname="wiki", until=utcnow() - timedelta(seconds=1)
        ),
    )
    pve.flaky_network(drop_rate=1.0)
    report = lab.maintenance.janitor()
    assert report.retired_destroyed == []
    assert any("retried next pass" in e for e in report.errors)
    pve.flaky_network(drop_rate=0.0)
    assert [d.container.vmid for d in lab.maintenance.janitor().retired_destroyed] == [300]
    assert pve.ct(300) is None
    assert "retired" not in lab.apps.get(app.id).config
