"""Issue 15: deleting an app removes the containers a restore retired (none leaks with the record)."""

from __future__ import annotations

from datetime import timedelta

from proximity_sdk._client import Proximity
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.maintenance import RetiredContainer
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.maintenance_repo import add_retired
from tests.harness.pve import HarnessPve


def test_deleting_an_app_destroys_its_retired_containers(lab: Proximity, pve: HarnessPve) -> None:
    host = lab.hosts.get("lab")
    app = lab.store.apps.create(hostname="wiki", host_id=host.id, status=AppStatus.RUNNING, node="pve1", vmid=301)
    other = lab.store.apps.create(hostname="other", host_id=host.id, status=AppStatus.RUNNING, node="pve1", vmid=305)
    pve.add_ct(301, "wiki", status="running")  # the app's container
    pve.add_ct(300, "wiki", status="stopped")  # retired by a restore, still in its grace period
    pve.add_ct(305, "other", status="running")  # another app's container, wrongly listed as retired
    assert lab.store.reservations.reserve_vmid(host.id, 300, app_id=app.id)
    until = utcnow() + timedelta(hours=24)
    for vmid in (300, 305):
        add_retired(
            lab.store, app.id, RetiredContainer(host_id=host.id, node="pve1", vmid=vmid, hostname="wiki", until=until)
        )

    lab.apps.delete(app.id).wait(timeout=60)

    assert pve.ct(301) is None
    assert pve.ct(300) is None  # nothing would ever have destroyed it once the record was gone
    assert pve.ct(305) is not None  # another app's: untouched
    assert lab.apps.get(other.id).vmid == 305
    assert lab.store.reservations.held_vmids(host.id) == {305}  # only the other app's
