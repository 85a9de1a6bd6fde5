"""A full deploy of a multi-service catalog app through fakepve and the real sshd, then its lifecycle."""

from __future__ import annotations

import json

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import AlreadyExistsError, BusyError, NotFoundError, ValidationError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.resources import Resources
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState

DEPLOY_STEPS = ["place", "reserve", "template", "create", "start", "address", "docker", "project", "up", "health"]
NASTY = 'a\'b "c" $(touch /tmp/pwned) `id`; rm -rf / && echo ${HOME} \\ | > <\n\tend ünïcode'


def _step_marks(events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.message for e in events if e.message.endswith((": started", ": done"))]


def test_deploy_gitea_end_to_end(lab: Proximity, pve: HarnessPve, standin_state: StandinState) -> None:
    op = lab.apps.deploy("gitea", hostname="git-1", environment={"GITEA__server__DOMAIN": NASTY})
    app = op.wait(timeout=60)
    events = list(op.events())

    # the events tell the whole story, in order
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert _step_marks(events) == [f"{s}: {w}" for s in DEPLOY_STEPS for w in ("started", "done")]
    progress = [e.progress for e in events if e.progress is not None]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    assert events[-1].message == "deploy succeeded"
    assert any(e.step == "template" and "downloading template" in e.message for e in events)
    assert list(op.events(after=events[-3].seq)) == events[-2:]

    # the record
    assert app.status == AppStatus.RUNNING
    assert app.node == "pve1"
    assert app.address == pve.lease_for(app.vmid)
    assert app.url == f"http://{app.address}:3000"
    assert {(p.service, p.port) for p in app.ports} == {("gitea", 3000), ("gitea", 2222)}
    assert app.resources == Resources(cores=2, memory_mb=2048, swap_mb=512, disk_gb=8)
    assert lab.apps.list() == [app]
    assert lab.apps.list(status="running", search="git") == [app]

    # the container in Proxmox
    ct = pve.ct(app.vmid)
    cfg = ct.config
    assert ct.status == "running"
    assert cfg["hostname"] == "git-1"
    assert cfg["unprivileged"] == 1
    assert cfg["features"] == "nesting=1"
    assert cfg["memory"] == 2048
    assert cfg["cores"] == 2
    assert cfg["rootfs"].startswith("local-lvm:") and cfg["rootfs"].endswith("size=8G")
    assert "bridge=vmbr0" in cfg["net0"] and "ip=dhcp" in cfg["net0"]
    assert "proximity" in cfg["tags"].split(";")

    # what reached the node: pct exec with one quoted script each, pct push for the project files
    pct = [c.args for c in standin_state.calls("pct")]
    # docker, project dir, compose.yaml, .env, up, image digests, health
    assert [a[0] for a in pct] == ["exec", "exec", "push", "push", "exec", "exec", "exec"]
    for args in pct:
        assert args[1] == str(app.vmid)
    for args in (a for a in pct if a[0] == "exec"):
        assert args[2:5] == ("--", "sh", "-c")
    assert pct[2][3:] == ("/opt/proximity/git-1/compose.yaml", "--perms", "0640")
    assert pct[3][3:] == ("/opt/proximity/git-1/.env", "--perms", "0600")
    docker = [c.args for c in standin_state.calls("docker", vmid=app.vmid)]
    assert ("compose", "--file", "compose.yaml", "--project-name", "git-1", "up", "-d", "--remove-orphans") in docker
    # the digest of every image it runs is recorded, for px.apps.updates()
    assert ("compose", "--file", "compose.yaml", "--project-name", "git-1", "config", "--images") in docker
    assert sorted(app.config["images"]) == sorted(
        s["image"] for s in json.loads(app.config["compose_text"])["services"].values()
    )
    assert all(digest.startswith("sha256:") for digest in app.config["images"].values())

    # the compose project in the container: the odd value arrived byte for byte, no literal secret
    project = standin_state.ct_path(app.vmid, "/opt/proximity/git-1")
    compose = json.loads((project / "compose.yaml").read_text())
    assert compose["services"]["gitea"]["environment"]["GITEA__server__DOMAIN"] == NASTY.replace("$", "$$")
    assert compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == "${DB_PASSWORD}"
    creds = lab.apps.credentials(app.id)
    password = creds.secrets["DB_PASSWORD"].get_secret_value()
    assert (project / ".env").read_text() == f"DB_PASSWORD='{password}'\n"
    assert len(password) >= 20
    assert creds.root_password is not None and len(creds.root_password.get_secret_value()) >= 20
    assert password not in repr(creds)


def test_lifecycle_stop_start_restart_delete(lab: Proximity, pve: HarnessPve, standin_state: StandinState) -> None:
    app = lab.apps.deploy("gitea", hostname="git-2").wait(timeout=60)
    vmid = app.vmid

    stopped = lab.apps.stop(app.id).wait(timeout=30)
    assert stopped.status == AppStatus.STOPPED
    assert pve.ct(vmid).status == "stopped"

    again = lab.apps.stop(app.id)
    assert again.wait(timeout=30).status == AppStatus.STOPPED
    assert any(e.message == "already stopped" for e in again.events())

    started = lab.apps.start(app.id).wait(timeout=30)
    assert started.status == AppStatus.RUNNING
    assert pve.ct(vmid).status == "running"

    op = lab.apps.restart(app.id)
    assert op.wait(timeout=30).status == AppStatus.RUNNING
    assert _step_marks(list(op.events())) == [
        f"{s}: {w}" for s in ("stop", "start", "address", "health") for w in ("started", "done")
    ]

    logs = lab.apps.logs(app.id, tail=50)
    assert isinstance(logs, str)
    assert ("compose", "--file", "compose.yaml", "--project-name", "git-2", "logs", "--no-color", "--tail", "50") in [
        c.args for c in standin_state.calls("docker", vmid=vmid)
    ]

    assert lab.apps.delete(app.id).wait(timeout=30) is None
    assert pve.ct(vmid) is None
    with pytest.raises(NotFoundError):
        lab.apps.get(app.id)
    # the VMID is free again for the next deploy
    assert lab.store.reservations.held_vmids(app.host_id) == set()


def test_delete_without_destroy_keeps_the_container(lab: Proximity, pve: HarnessPve) -> None:
    app = lab.apps.deploy("gitea", hostname="git-3").wait(timeout=60)
    lab.apps.delete(app.id, destroy=False).wait(timeout=30)
    assert pve.ct(app.vmid).status == "running"
    assert lab.apps.list() == []


def test_a_deploy_reads_the_cluster_listing_once(lab: Proximity, pve: HarnessPve) -> None:
    """Placement and VMID allocation share one /cluster/resources answer (the allocation skips
    the guests it listed); the container's id still comes from /cluster/nextid."""
    lab.apps.deploy("gitea", hostname="git-warm").wait(timeout=60)  # the template download
    mark = len(pve.recorded)
    app = lab.apps.deploy("gitea", hostname="git-once").wait(timeout=60)
    paths = [r.path for r in pve.recorded[mark:] if r.method == "GET"]
    assert paths.count("/api2/json/cluster/resources") == 1
    assert paths.count("/api2/json/cluster/nextid") == 1
    assert app.vmid is not None and pve.ct(app.vmid).status == "running"


def test_bad_requests_are_refused_before_anything_happens(lab: Proximity, pve: HarnessPve) -> None:
    pve.recorded.clear()
    with pytest.raises(ValidationError):
        lab.apps.deploy("gitea", hostname="not a hostname")
    with pytest.raises(ValidationError):
        lab.apps.deploy("gitea", hostname="-bad")
    with pytest.raises(NotFoundError):
        lab.apps.deploy("no-such-app", hostname="x1")
    with pytest.raises(ValidationError):
        lab.apps.deploy("gitea", hostname="x2", environment={"BAD NAME": "x"})
    with pytest.raises(ValidationError):
        lab.apps.deploy("gitea", hostname="x3", resources=Resources(memory_mb=64))  # below gitea's minimum
    with pytest.raises(ValidationError):
        lab.apps.deploy("gitea", hostname="x4", node="bad node")
    with pytest.raises(ValidationError):
        lab.apps.list(status="sleeping")
    assert pve.recorded == []
    assert lab.apps.list() == []
    assert lab.operations.list() == []


def test_a_refused_submission_leaves_no_app_and_no_operation(lab: Proximity, pve: HarnessPve) -> None:
    """The app's record, its secrets and its operation are one write: refused, none of it stays."""
    pve.recorded.clear()
    lab.engine.close()
    with pytest.raises(ValidationError, match="engine is closed"):
        lab.apps.deploy_image("registry.local/app:1", hostname="late-1", ports=[80], environment={"DB_PASSWORD": "s3"})
    assert lab.apps.list() == [] and lab.operations.list() == []
    assert pve.recorded == []


def test_hostname_is_unique_and_one_operation_per_app(lab: Proximity, pve: HarnessPve) -> None:
    app = lab.apps.deploy("gitea", hostname="git-4").wait(timeout=60)
    with pytest.raises(AlreadyExistsError):
        lab.apps.deploy("gitea", hostname="git-4")
    pve.time_scale = 1.0
    pve.ct(app.vmid).shutdown_secs = 2
    stopping = lab.apps.stop(app.id)
    with pytest.raises(BusyError):
        lab.apps.start(app.id)
    assert stopping.wait(timeout=30).status == AppStatus.STOPPED
    assert lab.apps.start(app.id).wait(timeout=30).status == AppStatus.RUNNING
