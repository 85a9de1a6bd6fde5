"""The rest of an app's life from the CLI: host and node reads, --no-wait + watch, stop/start, logs,
credentials, cancel."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.conftest import Cli
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState


@pytest.mark.timeout(300)  # a dozen subprocesses, each importing the SDK, on a shared 2-core machine
def test_reads_watch_stop_start_logs_credentials(lab_cli: Cli, pve: HarnessPve, standin_state: StandinState) -> None:
    cli = lab_cli
    cli.ok("hosts", "add", "lab", *cli.host_args)
    out = cli.ok("hosts", "test")
    assert re.search(r"^result\s+ok\s*$", out.stdout, re.M) and re.search(r"^nodes\s+pve1", out.stdout, re.M)
    assert re.search(r"^lab\s+pve1\s+online\s", cli.ok("nodes", "list").stdout, re.M)
    storages = cli.json("nodes", "storages", "pve1", "--content", "rootdir")
    assert [s["storage"] for s in storages] == ["local-lvm"]
    assert cli.ok("hosts", "default").stdout.strip() == "lab"

    started = cli.ok("apps", "deploy", "gitea", "--hostname", "git-1", "--no-wait")
    op_id = started.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", op_id)
    assert "this process stays until the operation ends" in started.stderr
    out = cli.ok("operations", "watch", op_id)  # already over: the whole log, then the result
    assert re.findall(r"^\d\d:\d\d:\d\d (\S+)\s+\1: started$", out.stderr, re.M)[-1] == "health"
    assert re.search(r"^status\s+running\s*$", out.stdout, re.M)
    shown = cli.ok("operations", "show", op_id)
    assert re.search(r"^status\s+succeeded\s*$", shown.stdout, re.M)
    assert "place: started" in shown.stdout

    stopped = cli.json("apps", "stop", "git-1")
    assert stopped["result"]["status"] == "stopped"
    vmid = stopped["result"]["vmid"]
    assert pve.ct(vmid).status == "stopped"
    assert cli.json("apps", "start", "git-1")["result"]["status"] == "running"

    standin_state.script("docker", match="logs", stdout="web-1  | listening on :3000\n")
    assert "listening on :3000" in cli.ok("apps", "logs", "git-1", "--tail", "5").stdout
    assert "tail must be" in cli.fails(2, "apps", "logs", "git-1", "--tail", "0").stderr

    creds = cli.json("apps", "credentials", "git-1")
    assert isinstance(creds["root_password"], str) and len(creds["root_password"]) >= 12
    assert "*" not in creds["root_password"]  # in clear: that is what the command is for
    assert creds["secrets"] and all(v and "*" not in v for v in creds["secrets"].values())
    listed = cli.ok("--json", "apps", "list").stdout
    assert creds["root_password"] not in listed  # nowhere else

    out = cli.ok("operations", "cancel", op_id)
    assert "had already ended (succeeded)" in out.stderr
    assert cli.fails(3, "operations", "show", "00000000-0000-4000-8000-000000000000").stderr.startswith(
        "proximity: error: "
    )
    ops = json.loads(cli.ok("--json", "operations", "list", "--status", "succeeded").stdout)
    assert [o["kind"] for o in ops] == ["start", "stop", "deploy"]
