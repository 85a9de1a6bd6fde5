"""The same commands against an agent (in-process, a real gRPC channel): `--agent HOST:PORT` + PROXIMITY_TOKEN."""

from __future__ import annotations

import json
import re

import pytest

from proximity_sdk.operations.deploy.kind import DeployKind
from tests.agent.conftest import Agent
from tests.cli.conftest import Cli
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState


@pytest.mark.timeout(300)
def test_session_through_an_agent(cli: Cli, agent: Agent, pve: HarnessPve, standin_state: StandinState) -> None:
    pve.on_archive = standin_state.set_volume_path
    cli.env.update({"PROXIMITY_AGENT": agent.target, "PROXIMITY_TOKEN": agent.admin})
    assert cli.json("config", "show")["mode"] == "agent"

    assert [h["name"] for h in cli.json("hosts", "list")] == ["lab"]  # the agent's hosts, not a local store
    assert "gitea" in {a["id"] for a in cli.json("catalog", "list")}

    out = cli.ok("apps", "deploy", "gitea", "--hostname", "git-1")
    assert re.findall(r"^\d\d:\d\d:\d\d (\S+)\s+\1: started$", out.stderr, re.M) == list(DeployKind.steps)
    assert re.search(r"^status\s+running\s*$", out.stdout, re.M)
    [app] = agent.px.apps.list()  # the agent's own Proximity has it
    assert app.hostname == "git-1" and app.status.value == "running"
    assert not (cli.tmp / "cli-px").exists()  # nothing local was opened

    backup = cli.json("backups", "create", "git-1")
    assert backup["result"]["status"] == "completed" and backup["result"]["app_id"] == app.id
    ops = cli.json("operations", "list", "--app", "git-1")
    assert [o["kind"] for o in ops] == ["backup", "deploy"]

    # errors keep their kind across the wire: the same exit codes as locally
    assert cli.fails(3, "apps", "show", "nope").stderr.startswith("proximity: error: no app 'nope'")
    assert "not a valid host name" in cli.fails(2, "apps", "deploy", "gitea", "--hostname", "Bad_Name!").stderr
    out = cli.fails(5, "apps", "list", env={"PROXIMITY_TOKEN": "px_wrong"})
    assert out.stderr.startswith("proximity: error: ")

    removed = cli.json("apps", "rm", "git-1", "--yes")
    assert removed["operation"]["status"] == "succeeded"
    assert agent.px.apps.list() == []
    assert json.loads(cli.ok("--json", "apps", "list").stdout) == []


def test_catalog_tables_through_an_agent_are_the_local_tables(cli: Cli, agent: Agent) -> None:
    """Through an agent, `catalog list` and `search` print their table from the wire messages
    (no models built): the same table, rows and order, as the local command over the same catalog
    (the agent's and this CLI's are both the built-in catalog)."""
    remote = {"PROXIMITY_AGENT": agent.target, "PROXIMITY_TOKEN": agent.admin}
    for command in (
        ["catalog", "list"],
        ["catalog", "list", "--category", "Development"],
        ["catalog", "search", "postgres"],
        ["catalog", "search", "no-such-app-anywhere"],
    ):
        local = cli.ok(*command).stdout
        assert cli.ok(*command, env=remote).stdout == local, command
    rows = cli.ok("catalog", "list", env=remote).stdout.splitlines()
    assert len(rows) == len(agent.px.catalog.list()) + 1  # and the header
    # --json still goes through the models: derived fields (main_service) are there
    [gitea] = [a for a in cli.json("catalog", "list", env=remote) if a["id"] == "gitea"]
    assert gitea == agent.px.catalog.get("gitea").model_dump(mode="json")
