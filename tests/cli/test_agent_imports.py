"""A client of an agent loads none of the local machinery: no store (SQLAlchemy, Alembic), no
Proxmox client (proxmoxer, requests) and no node shell (paramiko). Their imports were most of the
~1 s a CLI command took through an agent (bench/cli_startup.py measures it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.agent.conftest import Agent
from tests.cli.conftest import ROOT

LOCAL_ONLY = ("sqlalchemy", "alembic", "paramiko", "proxmoxer", "requests", "psycopg")

# runs one CLI command in-process, then reports what it imported (on stderr's last line)
_PROBE = """
import json, sys
from proximity_sdk.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
mods = sorted(m for m in sys.modules if m.split(".")[0] in {roots!r} or m.startswith(("proximity_sdk.store",
              "proximity_sdk._client", "proximity_sdk._connections", "proximity_sdk.engine.engine")))
print(json.dumps({{"code": code, "modules": mods}}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "command", [["catalog", "list"], ["apps", "list"], ["hosts", "list"], ["operations", "list"], ["backups", "list"]]
)
def test_agent_mode_imports_nothing_local(agent: Agent, command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
    env.update({"PROXIMITY_AGENT": agent.target, "PROXIMITY_TOKEN": agent.admin})
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(roots=LOCAL_ONLY), *command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr
    assert report["modules"] == []


def test_the_probe_sees_local_imports(tmp_path: object) -> None:
    """The same probe run locally does see the store: the check above can fail."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
    env["PROXIMITY_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(roots=LOCAL_ONLY), "apps", "list"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr
    assert "sqlalchemy" in report["modules"] and "proximity_sdk.store" in report["modules"]


@pytest.mark.parametrize("command", [["catalog", "list"], ["catalog", "search", "git"]])
def test_agent_mode_catalog_tables_import_no_models(agent: Agent, command: list[str]) -> None:
    """The catalog table through an agent is printed from the wire messages: neither pydantic nor
    the catalog models are imported (they were a third of the command's time)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
    env.update({"PROXIMITY_AGENT": agent.target, "PROXIMITY_TOKEN": agent.admin})
    roots = ("pydantic", "pydantic_core", "proximity_sdk")
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(roots=roots), *command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr
    assert "gitea" in done.stdout
    assert "proximity_sdk._remote._catalog" in report["modules"]  # the probe sees this command's modules
    assert [m for m in report["modules"] if m.startswith(("pydantic", "proximity_sdk.models."))] == [
        "proximity_sdk.models._listing"
    ]
    # --json prints the models' JSON: there they are imported
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(roots=roots), "--json", *command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "pydantic" in json.loads(done.stderr.strip().splitlines()[-1])["modules"]
