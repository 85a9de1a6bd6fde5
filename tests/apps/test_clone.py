"""Clone through fakepve and the real sshd: running and stopped sources, another node, faults half-way."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import (
    AlreadyExistsError,
    BusyError,
    ConflictError,
    NotFoundError,
    OperationFailed,
    ValidationError,
)
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.operations.clone import CloneKind
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.guests import take_snapshot
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState

CLONE_STEPS = [
    "place",
    "reserve",
    "snapshot",
    "clone",
    "tidy",
    "move",
    "network",
    "start",
    "address",
    "password",
    "up",
    "health",
]


@pytest.fixture
def px(lab: Proximity, pve: HarnessPve, standin_state: StandinState) -> Proximity:
    """The lab, where a clone copies the stand-in container's files (the data), as the sandbox's
    clone does whenever ``container_files`` is set (tests/conftest.py sets it)."""
    assert pve.container_files is not None
    return lab


def _marks(op_events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.message.split(":")[0] for e in op_events if e.message.endswith(": started")]


def _root_hash(st: StandinState, vmid: int) -> str:
    line = next(ln for ln in st.ct_path(vmid, "/etc/passwd").read_text().splitlines() if ln.startswith("root:"))
    return line.split(":")[1]


def _crypt(password: str, salted_hash: str) -> str:
    salt = salted_hash.split("$")[2]
    out = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password.encode(), capture_output=True, check=True
    )
    return out.stdout.decode().strip()


def _deploy(px: Proximity, hostname: str = "git-1") -> App:
    app = px.apps.deploy("gitea", hostname=hostname).wait(timeout=60)
    assert isinstance(app, App)
    return app


def test_clone_of_a_running_app(px: Proximity, pve: HarnessPve, standin_state: StandinState) -> None:
    source = _deploy(px)
    assert source.vmid is not None
    source_config = dict(pve.ct(source.vmid).config)
    pve.recorded.clear()

    op = px.apps.clone(source.id, hostname="git-2")
    clone = op.wait(timeout=60)
    events = list(op.events())
    assert _marks(events) == CLONE_STEPS
    assert events[-1].message == "clone succeeded"

    # a new app with its own record, VMID, MAC and address, running the same compose project
    assert clone.id != source.id
    assert (clone.hostname, clone.status, clone.node) == ("git-2", AppStatus.RUNNING, "pve1")
    assert clone.vmid is not None and clone.vmid != source.vmid
    assert clone.catalog_id == "gitea"
    assert clone.resources == source.resources
    assert clone.address == pve.lease_for(clone.vmid) != source.address
    assert clone.url == f"http://{clone.address}:3000"
    assert clone.config["compose_project"] == "git-1"
    assert clone.config["cloned_from"] == {"app_id": source.id, "vmid": source.vmid}
    assert px.apps.get(clone.id) == clone
    ct = pve.ct(clone.vmid)
    assert ct.status == "running"
    assert ct.config["hostname"] == "git-2"
    assert ct.config["net0"] != source_config["net0"]  # PVE gave it a new MAC
    assert ("compose", "--file", "compose.yaml", "--project-name", "git-1", "up", "-d", "--remove-orphans") in [
        c.args for c in standin_state.calls("docker", vmid=clone.vmid)
    ]
    assert (standin_state.ct_path(clone.vmid, "/opt/proximity/git-1/compose.yaml")).is_file()

    # the snapshot was taken from the running source, cloned from, and deleted again
    sent = [(r.method, r.path) for r in pve.recorded]
    snapshot_posts = [p for m, p in sent if m == "POST" and p.endswith(f"/lxc/{source.vmid}/snapshot")]
    assert len(snapshot_posts) == 1
    assert any(m == "DELETE" and f"/lxc/{source.vmid}/snapshot/px-clone-" in p for m, p in sent)
    assert pve.ct(source.vmid).snapshots == {}

    # the source is untouched
    after = px.apps.get(source.id)
    assert (after.status, after.vmid, after.address) == (AppStatus.RUNNING, source.vmid, source.address)
    assert pve.ct(source.vmid).status == "running"
    assert {k: v for k, v in pve.ct(source.vmid).config.items() if k != "parent"} == source_config

    # same generated secrets (baked into the copied data), its own root password, set in the container
    mine, theirs = px.apps.credentials(clone.id), px.apps.credentials(source.id)
    assert mine.secrets == theirs.secrets and mine.secrets
    assert mine.root_password is not None and theirs.root_password is not None
    password = mine.root_password.get_secret_value()
    assert password != theirs.root_password.get_secret_value()
    stored = _root_hash(standin_state, clone.vmid)
    assert stored.startswith("$6$") and _crypt(password, stored) == stored
    assert _root_hash(standin_state, source.vmid) == "x"
    # the password went in on stdin: never in an argument or an event
    assert all(password not in " ".join(c.args) for c in standin_state.calls())
    assert all(password not in e.message for e in events)

    # the operation kept the source's VMID busy while it ran, and its VMID now belongs to the clone
    assert px.store.reservations.held_vmids(clone.host_id) == {source.vmid, clone.vmid}


def test_clone_of_a_stopped_app_needs_no_snapshot(px: Proximity, pve: HarnessPve, standin_state: StandinState) -> None:
    source = _deploy(px)
    assert source.vmid is not None
    px.apps.stop(source.id).wait(timeout=30)
    pve.recorded.clear()

    op = px.apps.clone(source.id, hostname="git-copy")
    clone = op.wait(timeout=60)

    assert clone.status == AppStatus.RUNNING
    assert clone.vmid is not None and pve.ct(clone.vmid).status == "running"
    assert not any("/snapshot" in r.path for r in pve.recorded)
    assert any(e.message == "the source is stopped: cloned as it is, no snapshot needed" for e in op.events())
    assert px.apps.get(source.id).status == AppStatus.STOPPED
    assert pve.ct(source.vmid).status == "stopped"
    # a clone of a clone keeps the first compose project
    second = px.apps.clone(clone.id, hostname="git-copy-2").wait(timeout=60)
    assert second.config["compose_project"] == "git-1"
    assert second.config["cloned_from"]["app_id"] == clone.id


def test_clone_to_another_node_moves_it_there(px: Proximity, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    source = _deploy(px)
    op = px.apps.clone(source.id, hostname="git-2", node="pve2")
    clone = op.wait(timeout=60)
    assert clone.vmid is not None
    assert clone.node == "pve2"
    assert pve.ct(clone.vmid).node == "pve2"
    assert pve.ct(clone.vmid).status == "running"
    assert pve.ct(source.vmid).node == "pve1"
    # local-lvm is not shared: cloned next to the source, then moved offline
    assert any("moving CT" in e.message and "to node pve2" in e.message for e in op.events())


def _assert_clean_failure(
    px: Proximity,
    pve: HarnessPve,
    source: App,
    op_step: str,
    failure: OperationFailed,
    source_config: dict[str, object],
) -> None:
    assert failure.step == op_step
    assert [ct.vmid for ct in pve.cts] == [source.vmid]  # no half-made clone left
    assert source.vmid is not None
    assert pve.ct(source.vmid).snapshots == {}
    assert pve.ct(source.vmid).status == "running"
    assert pve.ct(source.vmid).lock is None
    assert {k: v for k, v in pve.ct(source.vmid).config.items() if k != "parent"} == source_config
    assert px.store.reservations.held_vmids(source.host_id) == {source.vmid}
    failed = next(a for a in px.apps.list() if a.id != source.id)
    assert failed.status == AppStatus.ERROR
    assert failed.vmid is None
    assert failed.config["last_error"]["step"] == op_step
    assert px.apps.get(source.id).status == AppStatus.RUNNING


def test_a_clone_task_that_fails_leaves_no_snapshot_and_no_container(px: Proximity, pve: HarnessPve) -> None:
    source = _deploy(px)
    assert source.vmid is not None
    source_config = dict(pve.ct(source.vmid).config)
    pve.fail("POST", f"/nodes/pve1/lxc/{source.vmid}/clone", error="clone_failed")
    op = px.apps.clone(source.id, hostname="git-2")
    with pytest.raises(OperationFailed) as failure:
        op.wait(timeout=60)
    assert "clone failed" in str(failure.value)
    _assert_clean_failure(px, pve, source, "clone", failure.value, source_config)
    assert px.store.operations.side_effects(op.id) == []


def test_a_clone_that_does_not_start_is_destroyed(px: Proximity, pve: HarnessPve) -> None:
    source = _deploy(px)
    assert source.vmid is not None
    source_config = dict(pve.ct(source.vmid).config)
    pve.fail("POST", "/status/start", error="missing_rootfs_configuration", times=1)
    op = px.apps.clone(source.id, hostname="git-2")
    with pytest.raises(OperationFailed) as failure:
        op.wait(timeout=60)
    messages = [e.message for e in op.events()]
    assert any(m.startswith("container ") and m.endswith(" destroyed") for m in messages)
    assert "rolled back" in messages
    _assert_clean_failure(px, pve, source, "start", failure.value, source_config)


def test_a_clone_whose_password_cannot_be_set_is_destroyed(
    px: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    source = _deploy(px)
    assert source.vmid is not None
    source_config = dict(pve.ct(source.vmid).config)
    # a clone whose copied /etc has no passwd file: chpasswd cannot change anything
    pve.clone_listeners.append(lambda _src, new: standin_state.ct_path(new, "/etc/passwd").unlink())
    op = px.apps.clone(source.id, hostname="git-2")
    with pytest.raises(OperationFailed) as failure:
        op.wait(timeout=60)
    _assert_clean_failure(px, pve, source, "password", failure.value, source_config)


def test_bad_clone_requests_are_refused_before_anything_happens(px: Proximity, pve: HarnessPve) -> None:
    source = _deploy(px)
    pve.recorded.clear()
    with pytest.raises(ValidationError):
        px.apps.clone(source.id, hostname="not a hostname")
    with pytest.raises(ValidationError):
        px.apps.clone(source.id, hostname="git-2", node="bad node")
    with pytest.raises(AlreadyExistsError):
        px.apps.clone(source.id, hostname="git-1")
    with pytest.raises(NotFoundError):
        px.apps.clone("no-such-app", hostname="git-2")
    assert [r.method for r in pve.recorded] == []
    with pytest.raises(ValidationError, match="not in the cluster"):
        px.apps.clone(source.id, hostname="git-2", node="pve9")
    pve.add_node("pve2")
    pve.add_ct(900, node="pve2", config={"memory": 15000})  # pve2: 16 GiB x 2.0 minus 15000 MiB left
    with pytest.raises(ConflictError, match="cannot take 2048 MiB"):
        px.apps.clone(source.id, hostname="git-2", node="pve2")
    # two looks at quorum and /cluster/resources
    assert [(r.method, r.path.removeprefix("/api2/json")) for r in pve.recorded] == [
        ("GET", "/cluster/status"),
        ("GET", "/cluster/resources"),
    ] * 2
    assert [a.id for a in px.apps.list()] == [source.id]
    assert [o.kind for o in px.operations.list()] == ["deploy"]


def test_a_busy_or_unsettled_source_is_refused(px: Proximity, pve: HarnessPve) -> None:
    source = _deploy(px)
    pve.time_scale = 1.0
    assert source.vmid is not None
    pve.ct(source.vmid).shutdown_secs = 2
    stopping = px.apps.stop(source.id)
    with pytest.raises(BusyError):
        px.apps.clone(source.id, hostname="git-2")
    assert [a.id for a in px.apps.list()] == [source.id]  # the refused clone left no record
    stopping.wait(timeout=30)
    px.store.apps.update(source.id, status=AppStatus.ERROR)
    with pytest.raises(ConflictError, match="only a running or stopped app"):
        px.apps.clone(source.id, hostname="git-2")


def test_a_clone_whose_runner_died_is_rolled_back_by_the_takeover(
    px: Proximity, pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    """The state a runner leaves when it dies inside the clone step: snapshot taken, clone task
    still running (the new container locked), all of it journalled. The takeover waits for the
    task, then destroys the clone, deletes the snapshot and gives the VMID back."""
    source = _deploy(px)
    assert source.vmid is not None
    source_config = dict(pve.ct(source.vmid).config)
    store = px.store
    app = store.apps.create(
        hostname="git-2",
        host_id=source.host_id,
        status=AppStatus.CLONING,
        catalog_id="gitea",
        resources=source.resources,
        config=dict(source.config),
        node="pve1",
    )
    op = store.operations.create(
        "clone",
        steps=CloneKind.steps,
        app_id=app.id,
        host_id=source.host_id,
        vmid=source.vmid,
        params={"source_app_id": source.id, "source_vmid": source.vmid, "node": None},
    )
    assert store.operations.claim(op.id, "dead-runner", timedelta(seconds=-1))  # its lease ran out already
    newid = source.vmid + 1
    assert store.reservations.reserve_vmid(source.host_id, newid, operation_id=op.id, app_id=app.id)
    store.apps.update(app.id, vmid=newid)
    take_snapshot(pve_client, "pve1", source.vmid, "px-clone-dead")
    pve.time_scale = 1.0
    pve.ct_secs["clone"] = 2  # the clone task outlives its runner
    pve_client.post(
        f"/nodes/pve1/lxc/{source.vmid}/clone", newid=newid, hostname="git-2", full=True, snapname="px-clone-dead"
    )
    assert pve.ct(newid).lock == "create"
    store.operations.set_side_effects(
        op.id,
        "dead-runner",
        [
            {"kind": "vmid", "host_id": source.host_id, "vmid": newid},
            {
                "kind": "snapshot",
                "host_id": source.host_id,
                "node": "pve1",
                "vmid": source.vmid,
                "name": "px-clone-dead",
            },
            {"kind": "container", "host_id": source.host_id, "node": "pve1", "vmid": newid},
        ],
    )
    store.operations.set_step(op.id, "dead-runner", "clone")

    assert px.engine.recover() == [op.id]
    with pytest.raises(OperationFailed) as failure:
        px.operations.handle(op.id).wait(timeout=60)
    assert failure.value.step == "clone"
    messages = [e.message for e in px.operations.handle(op.id).events()]
    assert any(m.startswith(f"CT {newid} is locked (create)") for m in messages)
    _assert_clean_failure(px, pve, source, "clone", failure.value, source_config)
    assert store.operations.side_effects(op.id) == []


def test_a_clone_in_static_mode_gets_its_own_address_from_the_pool(px: Proximity, pve: HarnessPve) -> None:
    px.settings.update(ip_mode="static", ip_pool="10.0.0.0/28", gateway="10.0.0.1")
    source = _deploy(px)
    assert source.address == "10.0.0.2"
    clone = px.apps.clone(source.id, hostname="git-2").wait(timeout=60)
    assert clone.vmid is not None
    assert clone.address == "10.0.0.3"
    net0 = pve.ct(clone.vmid).config["net0"]
    assert "ip=10.0.0.3/28" in net0 and "gw=10.0.0.1" in net0 and "bridge=vmbr0" in net0
    assert "ip=10.0.0.2/28" in pve.ct(source.vmid).config["net0"]
    assert [(r.address, r.app_id) for r in px.store.reservations.address_reservations()] == [
        ("10.0.0.2", source.id),
        ("10.0.0.3", clone.id),
    ]
    # deleting the clone gives its address back; the source keeps its own
    px.apps.delete(clone.id).wait(timeout=30)
    assert px.store.reservations.held_addresses() == {"10.0.0.2"}
