"""An OCI app's everyday life on a host without SSH: stop, start, restart, backup, restore, reconcile, delete."""

from __future__ import annotations

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.backup import BackupStatus
from tests.harness.pve import HarnessPve

pytestmark = pytest.mark.pve9_only


def _deploy(px: Proximity, hostname: str = "graf-1") -> App:
    app: App = px.apps.deploy("grafana", hostname=hostname).wait(timeout=60)
    assert app.config["runtime"] == "oci"
    return app


def test_stop_start_restart_delete(nossh: Proximity, pve: HarnessPve) -> None:
    app = _deploy(nossh)
    assert app.vmid is not None
    vmid = app.vmid

    assert nossh.apps.stop(app.id).wait(timeout=60).status == AppStatus.STOPPED
    assert pve.ct(vmid).status == "stopped"

    op = nossh.apps.start(app.id)
    started = op.wait(timeout=60)
    assert started.status == AppStatus.RUNNING and started.url == f"http://{started.address}:3000"
    assert pve.ct(vmid).status == "running"
    assert any("health is the container's state" in e.message for e in op.events())

    assert nossh.apps.restart(app.id).wait(timeout=60).status == AppStatus.RUNNING

    nossh.apps.delete(app.id).wait(timeout=60)
    assert pve.ct(vmid) is None and nossh.apps.list() == []


def test_backup_and_restore_into_a_new_container(nossh: Proximity, pve: HarnessPve) -> None:
    app = _deploy(nossh)
    assert app.vmid is not None
    before = dict(pve.ct(app.vmid).config)
    backup = nossh.backups.create(app.id).wait(timeout=60)
    assert backup.status == BackupStatus.COMPLETED and backup.vmid == app.vmid

    restored = nossh.backups.restore(backup.id).wait(timeout=60)
    assert restored.id == app.id and restored.status == AppStatus.RUNNING
    assert restored.vmid is not None and restored.vmid != app.vmid
    config = pve.ct(restored.vmid).config
    # the application container comes back as it was: its image, environment (secrets) and entrypoint
    assert config["env"] == before["env"] and config["entrypoint"] == before["entrypoint"]
    assert config["ostype"] == "unmanaged" and pve.ct(restored.vmid).status == "running"


def test_restore_in_place(nossh: Proximity, pve: HarnessPve) -> None:
    app = _deploy(nossh)
    backup = nossh.backups.create(app.id).wait(timeout=60)
    restored = nossh.backups.restore(backup.id, in_place=True).wait(timeout=60)
    assert restored.vmid == app.vmid and restored.status == AppStatus.RUNNING
    assert restored.vmid is not None and pve.ct(restored.vmid).status == "running"


def test_reconcile_sees_an_oci_app_stopped_outside_proximity(nossh: Proximity, pve: HarnessPve) -> None:
    app = _deploy(nossh)
    assert app.vmid is not None
    pve.ct(app.vmid).status = "stopped"
    nossh.maintenance.reconcile()
    assert nossh.apps.get(app.id).status == AppStatus.STOPPED


def test_migrate_without_ssh(nossh: Proximity, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    app = _deploy(nossh)
    assert app.node == "pve1"
    op = nossh.apps.migrate(app.id, node="pve2")
    moved = op.wait(timeout=60)
    assert moved.node == "pve2" and moved.status == AppStatus.RUNNING
    assert pve.ct(moved.vmid).node == "pve2" and pve.ct(moved.vmid).status == "running"
    assert any("health is the container's state" in e.message for e in op.events())  # no shell was asked
