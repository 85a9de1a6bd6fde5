"""The proximity.core collection run by the real `ansible-playbook` (ansible-core from PyPI, this venv's
Python as the modules' interpreter) against the harness: fakepve over HTTPS and the real sshd.

``ansible_lab`` prepares a Proximity data directory (SQLite, a Fernet key given by environment only)
with the harness host "lab"; ``ansible_lab.play(yaml, *options)`` writes a playbook and runs it,
returning the recap counts and every task result (recorded by ``callback_plugins/record.py``).
``ansible_lab.sdk()`` opens the same data directory through the SDK to check what really happened.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.models.ssh import SshAccess
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import StandinState

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "ansible"
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
LISTENING = "LISTEN 0 4096 0.0.0.0:{port} 0.0.0.0:*\n"
_RECAP = re.compile(r"^localhost\s+:\s+(.*)$", re.MULTILINE)


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    recap: dict[str, int]
    results: list[dict[str, Any]]

    def result(self, task: str) -> dict[str, Any]:
        """What the task named ``task`` returned (its last result)."""
        found = [r for r in self.results if r["task"] == task]
        assert found, f"no result for task {task!r}; tasks: {[r['task'] for r in self.results]}\n{self.stdout}"
        return found[-1]["result"]  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return f"rc={self.rc}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass
class AnsibleLab:
    workdir: Path
    data_dir: Path | None = None  # None: the playbooks reach Proximity some other way (an agent)
    secret_key: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    _runs: int = 0

    @contextmanager
    def sdk(self) -> Iterator[Proximity]:
        assert self.data_dir is not None
        with Proximity.local(data_dir=self.data_dir, secret_key=self.secret_key, entry_points=False) as px:
            yield px

    def play(self, tasks_yaml: str, *options: str, env: dict[str, str] | None = None, timeout: float = 240) -> Run:
        """Run one play on localhost (local connection) whose tasks are ``tasks_yaml``."""
        self._runs += 1
        playbook = self.workdir / f"play{self._runs}.yml"
        indented = "\n".join("    " + line if line.strip() else line for line in tasks_yaml.strip("\n").splitlines())
        playbook.write_text(f"- hosts: localhost\n  gather_facts: false\n  tasks:\n{indented}\n")
        results = self.workdir / f"results{self._runs}.jsonl"
        full_env = {**os.environ, **self.env, **(env or {}), "PROXIMITY_TEST_RESULTS": str(results)}
        proc = subprocess.run(
            [
                str(ANSIBLE_PLAYBOOK),
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                f"ansible_python_interpreter={sys.executable}",
                *options,
                str(playbook),
            ],
            cwd=self.workdir,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        match = _RECAP.findall(proc.stdout)
        recap = {k: int(v) for k, v in (item.split("=") for item in match[-1].split())} if match else {}
        lines = results.read_text().splitlines() if results.exists() else []
        return Run(proc.returncode, proc.stdout, proc.stderr, recap, [json.loads(line) for line in lines])


def ansible_env(workdir: Path) -> dict[str, str]:
    """Ansible confined to the test's directory and this checkout's collection."""
    return {
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
        "ANSIBLE_CALLBACKS_ENABLED": "record",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_HOME": str(workdir / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(workdir / "ansible-remote-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "0",
    }


@pytest.fixture
def ansible_lab(
    tmp_path: Path, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess, standin_state: StandinState
) -> AnsibleLab:
    """A Proximity data directory with host "lab" (fakepve + the real sshd; containers' `ss` reports
    3000 and 80; every vzdump archive is known to `pvesm path`), and the environment a playbook
    needs to reach it: PROXIMITY_DATA_DIR and PROXIMITY_SECRET_KEY."""
    standin_state.script("ss", stdout=LISTENING.format(port=3000) + LISTENING.format(port=80))
    pve.on_archive = standin_state.set_volume_path
    key = Fernet.generate_key().decode()
    lab = AnsibleLab(workdir=tmp_path, data_dir=tmp_path / "px", secret_key=key)
    with lab.sdk() as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access)
    lab.env = {**ansible_env(tmp_path), "PROXIMITY_DATA_DIR": str(lab.data_dir), "PROXIMITY_SECRET_KEY": key}
    return lab
