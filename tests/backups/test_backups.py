"""Backups of a deployed app end to end: create, list, stats, restore (new container, in place), delete."""

from __future__ import annotations

from datetime import datetime

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import ConflictError, NotFoundError, OperationFailed, ValidationError
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.backup import BackupStatus
from proximity_sdk.operations.restore import RETIRED_TAG
from proximity_sdk.sandbox._vzdump import read_archive_config
from tests.harness.pve import HarnessPve


def _deploy(lab: Proximity, hostname: str = "git-1") -> App:
    app: App = lab.apps.deploy("gitea", hostname=hostname).wait(timeout=60)
    return app


def _marks(op: object) -> list[str]:
    return [e.message for e in op.events() if e.message.endswith((": started", ": done"))]  # type: ignore[attr-defined]


def _backup_files(pve: HarnessPve) -> list[str]:
    return sorted(p.name for p in pve.dump_dir("local").iterdir())


def test_create_list_restore_new_and_in_place_then_delete(lab: Proximity, pve: HarnessPve) -> None:
    app = _deploy(lab)
    op = lab.backups.create(app.id, mode="snapshot", compression="zstd", note="before the upgrade")
    backup = op.wait(timeout=60)

    # the record: one per request, completed, with what vzdump made
    assert backup.status == BackupStatus.COMPLETED
    assert backup.app_id == app.id and backup.hostname == "git-1"
    assert backup.node == "pve1" and backup.vmid == app.vmid and backup.storage == "local"
    assert backup.volid is not None and backup.volid.startswith(f"local:backup/vzdump-lxc-{app.vmid}-")
    assert backup.volid.endswith(".tar.zst") and backup.location == backup.volid
    assert backup.size_bytes == pve.archive_path(backup.volid).stat().st_size
    assert backup.duration_seconds is not None and backup.duration_seconds >= 0
    assert backup.note == "before the upgrade" and backup.completed_at is not None
    assert _marks(op) == [f"{s}: {w}" for s in ("queue", "vzdump", "store") for w in ("started", "done")]
    assert any("creating vzdump archive" in e.message for e in op.events())
    [sent] = [r for r in pve.recorded if r.path.endswith("/vzdump")]
    assert sent.method == "POST" and sent.path == "/api2/json/nodes/pve1/vzdump"

    assert lab.backups.list() == [backup]
    assert lab.backups.list(app.id) == [backup]
    assert lab.backups.get(backup.id) == backup
    stats = lab.backups.stats(app.id)
    assert stats.total == 1 and stats.by_status == {BackupStatus.COMPLETED: 1}
    assert stats.completed_size_bytes == stats.average_size_bytes == backup.size_bytes

    # restore into a new container: the record moves, the old container is kept, stopped and tagged
    old_vmid = app.vmid
    assert old_vmid is not None
    restore = lab.backups.restore(backup.id)
    restored = restore.wait(timeout=60)
    assert restored.id == app.id and restored.hostname == app.hostname
    assert restored.status == AppStatus.RUNNING and restored.vmid not in (None, old_vmid)
    assert restored.address == pve.lease_for(restored.vmid)  # a new MAC, a new lease
    assert restored.url == f"http://{restored.address}:3000"
    assert pve.restored_from[restored.vmid] == [backup.volid]
    assert pve.ct(restored.vmid).status == "running"
    assert pve.ct(restored.vmid).config["hostname"] == "git-1"
    assert pve.ct(restored.vmid).config["rootfs"].startswith("local-lvm:")  # the storage was passed
    old = pve.ct(old_vmid)
    assert old.status == "stopped" and RETIRED_TAG in old.config["tags"].split(";")
    [retired] = restored.config["retired"]
    assert retired["vmid"] == old_vmid and retired["node"] == "pve1" and retired["hostname"] == "git-1"
    assert datetime.fromisoformat(retired["until"]) > backup.created_at
    assert _marks(restore)[::2] == [
        f"{s}: started"
        for s in ("check", "reserve", "fetch", "restore", "switch", "start", "address", "health", "retire")
    ]
    [create] = [r for r in pve.recorded if r.method == "POST" and r.path.endswith("/lxc") and b"restore=1" in r.body]
    assert b"storage=local-lvm" in create.body and b"unique=1" in create.body
    assert lab.backups.get(backup.id).status == BackupStatus.COMPLETED

    # restore in place: a safety backup first, then the overwrite restore of the same container
    in_place = lab.backups.restore(backup.id, in_place=True)
    again = in_place.wait(timeout=60)
    assert again.vmid == restored.vmid and again.status == AppStatus.RUNNING
    assert pve.restored_from[restored.vmid] == [backup.volid, backup.volid]
    assert _marks(in_place)[::2] == [
        f"{s}: started" for s in ("check", "fetch", "safety", "stop", "restore", "start", "address", "health")
    ]
    safety = [b for b in lab.backups.list(app.id) if b.id != backup.id]
    assert len(safety) == 1 and safety[0].status == BackupStatus.COMPLETED
    assert safety[0].note == f"safety backup before restoring backup {backup.id}"
    assert safety[0].vmid == restored.vmid

    # delete: the volume goes, then the record; a volume already gone is not an error
    assert lab.backups.delete(backup.id).wait(timeout=30) is None
    assert not pve.archive_path(backup.volid).exists()
    with pytest.raises(NotFoundError):
        lab.backups.get(backup.id)
    assert safety[0].volid is not None
    pve.archive_path(safety[0].volid).unlink()
    gone = lab.backups.delete(safety[0].id)
    assert gone.wait(timeout=30) is None
    assert any("already gone" in e.message for e in gone.events())
    assert lab.backups.list() == []


def test_restore_of_a_corrupt_archive_leaves_the_app_running_unchanged(lab: Proximity, pve: HarnessPve) -> None:
    app = _deploy(lab)
    backup = lab.backups.create(app.id, compression="gzip").wait(timeout=60)
    assert backup.volid is not None
    pve.archive_path(backup.volid).write_bytes(b"\x00garbage, not a tar archive" * 4096)
    containers = {ct.vmid for ct in pve.cts}

    op = lab.backups.restore(backup.id)
    with pytest.raises(OperationFailed) as failed:
        op.wait(timeout=60)
    assert failed.value.step == "restore"
    assert "unable to restore CT" in str(failed.value)
    assert lab.apps.get(app.id).model_dump(exclude={"updated_at", "status_changed_at"}) == app.model_dump(
        exclude={"updated_at", "status_changed_at"}
    )
    assert pve.ct(app.vmid).status == "running"
    assert {ct.vmid for ct in pve.cts} == containers  # nothing left behind
    assert lab.store.reservations.held_vmids(app.host_id) == {app.vmid}
    assert lab.backups.get(backup.id).status == BackupStatus.COMPLETED

    # in place: PVE's overwrite path destroys the container, then the safety backup brings it back
    op = lab.backups.restore(backup.id, in_place=True)
    with pytest.raises(OperationFailed) as failed:
        op.wait(timeout=60)
    assert failed.value.step == "restore"
    messages = [e.message for e in op.events()]
    assert any(m.startswith("rolling back to the safety backup") for m in messages)
    after = lab.apps.get(app.id)
    assert after.status == AppStatus.RUNNING and after.vmid == app.vmid
    assert pve.ct(app.vmid).status == "running"
    [safety] = [b for b in lab.backups.list(app.id) if b.id != backup.id]
    assert pve.restored_from[int(app.vmid or 0)] == [safety.volid]
    assert read_archive_config(pve.archive_path(str(safety.volid)))["hostname"] == "git-1"


def test_restore_of_a_missing_archive_is_refused_before_anything_changes(lab: Proximity, pve: HarnessPve) -> None:
    app = _deploy(lab)
    backup = lab.backups.create(app.id).wait(timeout=60)
    pve.archive_path(str(backup.volid)).unlink()
    before = len(pve.recorded)
    op = lab.backups.restore(backup.id)
    with pytest.raises(OperationFailed) as failed:
        op.wait(timeout=60)
    assert failed.value.step == "check"
    assert "missing or damaged" in str(failed.value)
    assert all(r.method == "GET" for r in pve.recorded[before:])  # nothing was changed in Proxmox
    assert lab.apps.get(app.id).status == AppStatus.RUNNING and pve.ct(app.vmid).status == "running"


def test_a_failed_vzdump_leaves_one_failed_record_and_never_blocks_the_next(lab: Proximity, pve: HarnessPve) -> None:
    app = _deploy(lab)
    pve.fail_next_vzdump("ERROR: Backup of VM failed - no space left on device")
    op = lab.backups.create(app.id)
    with pytest.raises(OperationFailed) as failed:
        op.wait(timeout=60)
    assert failed.value.step == "vzdump"
    [record] = lab.backups.list(app.id)
    assert record.status == BackupStatus.FAILED and "no space left" in str(record.error)
    assert _backup_files(pve) == []

    good = lab.backups.create(app.id).wait(timeout=60)  # the failure blocks nothing
    assert [b.status for b in lab.backups.list(app.id)] == [BackupStatus.COMPLETED, BackupStatus.FAILED]
    assert lab.backups.stats().by_status == {BackupStatus.COMPLETED: 1, BackupStatus.FAILED: 1}
    with pytest.raises(ConflictError):
        lab.backups.restore(record.id)  # only a completed backup can be restored
    assert lab.backups.delete(record.id).wait(timeout=30) is None
    assert lab.backups.list() == [good]


def test_bad_requests_are_refused_before_anything_reaches_proxmox(lab: Proximity, pve: HarnessPve) -> None:
    app = _deploy(lab)
    before = len(pve.recorded)
    refusals = []
    for call in (
        lambda: lab.backups.create(app.id, mode="hibernate"),
        lambda: lab.backups.create(app.id, compression="bzip2"),
        lambda: lab.backups.create(app.id, target="offsite"),
        lambda: lab.backups.create("no-such-app"),
        lambda: lab.backups.create(app.id, note="x" * 2000),
        lambda: lab.backups.schedule(app.id, cron="every day"),
        lambda: lab.backups.schedule(app.id, cron="0 25 * * *"),
        lambda: lab.backups.schedule(app.id, cron="0 3 * * *", keep_last=0),
        lambda: lab.backups.targets.add(name="nas", kind="tape", options={}),
        lambda: lab.backups.targets.add(name="nas", kind="proxmox", options={"storage": "bad storage"}),
        lambda: lab.backups.targets.add(name="nas", kind="proxmox", options={"pool": "x"}),
        lambda: lab.backups.restore("no-such-backup"),
    ):
        with pytest.raises((ValidationError, NotFoundError)) as refused:
            call()
        refusals.append(str(refused.value))
    assert "unknown mode 'hibernate'; one of snapshot, suspend, stop" in refusals[0]
    assert "unknown compression 'bzip2'" in refusals[1]
    assert "no backup target 'offsite'" in refusals[2]
    assert "no app 'no-such-app'" in refusals[3]
    assert "unknown backup target kind 'tape'" in refusals[8]
    backup = lab.backups.create(app.id).wait(timeout=60)
    sent = len(pve.recorded)
    with pytest.raises(ValidationError, match="storage id"):
        lab.backups.restore(backup.id, storage="no such/storage")
    assert len(pve.recorded) == sent
    assert [r for r in pve.recorded[before:] if r.path.endswith("/vzdump")] != []
    assert lab.backups.list() == [backup]  # no record for any refused request


def test_a_configured_proxmox_target_and_its_kind(lab: Proximity, pve: HarnessPve) -> None:
    app = _deploy(lab)
    target = lab.backups.targets.add(name="nas", kind="proxmox", options={"storage": "local"})
    assert lab.backups.targets.list() == [target]
    assert "proxmox" in lab.backups.targets.kinds()
    backup = lab.backups.create(app.id, target="nas", compression="lzo").wait(timeout=60)
    assert backup.target == "nas" and str(backup.volid).endswith(".tar.lzo")
    with pytest.raises(ConflictError, match="still holds 1 backup"):
        lab.backups.targets.remove("nas")
    lab.backups.delete(backup.id).wait(timeout=30)
    lab.backups.targets.remove("nas")
    assert lab.backups.targets.list() == []


def test_the_janitor_destroys_the_retired_container_after_the_grace_period(lab: Proximity, pve: HarnessPve) -> None:
    lab.settings.update(restore_grace_hours=0)
    app = _deploy(lab)
    backup = lab.backups.create(app.id).wait(timeout=60)
    restored = lab.backups.restore(backup.id).wait(timeout=60)
    assert restored.config["retired"][0]["vmid"] == app.vmid
    assert lab.store.reservations.held_vmids(app.host_id) == {app.vmid, restored.vmid}
    report = lab.maintenance.janitor()
    assert [(d.app_id, d.container.vmid) for d in report.retired_destroyed] == [(app.id, app.vmid)]
    assert pve.ct(app.vmid) is None and pve.ct(restored.vmid).status == "running"
    assert "retired" not in lab.apps.get(app.id).config
    assert lab.store.reservations.held_vmids(app.host_id) == {restored.vmid}
