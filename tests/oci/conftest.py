"""Proximity against the harness Proxmox for native OCI apps: one host WITHOUT SSH access (so any
use of the node shell fails loudly), and one with it for the compose fallback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.models.ssh import SshAccess
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import StandinState

LISTENING = "LISTEN 0 4096 0.0.0.0:{port} 0.0.0.0:*\n"


@pytest.fixture
def nossh(tmp_path: Path, pve: HarnessPve, pve_ca: str) -> Iterator[Proximity]:
    """Host "lab" (node pve1) registered with no SSH access at all, on a PVE 9.1 node."""
    pve.version = "9.1.2"
    with Proximity.local(
        data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False, lease_seconds=5
    ) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca)
        yield px


@pytest.fixture
def withssh(
    tmp_path: Path, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess, standin_state: StandinState
) -> Iterator[Proximity]:
    """Host "lab" with the test sshd as its node shell; containers report ports 3000 and 80 listening."""
    standin_state.script("ss", stdout=LISTENING.format(port=3000) + LISTENING.format(port=80))
    with Proximity.local(
        data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False, lease_seconds=5
    ) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access)
        yield px


CliRun = Callable[..., "subprocess.CompletedProcess[str]"]


def cli_with_host(tmp_path: Path, pve: HarnessPve, pve_ca: str) -> CliRun:
    """``proximity ...`` in fresh processes with their own data directory, host "lab" (no SSH)
    already added; the runner returns the finished process, whatever its exit status."""
    secret = tmp_path / "token-secret"
    secret.write_text(TOKEN_SECRET)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")},
        "PROXIMITY_DATA_DIR": str(tmp_path / "px"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "proximity_sdk.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    added = run(
        "hosts",
        "add",
        "lab",
        "--url",
        pve.url,
        "--token-id",
        TOKEN_ID,
        "--token-secret-file",
        str(secret),
        "--ca-file",
        pve_ca,
    )
    assert added.returncode == 0, added.stderr
    return run
