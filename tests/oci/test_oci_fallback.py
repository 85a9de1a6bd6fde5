"""Nodes that cannot run native OCI containers: PVE 8 (and a version nobody can read).

These tests send nothing 9.x-only, so the harness checks their requests against 8.4 too."""

from __future__ import annotations

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationFailed, ValidationError
from proximity_sdk.models.app import AppStatus
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState


def test_auto_falls_back_to_compose_on_pve8_with_an_event(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    pve.version = "8.4.1"
    op = withssh.apps.deploy("grafana", hostname="graf-1")
    app = op.wait(timeout=60)
    assert app.status == AppStatus.RUNNING and app.config["runtime"] == "compose"
    fallback = [e for e in op.events() if "falling back to compose" in e.message]
    assert len(fallback) == 1 and "8.4.1" in fallback[0].message and "9.1" in fallback[0].message
    assert fallback[0].level == "warning" and fallback[0].step == "place"
    assert pve.pulled == [] and standin_state.calls("docker")  # Docker compose ran in the container


def test_unreadable_version_counts_as_not_oci_capable(withssh: Proximity, pve: HarnessPve) -> None:
    # the harness node answers "fake" for its version until a test sets one
    op = withssh.apps.deploy("grafana", hostname="graf-1")
    assert op.wait(timeout=60).config["runtime"] == "compose"
    assert any("cannot tell" in e.message and "'fake'" in e.message for e in op.events())


def test_explicit_oci_on_pve8_is_refused_at_submit_when_the_node_is_given(withssh: Proximity, pve: HarnessPve) -> None:
    pve.version = "8.4.1"
    with pytest.raises(ValidationError) as caught:
        withssh.apps.deploy("grafana", hostname="graf-1", strategy="oci", node="pve1")
    assert caught.value.field == "strategy" and "8.4.1" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        withssh.apps.deploy_image("nginx:1.27", hostname="web-1", node="pve1")
    assert caught.value.field == "strategy"
    assert withssh.apps.list() == [] and withssh.operations.list() == []


def test_explicit_oci_on_pve8_fails_at_place_and_rolls_back(withssh: Proximity, pve: HarnessPve) -> None:
    pve.version = "8.4.1"
    op = withssh.apps.deploy("grafana", hostname="graf-1", strategy="oci")  # node chosen by the operation
    with pytest.raises(OperationFailed) as caught:
        op.wait(timeout=60)
    assert caught.value.step == "place" and "8.4.1" in str(caught.value)
    app = withssh.apps.get(op.get().app_id or "")
    assert app.status == AppStatus.ERROR and app.vmid is None and app.address is None
    assert pve.cts == [] and pve.pulled == []
    # nothing is held: the hostname's app can be deleted and the name deployed again with compose
    withssh.apps.delete(app.id).wait(timeout=60)
    assert (
        withssh.apps.deploy("grafana", hostname="graf-1", strategy="compose").wait(timeout=60).status
        == AppStatus.RUNNING
    )


def test_auto_without_ssh_on_pve8_says_the_fallback_needs_the_shell(nossh: Proximity, pve: HarnessPve) -> None:
    pve.version = "8.4.1"
    op = nossh.apps.deploy("grafana", hostname="graf-1")
    with pytest.raises(OperationFailed) as caught:
        op.wait(timeout=60)
    assert caught.value.step == "place" and "node shell" in str(caught.value) and "8.4.1" in str(caught.value)
    assert pve.cts == []


def test_compose_only_apps_still_need_the_shell_at_submit(nossh: Proximity) -> None:
    with pytest.raises(ValidationError) as caught:
        nossh.apps.deploy("gitea", hostname="git-1")
    assert caught.value.field == "ssh"
    assert nossh.apps.list() == []
