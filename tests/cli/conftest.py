"""The `proximity` command run as a user runs it: a subprocess, with its own environment.

``cli`` runs it with a fresh data directory and no config file (``$XDG_CONFIG_HOME`` points into
the test's tmp dir). ``lab_cli`` adds the harness: fakepve over HTTPS (``pve``) and the real
sshd with the stand-ins, and knows the arguments of ``proximity hosts add lab ...`` for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from proximity_sdk.models.ssh import SshAccess
from tests.agent.conftest import agent, agent_px
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import StandinState

__all__ = ["agent", "agent_px"]  # the in-process agent, for test_agent.py

ROOT = Path(__file__).resolve().parents[2]
LISTENING = "LISTEN 0 4096 0.0.0.0:{port} 0.0.0.0:*\n"


@dataclass
class Cli:
    """Runs `python -m proximity_sdk.cli ...` with ``env`` on top of a clean environment."""

    tmp: Path
    env: dict[str, str] = field(default_factory=dict)
    host_args: list[str] = field(default_factory=list)

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
        full.update(self.env)
        full.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "proximity_sdk.cli", *args],
            capture_output=True,
            text=True,
            env=full,
            cwd=ROOT,
            input=stdin if stdin is not None else "",
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        out = self.run(*args, **kw)
        assert out.returncode == 0, f"proximity {' '.join(args)} -> {out.returncode}\n{out.stdout}\n{out.stderr}"
        assert "Traceback" not in out.stderr, out.stderr
        return out

    def json(self, *args: str, **kw: Any) -> Any:
        """Run with --json; stdout must be exactly one JSON document."""
        return json.loads(self.ok("--json", *args, **kw).stdout)

    def fails(self, code: int, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        out = self.run(*args, **kw)
        assert out.returncode == code, f"expected exit {code}, got {out.returncode}\n{out.stdout}\n{out.stderr}"
        assert "Traceback" not in out.stderr, out.stderr
        return out


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "config").mkdir()
    return Cli(
        tmp=tmp_path, env={"PROXIMITY_DATA_DIR": str(tmp_path / "cli-px"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    )


@pytest.fixture
def lab_cli(cli: Cli, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess, standin_state: StandinState) -> Cli:
    """`cli` plus the harness; ``cli.host_args`` registers it as host "lab" (node shell = the test sshd)."""
    standin_state.script("ss", stdout=LISTENING.format(port=3000) + LISTENING.format(port=80))
    pve.on_archive = standin_state.set_volume_path  # `pvesm path` knows every archive vzdump writes
    secret = cli.tmp / "token-secret"
    secret.write_text(TOKEN_SECRET + "\n")
    secret.chmod(0o600)
    assert ssh_access.key_file is not None and ssh_access.known_hosts is not None
    cli.host_args = [
        "--url",
        pve.url,
        "--token-id",
        TOKEN_ID,
        "--token-secret-file",
        str(secret),
        "--ca-file",
        pve_ca,
        "--ssh-user",
        ssh_access.user,
        "--ssh-port",
        str(ssh_access.port),
        "--ssh-key",
        ssh_access.key_file,
        "--known-hosts",
        ssh_access.known_hosts,
        *[a for node, address in ssh_access.addresses.items() for a in ("--ssh-address", f"{node}={address}")],
    ]
    return cli
