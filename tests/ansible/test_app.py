"""proximity.core.app through ansible-playbook: deploy, idempotence, check mode, diff, absent, errors."""

from __future__ import annotations

import json

import pytest

from proximity_sdk.errors import NotFoundError
from proximity_sdk.models.app import AppStatus
from tests.ansible.conftest import AnsibleLab
from tests.harness.pve import HarnessPve

STARTED = """
- name: gitea runs
  proximity.core.app:
    name: git-1
    catalog_id: gitea
    host: lab
    resources:
      cores: 2
      memory_mb: 1024
    state: started
"""

STOPPED = """
- name: gitea stopped
  proximity.core.app:
    name: git-1
    host: lab
    state: stopped
"""


@pytest.mark.timeout(600)
def test_app_lifecycle_is_idempotent_and_honours_check_and_diff(ansible_lab: AnsibleLab, pve: HarnessPve) -> None:
    # run 1: deploys it (and it runs)
    first = ansible_lab.play(STARTED)
    assert first.rc == 0, first
    assert first.recap["changed"] == 1
    returned = first.result("gitea runs")
    assert returned["changed"] is True
    assert returned["actions"] == ["deploy"]
    app = returned["app"]
    assert app["hostname"] == "git-1"
    assert app["status"] == "running"
    assert app["catalog_id"] == "gitea"
    assert app["resources"]["memory_mb"] == 1024
    assert "config" not in app
    assert returned["operation"] == returned["operations"][0]
    with ansible_lab.sdk() as px:
        recorded = px.apps.get(app["id"])
        assert recorded.status == AppStatus.RUNNING
        assert px.operations.get(returned["operation"]).kind == "deploy"
        # what was deployed carries a generated secret; the task result does not
        secret = px.apps.credentials(app["id"]).secrets["DB_PASSWORD"].get_secret_value()
    assert pve.ct(recorded.vmid).status == "running"
    assert secret not in first.stdout
    assert secret not in str(first.results)

    # run 2: the same playbook changes nothing
    second = ansible_lab.play(STARTED)
    assert second.rc == 0, second
    assert second.recap["changed"] == 0
    assert second.recap["ok"] == 1
    again = second.result("gitea runs")
    assert again["changed"] is False
    assert again["actions"] == []
    assert again["operation"] is None
    assert again["app"]["id"] == app["id"]

    # check mode + diff: stopping would change it; nothing is done
    checked = ansible_lab.play(STOPPED, "--check", "--diff")
    assert checked.rc == 0, checked
    assert checked.recap["changed"] == 1
    would = checked.result("gitea stopped")
    assert would["changed"] is True
    assert would["actions"] == ["stop"]
    assert would["operations"] == []
    assert would["diff"]["before"]["status"] == "running"
    assert would["diff"]["after"]["status"] == "stopped"
    assert '-    "status": "running"' in checked.stdout
    assert '+    "status": "stopped"' in checked.stdout
    with ansible_lab.sdk() as px:
        assert px.apps.get(app["id"]).status == AppStatus.RUNNING
        assert [op.kind for op in px.operations.list(app_id=app["id"])] == ["deploy"]
    assert pve.ct(recorded.vmid).status == "running"

    # for real, with --diff: it stops, and says so
    stopped = ansible_lab.play(STOPPED, "--diff")
    assert stopped.rc == 0, stopped
    assert stopped.recap["changed"] == 1
    result = stopped.result("gitea stopped")
    assert result["app"]["status"] == "stopped"
    assert result["diff"] == {
        "before": {
            "status": "running",
            "catalog_id": "gitea",
            "catalog_version": "1.22",
            "node": "pve1",
            "resources": {"cores": 2, "memory_mb": 1024, "swap_mb": 512, "disk_gb": 8},
        },
        "after": {
            "status": "stopped",
            "catalog_id": "gitea",
            "catalog_version": "1.22",
            "node": "pve1",
            "resources": {"cores": 2, "memory_mb": 1024, "swap_mb": 512, "disk_gb": 8},
        },
    }
    assert '+    "status": "stopped"' in stopped.stdout
    assert pve.ct(recorded.vmid).status == "stopped"
    assert ansible_lab.play(STOPPED).recap["changed"] == 0

    # absent: check mode keeps it, then it is gone (container too); then absent is a no-op
    absent = STOPPED.replace("gitea stopped", "gitea gone").replace("state: stopped", "state: absent")
    kept = ansible_lab.play(absent, "--check")
    assert kept.rc == 0, kept
    assert kept.recap["changed"] == 1
    with ansible_lab.sdk() as px:
        assert px.apps.get(app["id"]).status == AppStatus.STOPPED
    gone = ansible_lab.play(absent)
    assert gone.rc == 0, gone
    assert gone.recap["changed"] == 1
    assert "app" not in gone.result("gitea gone")
    with ansible_lab.sdk() as px, pytest.raises(NotFoundError):
        px.apps.get(app["id"])
    assert pve.ct(recorded.vmid) is None
    assert ansible_lab.play(absent).recap["changed"] == 0


@pytest.mark.timeout(300)
def test_mistakes_fail_with_the_sdks_message(ansible_lab: AnsibleLab) -> None:
    bad = ansible_lab.play("""
- name: unknown catalog app
  proximity.core.app:
    name: nope-1
    catalog_id: no-such-app
    state: started
""")
    assert bad.rc == 2
    assert bad.recap["failed"] == 1
    failed = bad.result("unknown catalog app")
    assert failed["msg"].startswith("no app 'no-such-app' in the catalog")
    assert failed["error"] == "NotFoundError"
    assert failed["hint"]
    assert "Traceback" not in bad.stdout + bad.stderr
    assert "Traceback" not in json.dumps(failed)  # ansible-core 2.19 says "(traceback unavailable)"

    # check mode catches it too, and nothing was recorded either way
    checked = ansible_lab.play(
        """
- name: unknown catalog app
  proximity.core.app:
    name: nope-1
    catalog_id: no-such-app
""",
        "--check",
    )
    assert checked.recap["failed"] == 1
    assert checked.result("unknown catalog app")["error"] == "NotFoundError"

    # a bad hostname is refused by the SDK's validation, before anything happens
    hostname = ansible_lab.play("""
- name: bad hostname
  proximity.core.app:
    name: "not a hostname"
    catalog_id: gitea
""")
    assert hostname.recap["failed"] == 1
    assert hostname.result("bad hostname")["error"] == "ValidationError"

    # no catalog_id for a missing app
    missing = ansible_lab.play("""
- name: nothing to deploy
  proximity.core.app:
    name: nope-2
""")
    assert missing.recap["failed"] == 1
    assert "catalog_id is needed" in missing.result("nothing to deploy")["msg"]
    with ansible_lab.sdk() as px:
        assert px.apps.list() == []


@pytest.mark.timeout(600)
def test_another_catalog_app_is_not_replaced_and_resources_and_node_converge(
    ansible_lab: AnsibleLab, pve: HarnessPve
) -> None:
    deployed = ansible_lab.play("""
- name: wiki
  proximity.core.app:
    name: wiki
    catalog_id: wikijs
""")
    assert deployed.rc == 0, deployed
    app = deployed.result("wiki")["app"]

    other = ansible_lab.play("""
- name: wiki as gitea
  proximity.core.app:
    name: wiki
    catalog_id: gitea
    state: started
""")
    assert other.recap["failed"] == 1
    failed = other.result("wiki as gitea")
    assert "runs catalog app 'wikijs', not 'gitea'" in failed["msg"]
    assert "state=absent" in failed["msg"]

    grow = """
- name: wiki bigger
  proximity.core.app:
    name: wiki
    resources:
      memory_mb: 3072
"""
    checked = ansible_lab.play(grow, "--check", "--diff")
    assert checked.recap["changed"] == 1
    would = checked.result("wiki bigger")
    assert would["actions"] == ["resize"]
    assert would["diff"]["after"]["resources"]["memory_mb"] == 3072
    assert pve.ct(app["vmid"]).config["memory"] == app["resources"]["memory_mb"]

    grown = ansible_lab.play(grow)
    assert grown.rc == 0, grown
    assert grown.result("wiki bigger")["app"]["resources"]["memory_mb"] == 3072
    assert pve.ct(app["vmid"]).config["memory"] == 3072
    assert ansible_lab.play(grow).recap["changed"] == 0
    with ansible_lab.sdk() as px:
        assert px.apps.get(app["id"]).resources.memory_mb == 3072

    # another node: the app is migrated there (running, it restarts there), once
    pve.add_node("pve2")
    move = """
- name: wiki on pve2
  proximity.core.app:
    name: wiki
    node: pve2
    state: started
"""
    moved = ansible_lab.play(move, "--diff")
    assert moved.rc == 0, moved
    result = moved.result("wiki on pve2")
    assert result["actions"] == ["migrate"]
    assert (result["diff"]["before"]["node"], result["diff"]["after"]["node"]) == ("pve1", "pve2")
    assert (result["app"]["node"], result["app"]["status"]) == ("pve2", "running")
    ct = pve.ct(app["vmid"])
    assert (ct.node, ct.status) == ("pve2", "running")
    assert ansible_lab.play(move).recap["changed"] == 0
