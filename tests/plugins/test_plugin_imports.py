"""Loading the installed plugins stays cheap: every catalog command loads them (pluggy imports each
entry point's module), so a plugin imports its heavy dependencies only when a hook really needs
them. The ``proximity-sftp`` plugin imported paramiko and the Proxmox client at load, which made
``proximity catalog list`` about twice as slow (bench/cli_startup.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import proximity_sftp
import pytest
from proximity_sftp.target import CopyTarget

ROOT = Path(__file__).resolve().parents[2]

# what loading plugins must not import: the node shell (paramiko), the Proxmox client (proxmoxer,
# requests), the store, and the SFTP plugin's copy machinery
HEAVY_ROOTS = ("paramiko", "proxmoxer", "requests", "sqlalchemy", "alembic", "yaml")
HEAVY_MODULES = (
    "proximity_sdk.proxmox.client",
    "proximity_sdk.proxmox.shell",
    "proximity_sdk.backup_targets.volumes",
    "proximity_sdk.store",
    "proximity_sftp.target",
    "proximity_sftp.destinations",
)

# loads every plugin through its entry point and asks each hook that runs on every catalog command
# (catalog sources) and on `backups targets add` (kinds, options); then, with ``open``, uses the
# SFTP plugin's `directory` kind: the report lists the heavy modules imported after each stage
_PROBE = """
import json, sys
from proximity_sdk.plugins.manager import PluginManager

def heavy():
    return sorted(m for m in sys.modules if m.split(".")[0] in {roots!r} or m.startswith({modules!r}))

manager = PluginManager(entry_points=True)
report = {{"plugins": manager.names()}}
manager.catalog_sources()
kinds = manager.backup_target_kinds()
kinds["directory"].check_options({{"path": sys.argv[1]}})
report["loaded"] = heavy()
kinds["directory"].open("shelf", {{"path": sys.argv[1]}})
report["opened"] = heavy()
print(json.dumps(report))
"""


def _probe(tmp_path: Path) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(roots=HEAVY_ROOTS, modules=HEAVY_MODULES), str(tmp_path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_loading_the_installed_plugins_imports_nothing_heavy(tmp_path: Path) -> None:
    report = _probe(tmp_path)
    assert {"sftp", "hosts", "portainer"} <= set(report["plugins"])
    assert report["loaded"] == []


def test_the_sftp_plugin_imports_its_copy_machinery_when_a_target_is_opened(tmp_path: Path) -> None:
    """The same probe sees paramiko once a target is opened: the check above can fail, and the
    deferred imports still resolve."""
    report = _probe(tmp_path)
    assert "paramiko" in report["opened"]
    assert "proximity_sftp.target" in report["opened"] and "proximity_sdk.backup_targets.volumes" in report["opened"]


def test_the_package_still_exports_copy_target() -> None:
    assert proximity_sftp.CopyTarget is CopyTarget
    with pytest.raises(AttributeError):
        _ = proximity_sftp.NoSuchName
