"""Scenarios written once, run on ``Proximity.local()`` and on ``Proximity.connect()`` (see
conftest.py): the same calls must give the same kinds of answers, models and errors on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from proximity_sdk.errors import NotFoundError, OperationCancelled, ValidationError
from proximity_sdk.models.app import App, AppCredentials, AppStatus
from proximity_sdk.models.backup import Backup, BackupSchedule, BackupStatus
from proximity_sdk.models.catalog import CatalogApp
from proximity_sdk.models.host import Host, Node
from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus
from proximity_sdk.models.proxmox import StorageStatus
from proximity_sdk.models.update import UpdateWindow
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState

WAIT = 60


def _deploy(px: Any, hostname: str) -> tuple[Any, App]:
    op = px.apps.deploy("gitea", hostname=hostname)
    return op, op.wait(timeout=WAIT)


# -- reads ---------------------------------------------------------------------------------------


def test_hosts_nodes_and_storages(px: Any) -> None:
    hosts = px.hosts.list()
    assert isinstance(hosts, list) and [h.name for h in hosts] == ["lab"]
    lab = px.hosts.get("lab")
    assert isinstance(lab, Host) and lab.is_default and lab == hosts[0]
    assert px.hosts.get(lab.id) == lab and px.hosts.default() == lab
    assert lab.ca_pem and lab.ca_pem.startswith("-----BEGIN CERTIFICATE-----")

    nodes = px.nodes.list()
    assert [n.name for n in nodes] == ["pve1"] and all(isinstance(n, Node) for n in nodes)
    assert px.nodes.list("lab") == nodes
    node = px.nodes.get("lab", "pve1")
    assert node == nodes[0] and node.online and node.cpus and node.cpus > 0

    storages = px.nodes.storages("pve1", host="lab")
    assert storages and all(isinstance(s, StorageStatus) for s in storages)
    assert "local" in {s.storage for s in storages}
    backup_capable = px.nodes.storages("pve1", content="backup")
    assert backup_capable and all("backup" in s.content_types for s in backup_capable)

    check = px.hosts.test("lab")
    assert check.ok and check.nodes == ["pve1"] and check.host_id == lab.id


def test_catalog_list_get_search(px: Any) -> None:
    apps = px.catalog.list()
    assert len(apps) >= 5 and all(isinstance(a, CatalogApp) for a in apps)
    assert [(a.name.lower(), a.id) for a in apps] == sorted((a.name.lower(), a.id) for a in apps)
    gitea = px.catalog.get("gitea")
    assert gitea.id == "gitea" and gitea in apps and gitea.docker_compose["services"]

    found = px.catalog.search("gitea")
    assert found[0] == gitea
    in_category = px.catalog.list(gitea.category.upper())
    assert gitea in in_category and all(a.category.lower() == gitea.category.lower() for a in in_category)
    assert gitea.category in px.catalog.categories()

    stats = px.catalog.stats()
    assert stats.total_apps == len(apps) and stats.by_category[gitea.category] == len(in_category)
    assert px.catalog.origin("gitea").endswith("gitea.json")
    assert "gitea" in px.catalog and "no-such-app" not in px.catalog
    assert len(px.catalog) == len(apps)
    assert px.catalog.errors == [] and px.catalog.shadowed == []

    with pytest.raises(NotFoundError) as caught:
        px.catalog.get("gite")
    assert type(caught.value) is NotFoundError and "gitea" in caught.value.hint


# -- an app's life ---------------------------------------------------------------------------------


def test_deploy_events_and_wait(px: Any) -> None:
    op = px.apps.deploy("gitea", hostname="web1")
    assert op.id and repr(op).startswith("<Operation deploy ")
    events = list(op.events())
    assert all(isinstance(e, OperationEvent) and e.operation_id == op.id for e in events)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    record = op.get()
    assert isinstance(record, Operation) and record.status == OperationStatus.SUCCEEDED == op.status
    # every step reports "started" then "done", in the operation's own order of steps
    marks = [e.message for e in events if e.message.endswith((": started", ": done"))]
    assert marks == [f"{s}: {w}" for s in record.steps for w in ("started", "done")]
    assert events[-1].message == "deploy succeeded"

    app = op.wait(timeout=WAIT)
    assert isinstance(app, App) and app == px.apps.get(app.id)
    assert op.id in op._repr_html_() and "deploy" in op._repr_html_()  # the notebook card, on both
    assert app.hostname == "web1" and app.status == AppStatus.RUNNING and app.vmid is not None
    assert [a.id for a in px.apps.list()] == [app.id]
    assert px.apps.list(status="running", search="web") == [app]
    assert px.apps.list(host="lab") == [app] and px.apps.list(status=AppStatus.STOPPED) == []
    # later events of a finished operation: none, and no waiting
    assert list(op.events(after=events[-1].seq)) == []
    assert [e.seq for e in op.events(after=30, follow=False)] == [e.seq for e in events if e.seq > 30]


def test_stop_start_restart_logs_credentials(px: Any, standin_state: StandinState) -> None:
    _, app = _deploy(px, "web2")
    stopped = px.apps.stop(app.id).wait(timeout=WAIT)
    assert isinstance(stopped, App) and stopped.status == AppStatus.STOPPED == px.apps.get(app.id).status
    assert px.apps.start(app.id).wait(timeout=WAIT).status == AppStatus.RUNNING
    restart = px.apps.restart(app.id)
    assert restart.wait(timeout=WAIT) == px.apps.get(app.id)
    assert [e.step for e in restart.events() if e.message.endswith(": started")] == [
        "stop",
        "start",
        "address",
        "health",
    ]

    assert isinstance(px.apps.logs(app.id, tail=7), str)
    assert any(c.args[-2:] == ("--tail", "7") for c in standin_state.calls("docker", vmid=app.vmid))

    credentials = px.apps.credentials(app.id)
    assert isinstance(credentials, AppCredentials) and credentials.app_id == app.id
    assert credentials.root_password is not None and len(credentials.root_password.get_secret_value()) >= 12
    wanted = {s.name for s in px.catalog.get("gitea").secrets}
    assert set(credentials.secrets) == wanted and all(v.get_secret_value() for v in credentials.secrets.values())
    assert "**" in repr(credentials)  # secrets stay hidden in a repr on both sides

    # nothing newer in the catalog (and no pull): no update; a version the catalog lacks is refused
    assert px.apps.updates(pull=False) == [] == px.apps.updates(app_id=app.id, pull=False)
    with pytest.raises(ValidationError) as version:
        px.apps.update(app.id, version="0.0.0")
    assert type(version.value) is ValidationError and version.value.field == "version"

    # automatic updates: a window is kept and cleared; an open window with nothing newer starts nothing
    window = UpdateWindow(days=("sat", "mon"), start="03:30", minutes=90)
    assert px.apps.update_window(app.id) is None
    assert px.apps.set_update_window(app.id, window=window) == window == px.apps.update_window(app.id)
    assert window.days == ("mon", "sat")
    monday = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    assert list(px.apps.run_due_updates(now=monday)) == []
    assert px.apps.set_update_window(app.id, window=None) is None and px.apps.update_window(app.id) is None


def test_clone(px: Any, pve: HarnessPve) -> None:
    _, app = _deploy(px, "web3")
    op = px.apps.clone(app.id, hostname="web3-copy")
    copy = op.wait(timeout=WAIT)
    assert isinstance(copy, App) and copy == px.apps.get(copy.id)
    assert copy.id != app.id and copy.hostname == "web3-copy" and copy.vmid != app.vmid
    assert copy.status == AppStatus.RUNNING and copy.catalog_id == "gitea"
    assert px.apps.credentials(copy.id).secrets == px.apps.credentials(app.id).secrets
    assert sorted(a.hostname for a in px.apps.list()) == ["web3", "web3-copy"]
    assert px.apps.delete(copy.id).wait(timeout=WAIT) is None
    with pytest.raises(NotFoundError):
        px.apps.get(copy.id)


# -- backups -----------------------------------------------------------------------------------------


def test_backup_create_list_get_restore_delete(px: Any) -> None:
    _, app = _deploy(px, "web4")
    backup = px.backups.create(app.id, note="before upgrade").wait(timeout=WAIT)
    assert isinstance(backup, Backup) and backup.status == BackupStatus.COMPLETED
    assert backup.app_id == app.id and backup.note == "before upgrade" and backup.volid
    assert px.backups.get(backup.id) == backup
    assert px.backups.list(app.id) == [backup] == px.backups.list(status="completed")
    assert px.backups.list(status=BackupStatus.FAILED) == []
    stats = px.backups.stats(app.id)
    assert stats.total == 1 and stats.by_status == {BackupStatus.COMPLETED: 1}

    restored = px.backups.restore(backup.id).wait(timeout=WAIT)
    assert isinstance(restored, App) and restored.id == app.id and restored == px.apps.get(app.id)
    assert restored.status == AppStatus.RUNNING and restored.vmid != app.vmid  # a new container

    assert px.backups.delete(backup.id).wait(timeout=WAIT) is None
    with pytest.raises(NotFoundError):
        px.backups.get(backup.id)
    assert px.backups.list(app.id) == []


def test_schedule_and_unschedule(px: Any) -> None:
    _, app = _deploy(px, "web5")
    schedule = px.backups.schedule(app.id, cron="0 3 * * *", keep_last=3, keep_daily=None)
    assert isinstance(schedule, BackupSchedule) and schedule.app_id == app.id and schedule.keep_last == 3
    assert schedule.keep_daily is None and schedule.next_run_at is not None and schedule.next_run_at.hour == 3
    no_last = px.backups.schedule(app.id, cron="30 * * * *", keep_last=None, keep_weekly=2)
    assert no_last.keep_last is None and no_last.keep_weekly == 2
    assert {s.id for s in px.backups.schedules(app.id)} == {schedule.id, no_last.id}
    px.backups.unschedule(schedule.id)
    assert px.backups.schedules() == [no_last]
    # run_due at a chosen moment: the due schedule's backup starts, and only once
    moment = no_last.next_run_at + timedelta(seconds=1)
    (due,) = px.backups.run_due(now=moment)
    backup = due.wait(timeout=WAIT)
    assert isinstance(backup, Backup) and backup.schedule_id == no_last.id
    assert px.backups.run_due(now=moment) == []
    with pytest.raises(NotFoundError):
        px.backups.unschedule(schedule.id)
    with pytest.raises(ValidationError) as caught:
        px.backups.schedule(app.id, cron="every day")
    assert caught.value.field == "cron"


# -- operations ----------------------------------------------------------------------------------------


def test_operations_list_get_watch_cancel(px: Any, standin_state: StandinState) -> None:
    deploy, app = _deploy(px, "web6")
    stop = px.apps.stop(app.id)
    stop.wait(timeout=WAIT)
    listed = px.operations.list(app_id=app.id)
    assert [o.id for o in listed] == [stop.id, deploy.id]  # newest first
    assert px.operations.list(app_id=app.id, limit=1) == [stop.get()]
    assert px.operations.list(status=OperationStatus.SUCCEEDED, app_id=app.id) == listed
    assert px.operations.get(deploy.id) == deploy.get() == listed[1]
    assert list(px.operations.watch(deploy.id, after=3)) == list(deploy.events(after=3))
    assert px.operations.handle(stop.id).wait(timeout=WAIT) == px.apps.get(app.id)

    # a slow `docker compose pull` holds the deploy in its `up` step while it is cancelled
    standin_state.script("docker", match="pull", times=1, sleep=3)
    op = px.apps.deploy("gitea", hostname="web7")
    for event in op.events(timeout=WAIT):
        if event.message == "up: started":
            break
    requested = px.operations.cancel(op.id)
    assert requested.id == op.id and requested.cancel_requested
    with pytest.raises(OperationCancelled):
        op.wait(timeout=WAIT)
    assert op.status == OperationStatus.CANCELLED
    assert op.cancel().status == OperationStatus.CANCELLED  # a finished operation stays as it is
    (rolled_back,) = px.apps.list(search="web7")  # the cancelled deploy was rolled back: no container
    assert rolled_back.status == AppStatus.ERROR and rolled_back.vmid is None, rolled_back


# -- errors ---------------------------------------------------------------------------------------------


def test_errors_are_the_sdks_own(px: Any) -> None:
    with pytest.raises(NotFoundError) as missing:
        px.apps.get("no-such-app")
    assert type(missing.value) is NotFoundError
    with pytest.raises(NotFoundError):
        px.operations.get("no-such-operation")

    with pytest.raises(ValidationError) as bad:
        px.apps.deploy("gitea", hostname="Not_A_Hostname!")
    assert type(bad.value) is ValidationError and bad.value.field == "hostname"
    assert "hostname" in str(bad.value)
    with pytest.raises(ValidationError) as status:
        px.apps.list(status="sleeping")
    assert status.value.field == "status"
    with pytest.raises(ValidationError) as mode:
        px.backups.create("whatever", mode="fast")
    assert mode.value.field == "mode"
    with pytest.raises(ValidationError) as tail:
        px.apps.logs("whatever", tail=0)
    assert tail.value.field == "tail"
    assert px.apps.list() == []  # nothing was recorded by a refused call
