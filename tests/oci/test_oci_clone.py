"""Clone of a native OCI app through the Proxmox API only, on a host with no SSH access at all."""

from __future__ import annotations

import pytest
from fakepve.lxc import split_props

from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationFailed, ValidationError
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.operations.clone import OCI_CLONE_STEPS
from tests.harness.pve import HarnessPve

pytestmark = pytest.mark.pve9_only


def _deploy(px: Proximity, hostname: str = "graf-1") -> App:
    app: App = px.apps.deploy("grafana", hostname=hostname).wait(timeout=60)
    assert app.config["runtime"] == "oci" and app.vmid is not None
    return app


def _marks(events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.message.split(":")[0] for e in events if e.message.endswith(": started")]


def _net0(pve: HarnessPve, vmid: int) -> dict[str, str]:
    return dict(split_props(str(pve.ct(vmid).config["net0"]))[1])


def test_clone_of_a_running_oci_app_without_ssh(nossh: Proximity, pve: HarnessPve) -> None:
    source = _deploy(nossh)
    assert source.vmid is not None
    source_config = dict(pve.ct(source.vmid).config)
    pve.recorded.clear()

    op = nossh.apps.clone(source.id, hostname="graf-2")
    clone = op.wait(timeout=60)
    events = list(op.events())
    assert _marks(events) == list(OCI_CLONE_STEPS)
    assert "password" not in OCI_CLONE_STEPS and "up" not in OCI_CLONE_STEPS
    assert events[-1].message == "clone succeeded"

    # a new OCI app: its own id, hostname, VMID and address; the same image, ports and template
    assert clone.id != source.id
    assert (clone.hostname, clone.status, clone.node) == ("graf-2", AppStatus.RUNNING, "pve1")
    assert clone.vmid is not None and clone.vmid != source.vmid
    assert clone.config["runtime"] == "oci"
    assert clone.config["oci"] == source.config["oci"] and clone.config["template"] == source.config["template"]
    assert clone.ports == source.ports and clone.resources == source.resources
    assert clone.address == pve.lease_for(clone.vmid) != source.address
    assert clone.url == f"http://{clone.address}:3000"
    assert clone.config["cloned_from"] == {"app_id": source.id, "vmid": source.vmid}
    assert "compose_project" not in clone.config  # nothing of compose in an OCI app
    assert nossh.apps.get(clone.id) == clone

    # Proxmox copied the application container: entrypoint, environment (with the source's
    # generated secrets), console mode; a new MAC, host-managed networking kept
    ct = pve.ct(clone.vmid)
    assert ct.status == "running" and ct.config["hostname"] == "graf-2"
    for key in ("entrypoint", "env", "cmode", "ostype"):
        assert ct.config[key] == source_config[key], key
    net0, source_net0 = _net0(pve, clone.vmid), _net0(pve, source.vmid)
    assert net0["hwaddr"] != source_net0["hwaddr"]
    assert net0["host-managed"] == "1" and net0["ip"] == "dhcp"

    # the running source was cloned from a snapshot, deleted again; the source is untouched
    sent = [(r.method, r.path.removeprefix("/api2/json")) for r in pve.recorded]
    assert [p for m, p in sent if m == "POST" and p.endswith(f"/lxc/{source.vmid}/snapshot")] == [
        f"/nodes/pve1/lxc/{source.vmid}/snapshot"
    ]
    assert any(m == "DELETE" and f"/lxc/{source.vmid}/snapshot/px-clone-" in p for m, p in sent)
    assert pve.ct(source.vmid).snapshots == {}
    assert {k: v for k, v in pve.ct(source.vmid).config.items() if k != "parent"} == source_config
    after = nossh.apps.get(source.id)
    assert (after.status, after.vmid, after.address) == (AppStatus.RUNNING, source.vmid, source.address)
    # nothing re-sent the environment: the secrets never left Proxmox during the clone
    assert not any(r.method == "PUT" and "env" in r.params() for r in pve.recorded)

    # the same generated secrets as the source (they are in the copied env and data); no root password
    mine, theirs = nossh.apps.credentials(clone.id), nossh.apps.credentials(source.id)
    assert mine.secrets == theirs.secrets and mine.secrets
    assert mine.root_password is None
    for value in mine.secrets.values():
        assert all(value.get_secret_value() not in e.message for e in events)
    assert nossh.store.reservations.held_vmids(clone.host_id) == {source.vmid, clone.vmid}


def test_clone_of_a_stopped_oci_app_and_of_the_clone(nossh: Proximity, pve: HarnessPve) -> None:
    source = _deploy(nossh)
    assert source.vmid is not None
    nossh.apps.stop(source.id).wait(timeout=60)
    pve.recorded.clear()

    op = nossh.apps.clone(source.id, hostname="graf-copy")
    clone = op.wait(timeout=60)
    assert clone.status == AppStatus.RUNNING and clone.config["runtime"] == "oci"
    assert clone.vmid is not None and pve.ct(clone.vmid).status == "running"
    assert not any("/snapshot" in r.path for r in pve.recorded)
    assert any(e.message == "the source is stopped: cloned as it is, no snapshot needed" for e in op.events())
    assert nossh.apps.get(source.id).status == AppStatus.STOPPED and pve.ct(source.vmid).status == "stopped"

    second = nossh.apps.clone(clone.id, hostname="graf-copy-2").wait(timeout=60)
    assert second.config["runtime"] == "oci" and second.config["cloned_from"]["app_id"] == clone.id
    assert second.vmid is not None and pve.ct(second.vmid).config["env"] == pve.ct(source.vmid).config["env"]


def test_a_static_oci_clone_gets_its_own_address_host_managed(nossh: Proximity, pve: HarnessPve) -> None:
    nossh.settings.update(ip_mode="static", ip_pool="10.0.0.0/28", gateway="10.0.0.1")
    source = _deploy(nossh)
    assert source.address == "10.0.0.2" and source.vmid is not None
    clone = nossh.apps.clone(source.id, hostname="graf-2").wait(timeout=60)
    assert clone.vmid is not None and clone.address == "10.0.0.3"
    assert clone.url == "http://10.0.0.3:3000"
    net0 = _net0(pve, clone.vmid)
    assert (net0["ip"], net0["gw"], net0["host-managed"]) == ("10.0.0.3/28", "10.0.0.1", "1")
    assert _net0(pve, source.vmid)["ip"] == "10.0.0.2/28"
    assert [(r.address, r.app_id) for r in nossh.store.reservations.address_reservations()] == [
        ("10.0.0.2", source.id),
        ("10.0.0.3", clone.id),
    ]


def _assert_rolled_back(px: Proximity, pve: HarnessPve, source: App, step: str, failure: OperationFailed) -> None:
    assert failure.step == step
    assert [ct.vmid for ct in pve.cts] == [source.vmid]  # no half-made clone left
    assert source.vmid is not None
    assert pve.ct(source.vmid).snapshots == {} and pve.ct(source.vmid).lock is None
    assert pve.ct(source.vmid).status == "running"
    assert px.store.reservations.held_vmids(source.host_id) == {source.vmid}
    failed = next(a for a in px.apps.list() if a.id != source.id)
    assert failed.status == AppStatus.ERROR and failed.vmid is None
    assert failed.config["last_error"]["step"] == step
    assert px.apps.get(source.id).status == AppStatus.RUNNING


def test_an_oci_clone_that_does_not_start_is_rolled_back(nossh: Proximity, pve: HarnessPve) -> None:
    source = _deploy(nossh)
    pve.fail("POST", "/status/start", error="missing_rootfs_configuration", times=1)
    op = nossh.apps.clone(source.id, hostname="graf-2")
    with pytest.raises(OperationFailed) as failure:
        op.wait(timeout=60)
    messages = [e.message for e in op.events()]
    assert any(m.startswith("container ") and m.endswith(" destroyed") for m in messages)
    assert "rolled back" in messages
    _assert_rolled_back(nossh, pve, source, "start", failure.value)
    assert nossh.store.operations.side_effects(op.id) == []


def test_an_oci_clone_whose_entrypoint_exits_is_rolled_back(nossh: Proximity, pve: HarnessPve) -> None:
    source = nossh.apps.deploy_image("ghcr.io/example/crash:1", hostname="crash-1", ports=[80]).wait(timeout=60)
    assert source.status == AppStatus.RUNNING
    # from now on the image's entrypoint exits at once: the clone (the same image on its copied
    # disk) stops right after its start, and the address step says why
    pve.exiting_images.add("ghcr.io/example/crash:1")
    op = nossh.apps.clone(source.id, hostname="crash-2")
    with pytest.raises(OperationFailed) as failure:
        op.wait(timeout=60)
    assert "entrypoint exited" in str(failure.value)
    _assert_rolled_back(nossh, pve, source, "address", failure.value)


def test_an_oci_clone_to_another_node_is_moved_there(nossh: Proximity, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    pve.node_versions["pve2"] = "9.1.2"
    source = _deploy(nossh)
    op = nossh.apps.clone(source.id, hostname="graf-2", node="pve2")
    clone = op.wait(timeout=60)
    assert clone.vmid is not None and clone.node == "pve2" and clone.config["runtime"] == "oci"
    assert pve.ct(clone.vmid).node == "pve2" and pve.ct(clone.vmid).status == "running"
    assert _net0(pve, clone.vmid)["host-managed"] == "1"
    # local-lvm is not shared: cloned next to the source, then moved offline, as a compose clone is
    assert any("moving CT" in e.message and "to node pve2" in e.message for e in op.events())


def test_an_oci_clone_to_a_node_older_than_91_is_refused_at_once(nossh: Proximity, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    pve.node_versions["pve2"] = "8.4.1"
    source = _deploy(nossh)
    with pytest.raises(ValidationError) as refused:
        nossh.apps.clone(source.id, hostname="graf-2", node="pve2")
    assert refused.value.field == "node" and "PVE 8.4.1" in str(refused.value)
    assert [a.id for a in nossh.apps.list()] == [source.id]  # nothing recorded
    assert [o.kind for o in nossh.operations.list()] == ["deploy"]
    assert [ct.vmid for ct in pve.cts] == [source.vmid]


def test_an_oci_clone_gets_host_managed_networking_even_if_its_source_lost_it(
    nossh: Proximity, pve: HarnessPve
) -> None:
    source = _deploy(nossh)
    assert source.vmid is not None
    # an administrator's edit outside Proximity: the source's net0 without host-managed
    net0 = str(pve.ct(source.vmid).config["net0"])
    pve.ct(source.vmid).config["net0"] = ",".join(p for p in net0.split(",") if p != "host-managed=1")
    assert "host-managed" not in pve.ct(source.vmid).config["net0"]
    op = nossh.apps.clone(source.id, hostname="graf-2")
    clone = op.wait(timeout=60)
    assert clone.vmid is not None
    assert _net0(pve, clone.vmid)["host-managed"] == "1" and _net0(pve, clone.vmid)["ip"] == "dhcp"
    assert any(e.message.startswith("net0 of the clone set host-managed") and e.level == "warning" for e in op.events())
