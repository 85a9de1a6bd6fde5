"""20 backups on one node at once (queued per node), and schedules with retention through run_due."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.backup import BackupStatus
from proximity_sdk.proxmox.tasks import wait_task
from tests.harness.pve import HarnessPve

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"


def _apps(lab: Proximity, pve: HarnessPve, count: int) -> list[App]:
    """Apps with a real (fake) container each; no compose project, which a backup does not need."""
    host = lab.hosts.list()[0]
    client = lab._clients.get(host.id)
    apps = []
    for n in range(count):
        vmid = 200 + n
        wait_task(
            client,
            str(
                client.post(
                    "/nodes/pve1/lxc",
                    vmid=vmid,
                    ostemplate=TEMPLATE,
                    hostname=f"app-{n}",
                    rootfs="local-lvm:4",
                    net0="name=eth0,bridge=vmbr0,ip=dhcp",
                )
            ),
        )
        apps.append(
            lab.store.apps.create(
                hostname=f"app-{n}", host_id=host.id, status=AppStatus.STOPPED, node="pve1", vmid=vmid
            )
        )
    return apps


@pytest.mark.pve(time_scale=0.01)
def test_twenty_backups_on_one_node_all_succeed_one_vzdump_at_a_time(lab: Proximity, pve: HarnessPve) -> None:
    apps = _apps(lab, pve, 20)
    pve.vzdump_secs = 20  # 0.2 s each at this time scale
    started = time.monotonic()
    ops = [lab.backups.create(app.id) for app in apps]
    backups = [op.wait(timeout=120) for op in ops]
    elapsed = time.monotonic() - started

    assert [b.status for b in backups] == [BackupStatus.COMPLETED] * 20
    assert len({b.volid for b in backups}) == 20
    assert [b.vmid for b in backups] == [a.vmid for a in apps]
    assert pve.vzdump_parallel["pve1"] == 1  # never two vzdumps on the node at once
    assert pve.vzdump_waited["pve1"] == 0  # so none waited for PVE's global lock: we queued them
    waited = [
        op
        for op in ops
        if any(e.message.startswith("waiting: another backup is running on node pve1") for e in op.events())
    ]
    assert len(waited) >= 15
    assert elapsed >= 20 * 0.2
    assert len(lab.backups.list()) == 20 and lab.backups.stats().by_status == {BackupStatus.COMPLETED: 20}


def test_run_due_backs_up_then_prunes_to_the_retention(lab: Proximity, pve: HarnessPve) -> None:
    [app] = _apps(lab, pve, 1)
    schedule = lab.backups.schedule(app.id, cron="0 3 * * *", keep_last=2)
    assert schedule.next_run_at is not None and schedule.next_run_at.hour == 3
    assert lab.backups.schedules(app.id) == [schedule]
    manual = lab.backups.create(app.id).wait(timeout=30)

    assert lab.backups.run_due(now=schedule.next_run_at - timedelta(seconds=1)) == []
    made = []
    moment = schedule.next_run_at
    for day in range(4):
        [op] = lab.backups.run_due(now=moment + timedelta(days=day))
        made.append(op.wait(timeout=30))
        assert lab.backups.run_due(now=moment + timedelta(days=day)) == []  # claimed once
        time.sleep(1.05)  # vzdump names archives by the second
    assert [b.schedule_id for b in made] == [schedule.id] * 4
    kept = lab.backups.list(app.id)
    assert {b.id for b in kept} == {made[2].id, made[3].id, manual.id}  # manual backups are never pruned
    assert {p.name for p in pve.dump_dir("local").iterdir()} == {str(b.volid).split("/")[-1] for b in kept}
    [last] = lab.backups.schedules(app.id)
    assert last.next_run_at == moment + timedelta(days=4)
    assert last.last_run_at == moment + timedelta(days=3)

    lab.backups.unschedule(schedule.id)
    assert lab.backups.schedules() == []
    assert lab.backups.run_due(now=datetime.now(UTC) + timedelta(days=30)) == []


def test_a_schedule_whose_app_is_busy_tries_again_soon(lab: Proximity, pve: HarnessPve) -> None:
    [app] = _apps(lab, pve, 1)
    schedule = lab.backups.schedule(app.id, cron="30 2 * * 0", keep_last=None, keep_daily=7)
    assert schedule.next_run_at is not None and schedule.next_run_at.weekday() == 6  # cron 0 is Sunday
    lab.store.apps.update(app.id, status=AppStatus.MIGRATING)
    assert lab.backups.run_due(now=schedule.next_run_at) == []
    [later] = lab.backups.schedules()
    assert later.next_run_at == schedule.next_run_at + timedelta(minutes=5)
    assert lab.backups.list() == []
