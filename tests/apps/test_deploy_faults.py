"""A fault at every deploy step ends in `error` with a clean rollback, checked against fakepve's state."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationFailed
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.operation import OperationStatus
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState

Fault = Callable[[Proximity, HarnessPve, StandinState], None]


def _offline_node(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    pve.set_node_offline("pve1")


def _pool_exhausted(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    px.settings.update(ip_mode="static", ip_pool="10.20.0.0/30", gateway="10.20.0.1")
    pool = px.settings.get().pool()
    assert pool is not None
    px.store.reservations.reserve_address(pool)
    px.store.reservations.reserve_address(pool)


def _template_download_fails(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    pve.fail("POST", "/nodes/pve1/aplinfo", 500, "download failed: 404 Not Found")


def _create_task_fails(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    pve.fail("POST", "/nodes/pve1/lxc", 500, "unable to create CT - storage 'local-lvm' does not exist")


def _create_task_errors(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    # an error raised inside PVE's worker: the POST answers with a UPID, the task ends in TASK ERROR
    pve.fail("POST", "/nodes/pve1/lxc", error="found_lock_trying_remove_lock")


def _create_unreachable(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    pve.fail("POST", "/nodes/pve1/lxc", 595, "Connection refused")


def _start_fails(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    pve.fail("POST", "/status/start", 500, "CT 100 is locked (snapshot)")


def _no_address(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    pve.fail("GET", "/interfaces", 403, "Permission check failed (/vms/100, VM.Audit)")


def _docker_install_fails(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    st.script("docker", match="compose version", exit_code=1)  # no Docker yet: it must be installed
    st.script("apk", exit_code=1, stderr="ERROR: unable to select packages:\n  docker (no such package)\n")


def _push_fails(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    st.script("pct", match="push", exit_code=255, stderr="failed to create file: /opt/proximity/git-1/compose.yaml\n")


def _compose_up_fails(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    st.script(
        "docker", match="up -d", exit_code=1, stderr="Error response from daemon: pull access denied for gitea/gitea\n"
    )


def _never_healthy(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    (st.path / "rules" / "ss.json").unlink()  # nothing listens
    px.settings.update(health_timeout_seconds=2)


def _crash_looping(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    # the port still answers (Docker's port proxy listens between restarts), but Docker keeps
    # restarting the service: not healthy
    st.script("docker", match="inspect --format {{.Name}}", stdout="/git-1-gitea-1 restarting 7 -\n")
    px.settings.update(health_timeout_seconds=2)


def _unhealthy_by_its_healthcheck(px: Proximity, pve: HarnessPve, st: StandinState) -> None:
    st.script("docker", match="inspect --format {{.Name}}", stdout="/git-1-gitea-1 running 0 unhealthy\n")
    px.settings.update(health_timeout_seconds=2)


FAULTS: list[tuple[str, Fault, str]] = [
    ("place", _offline_node, "offline"),
    ("reserve", _pool_exhausted, "exhausted"),
    ("template", _template_download_fails, "download failed"),
    ("create", _create_task_fails, "storage"),
    ("create", _create_task_errors, "found lock"),
    ("create", _create_unreachable, "Connection refused"),
    ("start", _start_fails, "locked"),
    ("address", _no_address, "Permission check failed"),
    ("docker", _docker_install_fails, "no such package"),
    ("project", _push_fails, "failed to create file"),
    ("up", _compose_up_fails, "pull access denied"),
    ("health", _never_healthy, "unhealthy after 2 checks: port 3000 accepts no request"),
    ("health", _crash_looping, "container git-1-gitea-1 is restarting (restarted 7 times)"),
    ("health", _unhealthy_by_its_healthcheck, "container git-1-gitea-1 is unhealthy by its own healthcheck"),
]


@pytest.mark.parametrize(("step", "fault", "says"), FAULTS, ids=[f"{s}-{f.__name__.strip('_')}" for s, f, _ in FAULTS])
def test_a_fault_at_each_step_rolls_back(
    lab: Proximity, pve: HarnessPve, standin_state: StandinState, step: str, fault: Fault, says: str
) -> None:
    fault(lab, pve, standin_state)
    op = lab.apps.deploy("gitea", hostname="git-1")
    with pytest.raises(OperationFailed) as failure:
        op.wait(timeout=60)
    assert failure.value.step == step
    assert says.lower() in str(failure.value).lower()

    record = op.get()
    assert record.status == OperationStatus.FAILED
    assert lab.store.operations.side_effects(op.id) == []
    events = list(op.events())
    assert any(e.level == "error" and e.message.startswith("failed:") for e in events)
    if step != "place":  # placement fails before anything exists to roll back
        assert "rolled back" in [e.message for e in events]

    app = lab.apps.list()[0]
    assert app.status == AppStatus.ERROR
    assert app.config["last_error"]["step"] == step
    assert app.vmid is None
    # nothing left in Proxmox or in the reservations
    assert pve.cts == []
    assert lab.store.reservations.held_vmids(app.host_id) == set()
    # only the two addresses the fault itself reserved stay held
    expected = {"10.20.0.1", "10.20.0.2"} if step == "reserve" else set()
    assert lab.store.reservations.held_addresses() == expected


def test_a_failed_app_can_be_deleted_and_deployed_again(
    lab: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    _compose_up_fails(lab, pve, standin_state)
    op = lab.apps.deploy("gitea", hostname="git-1")
    with pytest.raises(OperationFailed):
        op.wait(timeout=60)
    failed = lab.apps.list()[0]
    lab.apps.delete(failed.id).wait(timeout=30)
    (standin_state.path / "rules" / "docker.json").unlink()
    app = lab.apps.deploy("gitea", hostname="git-1").wait(timeout=60)
    assert app.status == AppStatus.RUNNING
    assert [ct.vmid for ct in pve.cts] == [app.vmid]
