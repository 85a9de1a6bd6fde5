"""BackupService through a real channel to the in-process agent: a member's app backed up,
listed, restored (new container and in place) and deleted; schedules and due runs; targets (whose
options never come back); and the status code of each kind of refusal (never UNKNOWN)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import proximity_sftp.plugin

from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc, backups_pb2, backups_pb2_grpc, operations_pb2
from tests.agent._rpc import code_of, finish, rpc_error, succeeded, trailing
from tests.agent.conftest import Agent
from tests.harness.pve import HarnessPve

C = grpc.StatusCode
B = backups_pb2


def _deploy(agent: Agent, token: str, hostname: str) -> apps_pb2.App:
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, token)
    op = apps.DeployApp(apps_pb2.DeployAppRequest(catalog_id="gitea", hostname=hostname)).operation
    succeeded(agent, token, op.id)
    return apps.GetApp(apps_pb2.GetAppRequest(app_id=op.app_id)).app  # type: ignore[no-any-return]


def _backups(agent: Agent, token: str) -> Any:
    return agent.stub(backups_pb2_grpc.BackupServiceStub, token)


def _pages(call: Any, request_type: Any, field: str, **filters: Any) -> list[Any]:
    """Every item of a paginated list, one item per page."""
    items: list[Any] = []
    token = ""
    while True:
        page = call(request_type(page_size=1, page_token=token, **filters))
        assert len(getattr(page, field)) <= 1
        items += list(getattr(page, field))
        token = page.next_page_token
        if not token:
            return items


def _refused(call: Any, code: grpc.StatusCode, field: str | None = None) -> str:
    error = rpc_error(call)
    assert error.code() == code, (error.code(), error.details())
    if field is not None:
        assert trailing(error).get("proximity-error-field") == field, trailing(error)
    return str(error.details())


# -- backups ---------------------------------------------------------------------------------------


def test_a_members_backup_created_listed_restored_and_deleted(agent: Agent, pve: HarnessPve) -> None:
    app = _deploy(agent, agent.member, "git-b")
    mine = _backups(agent, agent.member)
    other = _backups(agent, agent.other)
    admin = _backups(agent, agent.admin)

    op = mine.CreateBackup(
        B.CreateBackupRequest(app_id=app.id, compression=B.BACKUP_COMPRESSION_GZIP, note="before the upgrade")
    ).operation
    assert (op.kind, op.app_id, op.owner_id) == ("backup", app.id, agent.member_id)
    backup_id = succeeded(agent, agent.member, op.id)["backup_id"]

    backup = mine.GetBackup(B.GetBackupRequest(backup_id=backup_id)).backup
    assert (backup.id, backup.app_id, backup.hostname, backup.status) == (
        backup_id,
        app.id,
        "git-b",
        B.BACKUP_STATUS_COMPLETED,
    )
    assert (backup.mode, backup.compression) == (B.BACKUP_MODE_SNAPSHOT, B.BACKUP_COMPRESSION_GZIP)
    assert (backup.node, backup.vmid, backup.storage, backup.note) == ("pve1", app.vmid, "local", "before the upgrade")
    assert backup.volid.startswith(f"local:backup/vzdump-lxc-{app.vmid}-") and backup.volid.endswith(".tar.gz")
    assert backup.location == backup.volid and backup.size_bytes == pve.archive_path(backup.volid).stat().st_size
    assert not backup.HasField("target") and not backup.HasField("schedule_id") and not backup.HasField("error")
    assert backup.HasField("completed_at") and backup.HasField("duration_seconds")
    sdk = agent.px.backups.get(backup_id)
    assert backup.created_at.ToDatetime(tzinfo=UTC) == sdk.created_at.replace(tzinfo=sdk.created_at.tzinfo or UTC)

    assert [b.id for b in mine.ListBackups(B.ListBackupsRequest(app_id=app.id)).backups] == [backup_id]
    assert [b.id for b in mine.ListBackups(B.ListBackupsRequest()).backups] == [backup_id]
    assert [b.id for b in mine.ListBackups(B.ListBackupsRequest(status=B.BACKUP_STATUS_FAILED)).backups] == []
    stats = mine.GetBackupStats(B.GetBackupStatsRequest(app_id=app.id)).stats
    assert (stats.total, stats.completed_size_bytes, stats.average_size_bytes) == (
        1,
        backup.size_bytes,
        backup.size_bytes,
    )
    assert [(c.status, c.count) for c in stats.by_status] == [(B.BACKUP_STATUS_COMPLETED, 1)]
    assert mine.GetBackupStats(B.GetBackupStatsRequest()).stats == stats

    # another member: nothing of it exists
    assert list(other.ListBackups(B.ListBackupsRequest()).backups) == []
    assert other.GetBackupStats(B.GetBackupStatsRequest()).stats.total == 0
    for call in (
        lambda: other.GetBackup(B.GetBackupRequest(backup_id=backup_id)),
        lambda: other.ListBackups(B.ListBackupsRequest(app_id=app.id)),
        lambda: other.GetBackupStats(B.GetBackupStatsRequest(app_id=app.id)),
        lambda: other.CreateBackup(B.CreateBackupRequest(app_id=app.id)),
        lambda: other.RestoreBackup(B.RestoreBackupRequest(backup_id=backup_id)),
        lambda: other.DeleteBackup(B.DeleteBackupRequest(backup_id=backup_id)),
    ):
        assert code_of(call) == C.NOT_FOUND
    assert agent.px.backups.get(backup_id).status.value == "completed"  # the refused calls changed nothing

    # restore into a new container: the app keeps its id and moves to a new VMID
    restore = mine.RestoreBackup(B.RestoreBackupRequest(backup_id=backup_id)).operation
    assert (restore.kind, restore.app_id, restore.owner_id) == ("restore", app.id, agent.member_id)
    assert succeeded(agent, agent.member, restore.id)["app_id"] == app.id
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    moved = apps.GetApp(apps_pb2.GetAppRequest(app_id=app.id)).app
    assert moved.status == apps_pb2.APP_STATUS_RUNNING and moved.vmid != app.vmid
    assert pve.restored_from[moved.vmid] == [backup.volid]

    # in place: a safety backup first, then the same container overwritten
    in_place = mine.RestoreBackup(B.RestoreBackupRequest(backup_id=backup_id, in_place=True)).operation
    succeeded(agent, agent.member, in_place.id)
    assert apps.GetApp(apps_pb2.GetAppRequest(app_id=app.id)).app.vmid == moved.vmid
    assert pve.restored_from[moved.vmid] == [backup.volid, backup.volid]

    # two backups now: newest first, the same through every path and page size
    expected = [b.id for b in agent.px.backups.list(app.id)]
    assert len(expected) == 2 and expected[1] == backup_id
    assert [b.id for b in _pages(mine.ListBackups, B.ListBackupsRequest, "backups")] == expected
    assert [b.id for b in _pages(admin.ListBackups, B.ListBackupsRequest, "backups")] == expected
    assert [b.id for b in _pages(mine.ListBackups, B.ListBackupsRequest, "backups", app_id=app.id)] == expected
    safety = mine.GetBackup(B.GetBackupRequest(backup_id=expected[0])).backup
    assert safety.note == f"safety backup before restoring backup {backup_id}"
    both = mine.GetBackupStats(B.GetBackupStatsRequest()).stats
    assert both.total == 2 and both.completed_size_bytes == backup.size_bytes + safety.size_bytes
    assert both.average_size_bytes == both.completed_size_bytes // 2

    # delete: the archive and the record go
    gone = mine.DeleteBackup(B.DeleteBackupRequest(backup_id=backup_id)).operation
    assert (gone.kind, gone.owner_id) == ("backup-delete", agent.member_id)
    op_done, _ = finish(agent, agent.member, gone.id)  # the member follows its own delete
    assert op_done.status == operations_pb2.OPERATION_STATUS_SUCCEEDED, op_done.error
    assert not pve.archive_path(backup.volid).exists()
    _refused(lambda: mine.GetBackup(B.GetBackupRequest(backup_id=backup_id)), C.NOT_FOUND)
    _refused(lambda: mine.DeleteBackup(B.DeleteBackupRequest(backup_id=backup_id)), C.NOT_FOUND)
    assert [b.id for b in mine.ListBackups(B.ListBackupsRequest()).backups] == [safety.id]


def test_backup_requests_are_refused_with_the_right_code(agent: Agent, pve: HarnessPve) -> None:
    app = _deploy(agent, agent.member, "git-r")
    mine = _backups(agent, agent.member)

    # what is wrong with the request itself, named
    _refused(lambda: mine.CreateBackup(B.CreateBackupRequest()), C.INVALID_ARGUMENT, "app_id")
    unknown_mode, unknown_compression = B.BackupMode.ValueType(9), B.BackupCompression.ValueType(9)
    _refused(
        lambda: mine.CreateBackup(B.CreateBackupRequest(app_id=app.id, mode=unknown_mode)), C.INVALID_ARGUMENT, "mode"
    )
    _refused(
        lambda: mine.CreateBackup(B.CreateBackupRequest(app_id=app.id, compression=unknown_compression)),
        C.INVALID_ARGUMENT,
        "compression",
    )
    _refused(
        lambda: mine.CreateBackup(B.CreateBackupRequest(app_id=app.id, note="x" * 1025)), C.INVALID_ARGUMENT, "note"
    )
    _refused(
        lambda: mine.ListBackups(B.ListBackupsRequest(status=B.BackupStatus.ValueType(42))),
        C.INVALID_ARGUMENT,
        "status",
    )
    _refused(lambda: mine.ListBackups(B.ListBackupsRequest(page_token="not-ours")), C.INVALID_ARGUMENT, "page_token")
    _refused(lambda: mine.ListBackups(B.ListBackupsRequest(page_size=-1)), C.INVALID_ARGUMENT, "page_size")
    _refused(lambda: mine.GetBackup(B.GetBackupRequest()), C.INVALID_ARGUMENT, "backup_id")
    _refused(lambda: mine.RestoreBackup(B.RestoreBackupRequest()), C.INVALID_ARGUMENT, "backup_id")
    _refused(lambda: mine.DeleteBackup(B.DeleteBackupRequest()), C.INVALID_ARGUMENT, "backup_id")
    # what does not exist
    _refused(lambda: mine.CreateBackup(B.CreateBackupRequest(app_id="no-such-app")), C.NOT_FOUND)
    _refused(lambda: mine.CreateBackup(B.CreateBackupRequest(app_id=app.id, target="nowhere")), C.NOT_FOUND)
    _refused(lambda: mine.GetBackup(B.GetBackupRequest(backup_id="no-such-backup")), C.NOT_FOUND)
    _refused(lambda: mine.GetBackupStats(B.GetBackupStatsRequest(app_id="no-such-app")), C.NOT_FOUND)
    assert agent.px.backups.list() == []  # no record for a refused request

    # a failed vzdump leaves a failed record: listed, not restorable, deletable
    pve.fail_next_vzdump("no space left on device")
    failed_op = mine.CreateBackup(B.CreateBackupRequest(app_id=app.id)).operation
    op, _ = finish(agent, agent.member, failed_op.id)
    assert op.status == operations_pb2.OPERATION_STATUS_FAILED and "no space left" in op.error
    [failed] = mine.ListBackups(B.ListBackupsRequest(status=B.BACKUP_STATUS_FAILED)).backups
    assert failed.status == B.BACKUP_STATUS_FAILED and "no space left" in failed.error
    assert "completed" in _refused(
        lambda: mine.RestoreBackup(B.RestoreBackupRequest(backup_id=failed.id)), C.FAILED_PRECONDITION
    )
    good = succeeded(agent, agent.member, mine.CreateBackup(B.CreateBackupRequest(app_id=app.id)).operation.id)
    _refused(
        lambda: mine.RestoreBackup(B.RestoreBackupRequest(backup_id=good["backup_id"], storage="bad/storage")),
        C.INVALID_ARGUMENT,
    )

    # while a backup runs: a second one for the app is busy (ABORTED), its record cannot be deleted yet
    pve.time_scale = 0.01
    pve.vzdump_secs = 150  # 1.5 s
    slow = mine.CreateBackup(B.CreateBackupRequest(app_id=app.id)).operation
    _refused(lambda: mine.CreateBackup(B.CreateBackupRequest(app_id=app.id)), C.ABORTED)
    [creating] = mine.ListBackups(B.ListBackupsRequest(status=B.BACKUP_STATUS_CREATING)).backups
    _refused(lambda: mine.DeleteBackup(B.DeleteBackupRequest(backup_id=creating.id)), C.FAILED_PRECONDITION)
    succeeded(agent, agent.member, slow.id)
    deleted = mine.DeleteBackup(B.DeleteBackupRequest(backup_id=failed.id)).operation
    assert finish(agent, agent.admin, deleted.id)[0].status == operations_pb2.OPERATION_STATUS_SUCCEEDED
    stats = mine.GetBackupStats(B.GetBackupStatsRequest()).stats
    assert [(c.status, c.count) for c in stats.by_status] == [(B.BACKUP_STATUS_COMPLETED, 2)]


# -- schedules -------------------------------------------------------------------------------------


def test_schedules_and_due_runs(agent: Agent) -> None:
    app = _deploy(agent, agent.member, "git-s")
    mine = _backups(agent, agent.member)
    other = _backups(agent, agent.other)
    admin = _backups(agent, agent.admin)

    daily = mine.CreateBackupSchedule(B.CreateBackupScheduleRequest(app_id=app.id, cron="0 3 * * *")).schedule
    assert (daily.app_id, daily.cron, daily.keep_last, daily.enabled) == (app.id, "0 3 * * *", 7, True)
    assert not daily.HasField("keep_daily") and not daily.HasField("last_run_at")
    assert daily.next_run_at.ToDatetime(tzinfo=UTC).hour == 3
    weekly = mine.CreateBackupSchedule(
        B.CreateBackupScheduleRequest(app_id=app.id, cron="30 4 * * 0", keep_last=0, keep_daily=3, keep_weekly=4)
    ).schedule
    assert not weekly.HasField("keep_last") and (weekly.keep_daily, weekly.keep_weekly) == (3, 4)

    _refused(
        lambda: mine.CreateBackupSchedule(B.CreateBackupScheduleRequest(app_id=app.id, cron="every day")),
        C.INVALID_ARGUMENT,
        "cron",
    )
    _refused(
        lambda: mine.CreateBackupSchedule(B.CreateBackupScheduleRequest(app_id=app.id, cron="0 3 * * *", keep_daily=0)),
        C.INVALID_ARGUMENT,
        "keep_daily",
    )
    _refused(
        lambda: mine.CreateBackupSchedule(
            B.CreateBackupScheduleRequest(app_id=app.id, cron="0 3 * * *", target="nowhere")
        ),
        C.NOT_FOUND,
    )
    _refused(
        lambda: other.CreateBackupSchedule(B.CreateBackupScheduleRequest(app_id=app.id, cron="0 3 * * *")), C.NOT_FOUND
    )

    ids = [daily.id, weekly.id]
    assert [s.id for s in _pages(mine.ListBackupSchedules, B.ListBackupSchedulesRequest, "schedules")] == ids
    assert [
        s.id for s in _pages(admin.ListBackupSchedules, B.ListBackupSchedulesRequest, "schedules", app_id=app.id)
    ] == ids
    assert list(other.ListBackupSchedules(B.ListBackupSchedulesRequest()).schedules) == []
    _refused(lambda: other.ListBackupSchedules(B.ListBackupSchedulesRequest(app_id=app.id)), C.NOT_FOUND)
    _refused(lambda: other.DeleteBackupSchedule(B.DeleteBackupScheduleRequest(schedule_id=daily.id)), C.NOT_FOUND)

    # nothing due yet; then the daily one's time comes
    _refused(lambda: mine.RunDueBackups(B.RunDueBackupsRequest()), C.PERMISSION_DENIED)
    assert list(admin.RunDueBackups(B.RunDueBackupsRequest()).operations) == []
    due = datetime.now(UTC) - timedelta(minutes=1)
    assert agent.px.store.backups.claim_run(
        daily.id,
        expected_next=agent.px.store.backups.get_schedule(daily.id).next_run_at,
        ran_at=due - timedelta(days=1),
        next_run_at=due,
    )
    [op] = admin.RunDueBackups(B.RunDueBackupsRequest()).operations
    assert (op.kind, op.app_id, op.owner_id) == ("backup", app.id, agent.member_id)
    assert list(op.steps) == ["queue", "vzdump", "store", "prune"]
    backup_id = succeeded(agent, agent.member, op.id)["backup_id"]  # the app's owner follows it
    made = mine.GetBackup(B.GetBackupRequest(backup_id=backup_id)).backup
    assert made.schedule_id == daily.id and made.status == B.BACKUP_STATUS_COMPLETED
    assert list(admin.RunDueBackups(B.RunDueBackupsRequest()).operations) == []  # claimed once
    [after] = [s for s in mine.ListBackupSchedules(B.ListBackupSchedulesRequest()).schedules if s.id == daily.id]
    assert after.HasField("last_run_at") and after.next_run_at.ToDatetime(tzinfo=UTC) > datetime.now(UTC)

    # unschedule: the schedule goes, its backups stay
    mine.DeleteBackupSchedule(B.DeleteBackupScheduleRequest(schedule_id=daily.id))
    _refused(lambda: mine.DeleteBackupSchedule(B.DeleteBackupScheduleRequest(schedule_id=daily.id)), C.NOT_FOUND)
    _refused(lambda: mine.DeleteBackupSchedule(B.DeleteBackupScheduleRequest()), C.INVALID_ARGUMENT, "schedule_id")
    admin.DeleteBackupSchedule(B.DeleteBackupScheduleRequest(schedule_id=weekly.id))  # an admin may, too
    assert list(mine.ListBackupSchedules(B.ListBackupSchedulesRequest()).schedules) == []
    assert [b.id for b in mine.ListBackups(B.ListBackupsRequest()).backups] == [backup_id]


# -- targets ---------------------------------------------------------------------------------------


def test_targets_configured_by_admins_read_by_members_and_options_never_returned(agent: Agent, tmp_path: Path) -> None:
    admin = _backups(agent, agent.admin)
    mine = _backups(agent, agent.member)
    assert list(mine.ListBackupTargetKinds(B.ListBackupTargetKindsRequest()).kinds) == ["proxmox"]
    agent.px.plugins.register(proximity_sftp.plugin, name="sftp-for-this-test")
    assert _pages(mine.ListBackupTargetKinds, B.ListBackupTargetKindsRequest, "kinds") == [
        "directory",
        "proxmox",
        "sftp",
    ]

    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        "backup.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    secret = "hunter2-do-not-leak"
    sftp_options = {
        "host": "backup.example",
        "user": "px",
        "path": "/srv/backups",
        "password": secret,
        "known_hosts": str(known_hosts),
    }
    created = admin.CreateBackupTarget(
        B.CreateBackupTargetRequest(name="offsite", kind="sftp", options_json=json.dumps(sftp_options))
    ).target
    assert (created.name, created.kind) == ("offsite", "sftp") and created.id and created.HasField("created_at")
    nas = admin.CreateBackupTarget(
        B.CreateBackupTargetRequest(name="nas", kind="proxmox", options_json='{"storage": "local"}')
    ).target

    got = mine.GetBackupTarget(B.GetBackupTargetRequest(name="offsite")).target
    listed = _pages(mine.ListBackupTargets, B.ListBackupTargetsRequest, "targets")
    assert got == created and listed == [nas, created]  # by name
    for message in (created, got, *listed):
        wire = message.SerializeToString()
        assert secret.encode() not in wire and b"srv/backups" not in wire
    assert agent.px.store.backups.target_options("offsite")["password"] == secret  # stored, not shown

    # members read targets but never configure them
    _refused(
        lambda: mine.CreateBackupTarget(B.CreateBackupTargetRequest(name="mine", kind="proxmox")), C.PERMISSION_DENIED
    )
    _refused(lambda: mine.DeleteBackupTarget(B.DeleteBackupTargetRequest(name="nas")), C.PERMISSION_DENIED)
    # bad requests, named
    _refused(
        lambda: admin.CreateBackupTarget(B.CreateBackupTargetRequest(name="nas", kind="proxmox")), C.ALREADY_EXISTS
    )
    _refused(
        lambda: admin.CreateBackupTarget(
            B.CreateBackupTargetRequest(name="x", kind="proxmox", options_json="{storage")
        ),
        C.INVALID_ARGUMENT,
        "options_json",
    )
    _refused(
        lambda: admin.CreateBackupTarget(
            B.CreateBackupTargetRequest(name="x", kind="proxmox", options_json='["local"]')
        ),
        C.INVALID_ARGUMENT,
        "options_json",
    )
    _refused(
        lambda: admin.CreateBackupTarget(B.CreateBackupTargetRequest(name="x", kind="tape")), C.INVALID_ARGUMENT, "kind"
    )
    _refused(
        lambda: admin.CreateBackupTarget(
            B.CreateBackupTargetRequest(name="x", kind="proxmox", options_json='{"pool": "a"}')
        ),
        C.INVALID_ARGUMENT,
        "options",
    )
    _refused(
        lambda: admin.CreateBackupTarget(B.CreateBackupTargetRequest(name="Bad Name", kind="proxmox")),
        C.INVALID_ARGUMENT,
        "name",
    )
    _refused(lambda: admin.CreateBackupTarget(B.CreateBackupTargetRequest(kind="proxmox")), C.INVALID_ARGUMENT, "name")
    bad = sftp_options | {"path": "relative/dir"}
    _refused(
        lambda: admin.CreateBackupTarget(
            B.CreateBackupTargetRequest(name="x", kind="sftp", options_json=json.dumps(bad))
        ),
        C.INVALID_ARGUMENT,
        "options.path",
    )
    _refused(lambda: mine.GetBackupTarget(B.GetBackupTargetRequest(name="nowhere")), C.NOT_FOUND)
    _refused(lambda: mine.GetBackupTarget(B.GetBackupTargetRequest()), C.INVALID_ARGUMENT, "name")

    # a target in use stays; once unused it can go
    app = _deploy(agent, agent.member, "git-t")
    made = succeeded(
        agent,
        agent.member,
        mine.CreateBackup(
            B.CreateBackupRequest(app_id=app.id, target="nas", compression=B.BACKUP_COMPRESSION_LZO)
        ).operation.id,
    )
    backup = mine.GetBackup(B.GetBackupRequest(backup_id=made["backup_id"])).backup
    assert backup.target == "nas" and backup.volid.endswith(".tar.lzo")
    assert "still holds 1 backup" in _refused(
        lambda: admin.DeleteBackupTarget(B.DeleteBackupTargetRequest(name="nas")), C.FAILED_PRECONDITION
    )
    finish(agent, agent.admin, mine.DeleteBackup(B.DeleteBackupRequest(backup_id=backup.id)).operation.id)
    admin.DeleteBackupTarget(B.DeleteBackupTargetRequest(name="nas"))
    admin.DeleteBackupTarget(B.DeleteBackupTargetRequest(name="offsite"))
    _refused(lambda: admin.DeleteBackupTarget(B.DeleteBackupTargetRequest(name="nas")), C.NOT_FOUND)
    assert list(mine.ListBackupTargets(B.ListBackupTargetsRequest()).targets) == []
