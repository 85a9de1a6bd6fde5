"""Lifecycle listeners around real operations: the first-party hosts-file plugin, loaded through its entry
point, and a recording plugin that sees before/after/error in order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationFailed
from proximity_sdk.models.app import App
from proximity_sdk.models.operation import Operation
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.plugins import hookimpl
from tests.apps.conftest import LISTENING
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import StandinState


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None, str | None]] = []

    @hookimpl
    def proximity_operation_before(self, operation: Operation, app: App | None) -> None:
        self.seen.append(("before", operation.kind, app.status.value if app else None, None))

    @hookimpl
    def proximity_operation_after(self, operation: Operation, app: App | None) -> None:
        self.seen.append(("after", operation.kind, app.status.value if app else None, app.address if app else None))

    @hookimpl
    def proximity_operation_error(self, operation: Operation, app: App | None, error: BaseException) -> None:
        self.seen.append(("error", operation.kind, app.status.value if app else None, type(error).__name__))


@pytest.fixture
def hosts_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "apps.hosts"
    path.write_text("127.0.0.1 localhost\n")
    monkeypatch.setenv("PROXIMITY_HOSTS_FILE", str(path))
    monkeypatch.setenv("PROXIMITY_HOSTS_DOMAIN", "apps.lan")
    return path


@pytest.fixture
def wired(
    tmp_path: Path, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess, standin_state: StandinState, hosts_file: Path
) -> Iterator[tuple[Proximity, Recorder]]:
    standin_state.script("ss", stdout=LISTENING.format(port=3000))
    recorder = Recorder()
    with Proximity.local(
        data_dir=tmp_path / "px",
        secret_key=Fernet.generate_key(),
        plugins=[recorder],
        entry_points=True,
        lease_seconds=5,
    ) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access)
        yield px, recorder


def test_hosts_plugin_follows_deploy_and_delete(wired: tuple[Proximity, Recorder], hosts_file: Path) -> None:
    px, recorder = wired
    assert any(name == "proximity-hosts" for name, _ in px.plugins.distributions())
    app = px.apps.deploy("gitea", hostname="git-1").wait(timeout=60)
    # the "after" listeners run right after the success is recorded: wait() may return first
    deadline = time.monotonic() + 5
    while "git-1" not in hosts_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    text = hosts_file.read_text()
    assert text.startswith("127.0.0.1 localhost\n")
    assert f"{app.address} git-1 git-1.apps.lan" in text

    px.apps.delete(app.id).wait(timeout=30)
    # listeners run right after the operation is recorded as done, so wait() may return first
    deadline = time.monotonic() + 5
    while "git-1" in hosts_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "git-1" not in hosts_file.read_text()
    assert hosts_file.read_text().startswith("127.0.0.1 localhost\n")

    assert recorder.seen == [
        ("before", "deploy", "deploying", None),
        ("after", "deploy", "running", app.address),
        ("before", "delete", "running", None),
        ("after", "delete", None, None),
    ]


def test_listeners_hear_failures_after_the_rollback(
    wired: tuple[Proximity, Recorder], hosts_file: Path, standin_state: StandinState
) -> None:
    px, recorder = wired
    standin_state.script("docker", match="up -d", exit_code=1, stderr="no space left on device\n")
    with pytest.raises(OperationFailed):
        px.apps.deploy("gitea", hostname="git-2").wait(timeout=60)
    # the error listener runs right after the failure is recorded, so wait() may return first
    deadline = time.monotonic() + 5
    while len(recorder.seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder.seen == [
        ("before", "deploy", "deploying", None),
        ("error", "deploy", "error", "CommandFailedError"),
    ]
    assert "git-2" not in hosts_file.read_text()


def test_a_failing_listener_never_breaks_an_operation(wired: tuple[Proximity, Recorder]) -> None:
    px, _ = wired

    class Broken:
        @hookimpl
        def proximity_operation_after(self, operation: Operation, app: Any) -> None:
            raise RuntimeError("listener bug")

    px.plugins.register(Broken(), name="broken")
    app = px.apps.deploy("gitea", hostname="git-3").wait(timeout=60)
    assert app.status.value == "running"
