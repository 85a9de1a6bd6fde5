"""App updates from the CLI: find them, update with progress, and set the automatic update window."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.conftest import LISTENING, Cli
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState


@pytest.mark.timeout(300)
def test_updates_update_and_window(lab_cli: Cli, pve: HarnessPve, standin_state: StandinState) -> None:
    cli = lab_cli
    # open-webui listens on 8080: this rule replaces the fixture's (the first matching rule wins)
    (standin_state.path / "rules" / "ss.json").write_text(
        json.dumps([{"match": None, "times": None, "stdout": LISTENING.format(port=8080), "exit_code": 0}])
    )
    pve.container_files = lambda vmid: standin_state.path / "ct" / str(vmid)
    cli.ok("hosts", "add", "lab", *cli.host_args)
    cli.ok("apps", "deploy", "open-webui", "--hostname", "chat")  # its web image follows the `main` tag
    assert cli.json("apps", "updates") == []
    assert "every app is up to date" in cli.ok("apps", "updates", "chat").stdout

    (standin_state.path / "registry.json").write_text(
        json.dumps({"ghcr.io/open-webui/open-webui:main": "sha256:" + "d" * 64})
    )
    [found] = cli.json("apps", "updates")
    assert found["hostname"] == "chat" and found["available_version"] is None
    assert [i["available_digest"] for i in found["images"]] == ["sha256:" + "d" * 64]
    assert cli.json("apps", "updates", "--no-pull") == []  # the catalog has nothing newer

    out = cli.ok("apps", "update", "chat")
    done = re.findall(r"^\d\d:\d\d:\d\d (\S+)\s+\1: done$", out.stderr, re.M)
    assert done == ["check", "safety", "project", "pull", "recreate", "health", "record"]
    assert re.search(r"^status\s+running\s*$", out.stdout, re.M)
    assert cli.json("apps", "updates") == []

    assert cli.json("apps", "update-window", "chat") is None
    window = cli.json("apps", "update-window", "chat", "--start", "03:00", "--days", "sun,sat", "--minutes", "60")
    assert window == {"days": ["sat", "sun"], "start": "03:00", "minutes": 60}
    assert "on sat,sun from 03:00 UTC for 60 min" in cli.ok("apps", "update-window", "chat").stdout
    bad = cli.fails(2, "apps", "update-window", "chat", "--start", "25:00")
    assert "update window" in bad.stderr and "start" in bad.stderr
    assert cli.json("apps", "update-window", "chat", "--off") is None
    assert cli.fails(2, "apps", "update", "chat", "--version", "0.0.0").stderr.count("catalog has") == 1
