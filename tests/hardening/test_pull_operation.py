"""Issue 15: an update check's pull runs as an operation: recorded, one at a time per app, never
beside another operation on the app (the inline pull ran outside any operation lock)."""

from __future__ import annotations

import json

from proximity_sdk._client import Proximity
from proximity_sdk.models.operation import OperationStatus
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState

WEB = "ghcr.io/open-webui/open-webui:main"
LISTENING = "LISTEN 0 4096 0.0.0.0:8080 0.0.0.0:*\n"


def _pulls(st: StandinState) -> int:
    return len([c for c in st.calls("docker") if "pull" in c.args])


def test_an_update_check_pulls_in_an_operation_of_its_own(
    lab: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    (standin_state.path / "rules" / "ss.json").write_text(
        json.dumps([{"match": None, "times": None, "stdout": LISTENING, "exit_code": 0}])
    )
    app = lab.apps.deploy("open-webui", hostname="chat").wait(timeout=120)
    (standin_state.path / "registry.json").write_text(json.dumps({WEB: "sha256:" + "e" * 64}))

    before = _pulls(standin_state)
    [update] = lab.apps.updates(app_id=app.id)
    assert [i.image for i in update.images] == [WEB]
    [pull] = [op for op in lab.operations.list(app_id=app.id) if op.kind == "pull"]
    assert pull.status == OperationStatus.SUCCEEDED and pull.owner_id == app.owner_id
    assert _pulls(standin_state) == before + 1

    # while another operation holds the app, nothing is pulled beside it
    blocker = lab.store.operations.create("stop", steps=("stop",), app_id=app.id, host_id=app.host_id, vmid=app.vmid)
    assert lab.apps.updates(app_id=app.id) == []
    assert _pulls(standin_state) == before + 1
    assert len([op for op in lab.operations.list(app_id=app.id) if op.kind == "pull"]) == 1
    lab.store.operations.finish(blocker.id, None, OperationStatus.CANCELLED)
