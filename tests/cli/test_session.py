"""A recorded CLI session against the harness host: hosts add, catalog, deploy with progress, list,
backup, restore, rm; then the same with --json, parsed."""

from __future__ import annotations

import json
import re

import pytest

from proximity_sdk.operations.deploy.kind import DeployKind
from proximity_sdk.operations.restore import NEW_CONTAINER_STEPS
from tests.cli.conftest import Cli
from tests.harness.pve import HarnessPve


def _started_steps(stderr: str) -> list[str]:
    """The steps the progress output announced, in order (lines `HH:MM:SS <step> <step>: started`)."""
    return re.findall(r"^\d\d:\d\d:\d\d (\S+)\s+\1: started$", stderr, re.M)


def _field(stdout: str, name: str) -> str:
    found = re.search(rf"^{re.escape(name)}\s+(.*?)\s*$", stdout, re.M)
    assert found, f"no {name!r} in:\n{stdout}"
    return found.group(1)


@pytest.mark.timeout(300)  # many subprocesses on a shared machine
def test_session_deploy_backup_restore_remove(lab_cli: Cli, pve: HarnessPve) -> None:
    cli = lab_cli
    out = cli.ok("hosts", "add", "lab", *cli.host_args)
    assert "added host lab (the default)" in out.stderr
    assert _field(out.stdout, "tls") == "verified against its CA"
    assert re.search(r"^pve1\s+online\s+\d+\s", out.stdout, re.M)

    out = cli.ok("catalog", "list")
    assert re.search(r"^gitea\s+Gitea\s+\S+\s+DevOps\s", out.stdout, re.M)

    out = cli.ok("apps", "deploy", "gitea", "--hostname", "git-1")
    assert _started_steps(out.stderr) == list(DeployKind.steps)
    assert "deploy succeeded in" in out.stderr
    assert _field(out.stdout, "status") == "running"
    vmid = int(_field(out.stdout, "vmid"))
    assert _field(out.stdout, "url") == f"http://{pve.lease_for(vmid)}:3000"
    assert pve.ct(vmid).status == "running"

    out = cli.ok("apps", "list")
    [row] = [line.split() for line in out.stdout.splitlines()[1:]]
    assert row[:5] == ["git-1", "running", "gitea", "pve1", str(vmid)]

    out = cli.ok("backups", "create", "git-1", "--note", "before upgrade")
    assert _started_steps(out.stderr) == ["queue", "vzdump", "store"]
    backup_id = _field(out.stdout, "id")
    assert _field(out.stdout, "status") == "completed"
    assert _field(out.stdout, "volume").startswith(f"local:backup/vzdump-lxc-{vmid}-")

    out = cli.ok("backups", "list", "git-1")
    assert re.search(rf"^{backup_id}\s+git-1\s+completed\s+snapshot\s+local\s", out.stdout, re.M)

    out = cli.ok("backups", "restore", backup_id)
    assert _started_steps(out.stderr) == list(NEW_CONTAINER_STEPS)
    restored_vmid = int(_field(out.stdout, "vmid"))
    assert restored_vmid != vmid and _field(out.stdout, "status") == "running"

    refused = cli.fails(2, "apps", "rm", "git-1")  # no terminal, no --yes: nothing happens
    assert "confirm with --yes" in refused.stderr
    assert pve.ct(restored_vmid).status == "running"

    out = cli.ok("apps", "rm", "git-1", "--yes")
    assert "delete succeeded" in out.stderr
    assert "no apps" in cli.ok("apps", "list").stdout
    assert pve.ct(restored_vmid) is None


@pytest.mark.timeout(300)
def test_session_as_json(lab_cli: Cli, pve: HarnessPve) -> None:
    cli = lab_cli
    added = cli.json("hosts", "add", "lab", *cli.host_args)
    assert added["host"]["name"] == "lab" and added["host"]["is_default"] is True
    assert "token_secret" not in json.dumps(added)
    assert [n["name"] for n in added["nodes"]][:1] == ["pve1"]

    catalog = cli.json("catalog", "list")
    assert "gitea" in {entry["id"] for entry in catalog}

    out = cli.ok("apps", "deploy", "gitea", "--hostname", "git-1", "--json")  # per-command --json
    assert out.stderr == ""  # no progress in JSON mode
    deployed = json.loads(out.stdout)
    assert deployed["operation"]["kind"] == "deploy" and deployed["operation"]["status"] == "succeeded"
    assert deployed["operation"]["steps"] == list(DeployKind.steps)
    app = deployed["result"]
    assert app["hostname"] == "git-1" and app["status"] == "running"
    assert app["url"] == f"http://{pve.lease_for(app['vmid'])}:3000"

    apps = cli.json("apps", "list")
    assert [(a["id"], a["status"]) for a in apps] == [(app["id"], "running")]

    # --json --watch: one JSON line per event, then the result
    out = cli.ok("--json", "backups", "create", app["id"], "--watch")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    events = [line["event"] for line in lines[:-1]]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["message"] for e in events if e["message"].endswith(": started")] == [
        "queue: started",
        "vzdump: started",
        "store: started",
    ]
    backup = lines[-1]["result"]
    assert backup["status"] == "completed" and backup["app_id"] == app["id"]
    assert lines[-1]["operation"]["status"] == "succeeded"

    listed = cli.json("backups", "list", "git-1")
    assert [b["id"] for b in listed] == [backup["id"]]

    restored = cli.json("backups", "restore", backup["id"])
    assert restored["operation"]["kind"] == "restore"
    assert restored["result"]["id"] == app["id"] and restored["result"]["vmid"] != app["vmid"]

    # --no-wait gives the id at once; the operation is then on record
    started = cli.json("apps", "restart", "git-1", "--no-wait")
    shown = cli.json("operations", "show", started["operation_id"])
    assert shown["operation"]["kind"] == "restart" and shown["operation"]["status"] == "succeeded"
    assert shown["events"][0]["seq"] == 1
    kinds = [op["kind"] for op in cli.json("operations", "list", "--app", "git-1")]
    assert kinds == ["restart", "restore", "backup", "deploy"]

    removed = cli.json("apps", "rm", "git-1", "--yes")
    assert removed["operation"]["kind"] == "delete" and removed["result"] is None
    assert cli.json("apps", "list") == []


def test_failed_deploy_exits_1_with_the_failed_step(lab_cli: Cli, pve: HarnessPve) -> None:
    cli = lab_cli
    cli.ok("hosts", "add", "lab", *cli.host_args)
    pve.fail("POST", "/nodes/pve1/lxc", 500, "unable to create CT - storage 'local-lvm' does not exist")
    out = cli.fails(1, "--json", "apps", "deploy", "gitea", "--hostname", "git-1")
    record = json.loads(out.stdout)
    assert record["operation"]["status"] == "failed" and record["result"] is None
    assert record["operation"]["result"]["failed_step"] == "create"
    assert re.search(
        r"^proximity: error: deploy failed: .*storage 'local-lvm' does not exist.*\(step create\)", out.stderr, re.M
    )
    [app] = cli.json("apps", "list")
    assert app["status"] == "error" and app["vmid"] is None  # the failure is on record, nothing was created
    assert pve.cts == []
