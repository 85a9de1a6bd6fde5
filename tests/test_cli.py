"""The `proximity` command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import re
import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proximity_sdk.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_sandbox_shows_nodes_and_storages_through_the_sdk() -> None:
    out = _run("sandbox")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "Sandbox Proxmox" in text
    assert "TLS verified against its CA" in text
    node_rows = re.findall(r"^(pve\d)\s+online\s+4\s+8\.0 GiB", text, re.M)
    assert node_rows == ["pve1", "pve2"]
    storage_rows = re.findall(r"^(pve\d)\s+(local(?:-lvm)?)\s+(dir|lvmthin)\s", text, re.M)
    assert sorted(storage_rows) == [("pve1", "local", "dir"), ("pve1", "local-lvm", "lvmthin"),
                                    ("pve2", "local", "dir"), ("pve2", "local-lvm", "lvmthin")]
    assert re.search(r"Catalog: \d{2,} apps ready", text)


def test_no_command_prints_usage_and_exits_2() -> None:
    out = _run()
    assert out.returncode == 2
    assert "sandbox" in out.stdout


def test_unknown_command_is_a_usage_error() -> None:
    out = _run("frobnicate")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
