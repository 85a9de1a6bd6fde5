"""proximity.core through an agent: the in-process agent (tests/agent/conftest.py) over a real gRPC
channel, reached by the modules with `agent` + `token` (here from PROXIMITY_AGENT/PROXIMITY_TOKEN)."""

from __future__ import annotations

from pathlib import Path

import pytest

from proximity_sdk.errors import NotFoundError
from proximity_sdk.models.app import AppStatus
from tests.agent.conftest import Agent, agent, agent_px
from tests.ansible.conftest import AnsibleLab, ansible_env
from tests.harness.pve import HarnessPve

__all__ = ["agent", "agent_px"]

STARTED = """
- name: gitea runs
  proximity.core.app:
    name: git-9
    catalog_id: gitea
    host: lab
    state: {state}
"""


@pytest.mark.timeout(600)
def test_app_through_the_agent_as_a_member(agent: Agent, pve: HarnessPve, tmp_path: Path) -> None:
    workdir = tmp_path / "ansible"
    workdir.mkdir()
    lab = AnsibleLab(workdir=workdir)
    lab.env = {**ansible_env(workdir), "PROXIMITY_AGENT": agent.target, "PROXIMITY_TOKEN": agent.member}

    first = lab.play(STARTED.format(state="started"))
    assert first.rc == 0, first
    assert first.recap["changed"] == 1
    app = first.result("gitea runs")["app"]
    assert app["status"] == "running"
    recorded = agent.px.apps.get(app["id"])
    assert recorded.owner_id == agent.member_id  # the token's user deployed it
    assert pve.ct(recorded.vmid).status == "running"
    assert agent.member not in first.stdout + first.stderr

    second = lab.play(STARTED.format(state="started"))
    assert second.rc == 0, second
    assert second.recap["changed"] == 0

    checked = lab.play(STARTED.format(state="stopped"), "--check", "--diff")
    assert checked.recap["changed"] == 1
    assert '+    "status": "stopped"' in checked.stdout
    assert agent.px.apps.get(app["id"]).status == AppStatus.RUNNING

    # another member does not see it: for them it is missing, so absent changes nothing
    other = lab.play(STARTED.format(state="absent"), env={"PROXIMITY_TOKEN": agent.other})
    assert other.rc == 0, other
    assert other.recap["changed"] == 0
    assert agent.px.apps.get(app["id"]).status == AppStatus.RUNNING

    bad = lab.play(
        STARTED.format(state="started")
        .replace("catalog_id: gitea", "catalog_id: no-such-app")
        .replace("git-9", "git-10")
    )
    assert bad.recap["failed"] == 1
    failed = bad.result("gitea runs")
    assert failed["error"] == "NotFoundError"
    assert "no-such-app" in failed["msg"]

    wrong_token = lab.play(STARTED.format(state="started"), env={"PROXIMITY_TOKEN": "not-a-token"})
    assert wrong_token.recap["failed"] == 1
    assert wrong_token.result("gitea runs")["error"] == "AuthenticationError"

    # wait: false hands back the operation at once; the agent goes on with it
    nowait = lab.play(STARTED.format(state="started").replace("git-9", "git-11") + "    wait: false\n")
    assert nowait.rc == 0, nowait
    started = nowait.result("gitea runs")
    assert started["actions"] == ["deploy"]
    assert started["operation"] == started["operations"][0]
    later = agent.px.operations.handle(started["operation"]).wait(timeout=60)
    assert (later.hostname, later.status, later.owner_id) == ("git-11", AppStatus.RUNNING, agent.member_id)

    gone = lab.play(STARTED.format(state="absent"))
    assert gone.rc == 0, gone
    assert gone.recap["changed"] == 1
    with pytest.raises(NotFoundError):
        agent.px.apps.get(app["id"])
    assert pve.ct(recorded.vmid) is None
