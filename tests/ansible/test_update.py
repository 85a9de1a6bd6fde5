"""proximity.core.app with update: true: an update when something newer exists, none otherwise;
check mode changes nothing (no pull in the container: only a newer catalog version would count)."""

from __future__ import annotations

import json

import pytest

from tests.ansible.conftest import AnsibleLab
from tests.harness.sshd import StandinState

LISTENING = "LISTEN 0 4096 0.0.0.0:8080 0.0.0.0:*\n"
WEB = "ghcr.io/open-webui/open-webui:main"
KEPT_UP = """
- name: chat runs, kept up to date
  proximity.core.app:
    name: chat
    catalog_id: open-webui
    host: lab
    state: started
    update: true
"""


@pytest.mark.timeout(600)
def test_update_true_updates_only_when_something_is_newer(ansible_lab: AnsibleLab, standin_state: StandinState) -> None:
    # open-webui listens on 8080 and its web image follows the `main` tag
    (standin_state.path / "rules" / "ss.json").write_text(
        json.dumps([{"match": None, "times": None, "stdout": LISTENING, "exit_code": 0}])
    )
    first = ansible_lab.play(KEPT_UP)
    assert first.rc == 0, first
    assert first.result("chat runs, kept up to date")["actions"] == ["deploy"]
    again = ansible_lab.play(KEPT_UP)
    assert again.rc == 0 and again.recap["changed"] == 0, again

    (standin_state.path / "registry.json").write_text(json.dumps({WEB: "sha256:" + "e" * 64}))
    with ansible_lab.sdk() as px:
        [app] = px.apps.list()
        before = app.config["images"][WEB]
        operations_before = [op.id for op in px.operations.list(app_id=app.id)]
    pulls = len([c for c in standin_state.calls("docker") if "pull" in c.args])
    checked = ansible_lab.play(KEPT_UP, "--check")
    assert checked.rc == 0 and checked.recap["changed"] == 0, checked
    assert checked.result("chat runs, kept up to date")["actions"] == []
    # check mode changed nothing: no pull ran in the container, no operation was recorded
    assert len([c for c in standin_state.calls("docker") if "pull" in c.args]) == pulls
    with ansible_lab.sdk() as px:
        assert px.apps.get(app.id).config["images"][WEB] == before
        assert [op.id for op in px.operations.list(app_id=app.id)] == operations_before

    updated = ansible_lab.play(KEPT_UP)
    assert updated.rc == 0 and updated.recap["changed"] == 1, updated
    assert updated.result("chat runs, kept up to date")["actions"] == ["update"]
    with ansible_lab.sdk() as px:
        assert px.apps.get(app.id).config["images"][WEB] == "sha256:" + "e" * 64
        # the check pulled in an operation of its own (one at a time per app), then the update ran
        assert [op.kind for op in px.operations.list(app_id=app.id)][:2] == ["update", "pull"]
    last = ansible_lab.play(KEPT_UP)
    assert last.rc == 0 and last.recap["changed"] == 0, last
