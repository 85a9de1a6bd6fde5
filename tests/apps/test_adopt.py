"""Discover and adopt containers created directly in Proxmox (fakepve), without touching them."""

from __future__ import annotations

import copy
import threading

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    OperationFailed,
    ProximityError,
    ValidationError,
)
from proximity_sdk.models.app import AppStatus, Port
from proximity_sdk.models.resources import Resources
from proximity_sdk.operations.adopt import parse_listening
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState

# what `ss -Htlnp` prints in a container running nginx on 80 (v4 and v6), postgres on loopback
# only, and something without a visible process on 8443
SS_OUTPUT = (
    'LISTEN 0      511          0.0.0.0:80        0.0.0.0:*    users:(("nginx",pid=120,fd=6))\n'
    'LISTEN 0      511             [::]:80           [::]:*    users:(("nginx",pid=120,fd=7))\n'
    'LISTEN 0      4096       127.0.0.1:5432      0.0.0.0:*    users:(("postgres",pid=99,fd=5))\n'
    "LISTEN 0      128                *:8443            *:*\n"
)
DHCP = "name=eth0,bridge=vmbr0,ip=dhcp"


def _ss_prints(state: StandinState, output: str) -> None:
    """Replace the lab's default `ss` answer with ``output``."""
    (state.path / "rules" / "ss.json").unlink(missing_ok=True)
    state.script("ss", stdout=output)


def _mutations(pve: HarnessPve, since: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in pve.recorded[since:] if r.method != "GET"]


@pytest.fixture
def legacy(pve: HarnessPve) -> HarnessPve:
    """Containers made by hand in Proxmox: a running wiki, a stopped database, a template."""
    pve.add_ct(
        150,
        "legacy-wiki",
        node="pve1",
        status="running",
        config={"cores": 2, "memory": 1024, "swap": 256, "net0": DHCP, "tags": "wiki;prod"},
    )
    pve.add_ct(151, "old-db", node="pve1", status="stopped", config={"memory": 2048, "net0": DHCP})
    pve.add_ct(9000, "base-template", node="pve1", template=True)
    return pve


def test_discover_then_adopt_a_running_container(
    lab: Proximity, legacy: HarnessPve, standin_state: StandinState
) -> None:
    _ss_prints(standin_state, SS_OUTPUT)
    found = {c.vmid: c for c in lab.apps.discover()}
    assert set(found) == {150, 151}  # the template is not offered
    wiki = found[150]
    assert (wiki.node, wiki.name, wiki.status, wiki.tags) == ("pve1", "legacy-wiki", "running", ("wiki", "prod"))
    assert wiki.resources == Resources(cores=2, memory_mb=1024, disk_gb=8)
    assert found[151].status == "stopped"

    before = copy.deepcopy(legacy.ct(150).config)
    mark = len(legacy.recorded)
    op = lab.apps.adopt(150, node="pve1")
    app = op.wait(timeout=30)

    assert app.status == AppStatus.RUNNING
    assert app.adopted
    assert (app.hostname, app.node, app.vmid) == ("legacy-wiki", "pve1", 150)
    assert app.resources == Resources(cores=2, memory_mb=1024, swap_mb=256, disk_gb=8)
    # loopback-only postgres is not an app port; v4 and v6 listeners of one port count once
    assert app.ports == (Port(service="nginx", port=80), Port(service="tcp-8443", port=8443))
    assert app.address == legacy.lease_for(150)
    assert app.url == f"http://{app.address}:80"
    assert app.config["container_name"] == "legacy-wiki"
    assert app.config["proxmox_config"]["memory"] == 1024
    # the ports were read through the node shell, inside that container
    ss_calls = standin_state.calls("ss", vmid=150)
    assert [c.args for c in ss_calls] == [("-Htlnp",)]
    # nothing was changed: only reads reached Proxmox, and the config is as it was
    assert _mutations(legacy, mark) == []
    assert legacy.ct(150).config == before
    assert legacy.ct(150).status == "running"
    # the VMID is the app's now: discover no longer offers it
    assert [(r.vmid, r.app_id) for r in lab.store.reservations.vmid_reservations()] == [(150, app.id)]
    assert [c.vmid for c in lab.apps.discover()] == [151]
    steps = [e.message for e in op.events() if e.message.endswith(": started")]
    assert steps == ["inspect: started", "ports: started", "record: started"]


def test_adopt_a_stopped_container_under_a_chosen_name(
    lab: Proximity, legacy: HarnessPve, standin_state: StandinState
) -> None:
    app = lab.apps.adopt(151, hostname="db-archive").wait(timeout=30)
    assert app.status == AppStatus.STOPPED
    assert app.hostname == "db-archive"
    assert app.ports == ()
    assert app.resources.memory_mb == 2048
    assert standin_state.calls("pct") == []  # a stopped container is not entered
    assert legacy.ct(151).name == "old-db"  # the container keeps its own name
    with pytest.raises(ValidationError, match="adopted"):
        lab.apps.logs(app.id)  # no compose project of ours in it


def test_two_adoptions_never_collide(lab: Proximity, legacy: HarnessPve, standin_state: StandinState) -> None:
    _ss_prints(standin_state, SS_OUTPUT)
    legacy.ct(151).status = "running"
    wiki = lab.apps.adopt(150).wait(timeout=30)
    db = lab.apps.adopt(151).wait(timeout=30)
    # same ports, each on its own container's address: both kept
    assert [p.port for p in wiki.ports] == [p.port for p in db.ports] == [80, 8443]
    assert wiki.address != db.address
    held = {r.vmid: r.app_id for r in lab.store.reservations.vmid_reservations()}
    assert held == {150: wiki.id, 151: db.id}

    # a managed container cannot be adopted again, under any name
    with pytest.raises(AlreadyExistsError, match="already managed"):
        lab.apps.adopt(150, hostname="wiki-two")
    # and a name taken on the host cannot be given to another container
    legacy.add_ct(152, "scratch", status="stopped")
    with pytest.raises(AlreadyExistsError, match="legacy-wiki"):
        lab.apps.adopt(152, hostname="legacy-wiki")
    assert len(lab.apps.list()) == 2


def test_concurrent_adoptions_of_one_container_one_wins(lab: Proximity, legacy: HarnessPve) -> None:
    outcomes: list[object] = []
    barrier = threading.Barrier(4)

    def adopt(name: str) -> None:
        barrier.wait()
        try:
            outcomes.append(lab.apps.adopt(151, hostname=name).wait(timeout=30))
        except ProximityError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=adopt, args=(f"db-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    losses = [o for o in outcomes if isinstance(o, Exception)]
    assert len(wins) == 1
    assert all(isinstance(e, AlreadyExistsError) for e in losses), losses
    assert [a.vmid for a in lab.apps.list()] == [151]


def test_bad_adoptions_are_refused_before_anything_is_recorded(lab: Proximity, legacy: HarnessPve) -> None:
    legacy.add_ct(153, "Bad_Name.example", status="stopped")
    legacy.add_ct(154, "busy", status="stopped", lock="backup")
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"vmid": 999}, NotFoundError, "no container 999"),
        ({"vmid": 9000}, NotFoundError, "no container 9000"),  # a template
        ({"vmid": 150, "node": "pve2"}, NotFoundError, "on node 'pve1'"),
        ({"vmid": 150, "catalog_id": "no-such-app"}, NotFoundError, "no-such-app"),
        ({"vmid": 150, "hostname": "not a name"}, ValidationError, "not a valid host name"),
        ({"vmid": 153}, ValidationError, "not a valid host name"),
        ({"vmid": 154}, ConflictError, "locked"),
        ({"vmid": 42}, ValidationError, "vmid"),
    ]
    for kwargs, error, text in cases:
        vmid = kwargs.pop("vmid")
        with pytest.raises(error, match=text):
            lab.apps.adopt(vmid, **kwargs)  # type: ignore[arg-type]
    assert lab.apps.list() == []
    assert lab.store.reservations.vmid_reservations() == []
    assert lab.operations.list() == []
    # the bad name is fine once a good one is given
    assert lab.apps.adopt(153, hostname="good-name").wait(timeout=30).hostname == "good-name"


def test_adopt_with_a_catalog_id_uses_its_main_port(
    lab: Proximity, legacy: HarnessPve, standin_state: StandinState
) -> None:
    _ss_prints(standin_state, 'LISTEN 0 4096 0.0.0.0:3000 0.0.0.0:* users:(("gitea",pid=7,fd=3))\n')
    app = lab.apps.adopt(150, catalog_id="gitea", hostname="git-old").wait(timeout=30)
    assert app.catalog_id == "gitea"
    assert app.url == f"http://{legacy.lease_for(150)}:3000"


def test_a_failed_adoption_forgets_its_record(lab: Proximity, legacy: HarnessPve) -> None:
    legacy.fail("GET", "/nodes/pve1/lxc/150/config", 500, "boom")
    op = lab.apps.adopt(150)
    with pytest.raises(OperationFailed) as failed:
        op.wait(timeout=30)
    assert failed.value.step == "inspect"
    assert lab.apps.list() == []
    assert lab.store.reservations.vmid_reservations() == []
    assert legacy.ct(150).status == "running"
    assert 150 in [c.vmid for c in lab.apps.discover()]


def test_delete_without_destroy_leaves_an_adopted_container_untouched(lab: Proximity, legacy: HarnessPve) -> None:
    app = lab.apps.adopt(150).wait(timeout=30)
    before = copy.deepcopy(legacy.ct(150).config)
    mark = len(legacy.recorded)
    assert lab.apps.delete(app.id, destroy=False).wait(timeout=30) is None
    assert _mutations(legacy, mark) == []
    assert legacy.ct(150).config == before
    assert legacy.ct(150).status == "running"
    with pytest.raises(NotFoundError):
        lab.apps.get(app.id)
    assert lab.store.reservations.vmid_reservations() == []
    assert 150 in [c.vmid for c in lab.apps.discover()]  # adoptable again


def test_parse_listening_handles_what_ss_prints() -> None:
    text = (
        "LISTEN 0 128 127.0.0.53%lo:53 0.0.0.0:*\n"
        "LISTEN 0 128 [::1]:25 [::]:*\n"
        "LISTEN 0 128 [::ffff:127.0.0.1]:9000 *:*\n"
        "LISTEN 0 128 10.0.0.5:8080 0.0.0.0:*\n"
        "LISTEN 0 128 [fe80::1%eth0]:22 [::]:*\n"
        "garbage line\n"
        "LISTEN 0 128 0.0.0.0:70000 0.0.0.0:*\n"
        "\n"
    )
    assert parse_listening(text) == [Port(service="tcp-22", port=22), Port(service="tcp-8080", port=8080)]
