"""proximity.core.backup, app_info and catalog_info through ansible-playbook."""

from __future__ import annotations

import pytest

from proximity_sdk.models.backup import BackupStatus
from tests.ansible.conftest import AnsibleLab


def _backup(name: str, **options: object) -> str:
    lines = "".join(f"    {k}: {v}\n" for k, v in options.items())
    return f"- name: {name}\n  proximity.core.backup:\n    app: git-1\n{lines}"


@pytest.mark.timeout(600)
def test_backups_max_age_keep_latest_and_absent(ansible_lab: AnsibleLab) -> None:
    with ansible_lab.sdk() as px:
        app = px.apps.deploy("gitea", hostname="git-1", host="lab").wait(timeout=60)

    daily = _backup("daily", max_age="1d", keep_latest=2)
    first = ansible_lab.play(daily)
    assert first.rc == 0, first
    assert first.recap["changed"] == 1
    made = first.result("daily")
    assert made["created"] is True
    assert made["deleted"] == []
    assert made["backup"]["status"] == "completed"
    assert made["backup"]["app_id"] == app.id
    assert len(made["operations"]) == 1

    # within max_age: nothing to do, the same backup is reported
    second = ansible_lab.play(daily)
    assert second.rc == 0, second
    assert second.recap["changed"] == 0
    assert second.result("daily")["backup"]["id"] == made["backup"]["id"]
    assert second.result("daily")["operations"] == []

    # without max_age every run backs up; keep_latest prunes the oldest completed ones
    always = _backup("always", keep_latest=2)
    for _ in range(2):
        run = ansible_lab.play(always)
        assert run.rc == 0, run
        assert run.recap["changed"] == 1
    assert run.result("always")["deleted"] == [made["backup"]["id"]]
    with ansible_lab.sdk() as px:
        kept = px.backups.list(app.id)
        assert len(kept) == 2
        assert made["backup"]["id"] not in {b.id for b in kept}
        assert {b.status for b in kept} == {BackupStatus.COMPLETED}

    # check mode: one more would be made and one pruned, but nothing happens
    checked = ansible_lab.play(_backup("one", keep_latest=1), "--check")
    assert checked.rc == 0, checked
    assert checked.recap["changed"] == 1
    would = checked.result("one")
    assert would["created"] is True
    assert len(would["deleted"]) == 2  # the would-be new one is the newest: both existing ones go
    assert would["operations"] == []
    with ansible_lab.sdk() as px:
        assert {b.id for b in px.backups.list(app.id)} == {b.id for b in kept}

    # absent by id: gone, then a no-op
    newest = run.result("always")["backup"]["id"]
    absent = f"- name: drop\n  proximity.core.backup:\n    id: {newest}\n    state: absent\n"
    dropped = ansible_lab.play(absent)
    assert dropped.rc == 0, dropped
    assert dropped.recap["changed"] == 1
    assert dropped.result("drop")["deleted"] == [newest]
    with ansible_lab.sdk() as px:
        assert newest not in {b.id for b in px.backups.list(app.id)}
    assert ansible_lab.play(absent).recap["changed"] == 0

    # a backup of an app that does not exist
    missing = ansible_lab.play("- name: ghost\n  proximity.core.backup:\n    app: ghost\n")
    assert missing.recap["failed"] == 1
    assert missing.result("ghost")["msg"] == "no app named 'ghost'"
    bad_age = ansible_lab.play(_backup("bad age", max_age="soon"))
    assert bad_age.recap["failed"] == 1
    assert "max_age must be a duration" in bad_age.result("bad age")["msg"]


@pytest.mark.timeout(300)
def test_info_modules_read_and_never_change(ansible_lab: AnsibleLab) -> None:
    with ansible_lab.sdk() as px:
        app = px.apps.deploy("gitea", hostname="git-1", host="lab").wait(timeout=60)
        backup = px.backups.create(app.id).wait(timeout=60)

    run = ansible_lab.play(
        """
- name: all apps
  proximity.core.app_info:
- name: one app with backups
  proximity.core.app_info:
    name: git-1
    backups: true
- name: a missing app
  proximity.core.app_info:
    name: git
- name: stopped apps
  proximity.core.app_info:
    status: stopped
- name: git catalog
  proximity.core.catalog_info:
    search: git
- name: one catalog entry
  proximity.core.catalog_info:
    id: gitea
- name: no such entry
  proximity.core.catalog_info:
    id: no-such-app
  ignore_errors: true
""",
        "--check",
    )
    assert run.rc == 0, run
    assert run.recap["changed"] == 0
    assert run.recap["failed"] == 0  # ignored
    assert run.recap["ignored"] == 1
    everything = run.result("all apps")["apps"]
    assert [a["id"] for a in everything] == [app.id]
    assert "config" not in everything[0]
    one = run.result("one app with backups")["apps"]
    assert one[0]["hostname"] == "git-1"
    assert [b["id"] for b in one[0]["backups"]] == [backup.id]
    assert run.result("a missing app")["apps"] == []  # a search for "git" matched git-1: names are exact
    assert run.result("stopped apps")["apps"] == []
    git = run.result("git catalog")
    assert "gitea" in [a["id"] for a in git["apps"]]
    assert all("git" in " ".join([a["id"], a["name"], a["description"], *a["tags"]]).lower() for a in git["apps"])
    assert "Development" in git["categories"]
    entry = run.result("one catalog entry")["apps"]
    assert [e["id"] for e in entry] == ["gitea"]
    assert entry[0]["min_memory"] == 1024
    assert run.result("no such entry")["error"] == "NotFoundError"
