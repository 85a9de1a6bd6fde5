"""The sandbox: a fake Proxmox (fakepve plus what it lacks) and its nodes' shell (an SSH server with
stand-in tools), driven through the SDK's real HTTPS and SSH clients, with nothing outside its directory."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.errors import NotFoundError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.proxmox.shell import NodeShell
from proximity_sdk.sandbox import Sandbox

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox.start(directory=tmp_path / "sandbox") as sb:
        yield sb


@pytest.fixture
def px(tmp_path: Path, sandbox: Sandbox) -> Iterator[Proximity]:
    with Proximity.local(data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False) as px:
        sandbox.add_to(px)
        yield px


def _calls(sandbox: Sandbox, tool: str) -> list[list[str]]:
    lines = (sandbox.shell.state / "calls.jsonl").read_text().splitlines()
    return [
        [base64.b64decode(a).decode() for a in entry["argv"]]
        for entry in map(json.loads, lines)
        if entry["tool"] == tool
    ]


def test_an_app_deploys_backs_up_restores_and_goes_through_real_https_and_ssh(sandbox: Sandbox, px: Proximity) -> None:
    op = px.apps.deploy("actualbudget", hostname="budget", strategy="compose")
    steps = [e.step for e in op.events() if e.message.endswith(": done")]
    app = op.wait(timeout=60)
    assert app.status == AppStatus.RUNNING and app.node in sandbox.nodes and app.vmid is not None
    assert steps[-3:] == ["project", "up", "health"]
    assert app.address is not None and app.address.startswith("10.10.")
    # the compose project landed inside the stand-in container, pushed with pct over the SSH shell
    project = sandbox.shell.state / "ct" / str(app.vmid) / "opt" / "proximity" / "budget"
    assert "actualbudget/actual-server" in (project / "compose.yaml").read_text()
    assert any(call[:2] == ["push", str(app.vmid)] for call in _calls(sandbox, "pct"))
    assert {(ct.vmid, ct.status) for ct in sandbox.pve.cts} == {(app.vmid, "running")}

    backup = px.backups.create(app.id).wait(timeout=60)
    assert backup.volid is not None and backup.size_bytes and backup.size_bytes > 0
    restored = px.backups.restore(backup.id).wait(timeout=60)
    assert restored.id == app.id and restored.vmid != app.vmid and restored.status == AppStatus.RUNNING

    px.apps.delete(app.id).wait(timeout=60)
    with pytest.raises(NotFoundError):
        px.apps.get(app.id)
    assert restored.vmid not in {ct.vmid for ct in sandbox.pve.cts}


def test_a_single_service_app_runs_as_a_native_oci_container_without_the_shell(sandbox: Sandbox, px: Proximity) -> None:
    app = px.apps.deploy("uptime-kuma", hostname="kuma").wait(timeout=60)
    assert app.config["runtime"] == "oci" and app.status == AppStatus.RUNNING
    ct = sandbox.pve.ct(app.vmid)
    assert ct is not None and ct.status == "running" and ct.config["ostype"] == "unmanaged"
    calls = sandbox.shell.state / "calls.jsonl"
    assert not calls.exists() or not calls.read_text()  # no command reached the nodes' shell


def test_the_shell_quotes_every_byte_and_refuses_other_keys(sandbox: Sandbox) -> None:
    hostile = 'it\'s $(touch /tmp/pwned) `id` ; "q" \\ *'
    with NodeShell(sandbox.ssh) as shell:
        result = shell.run("pve1", ["printf", "%s", hostile], timeout=30)
        assert result.stdout == hostile
        failed = shell.run("pve1", ["sh", "-c", "echo oops >&2; exit 7"], timeout=30, check=False)
        assert (failed.exit_status, failed.stderr) == (7, "oops\n")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - only the key matters here
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(
            "127.0.0.1",
            port=sandbox.shell.port,
            username=sandbox.shell.user,
            pkey=paramiko.ECDSAKey.generate(),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    client.close()


def test_stopping_removes_what_it_made(tmp_path: Path) -> None:
    sb = Sandbox.start()
    directory, port = sb.directory, sb.shell.port
    assert (directory / "node" / "standins" / "node" / "pct").stat().st_mode & 0o111
    sb.stop()
    assert not directory.exists()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a command as another user")
def test_pct_exec_works_for_a_user_without_privileges() -> None:
    """A user runs the sandbox on a laptop: `pct exec` enters the container in a user namespace."""
    sb = Sandbox.start()  # in the system temp directory, which another user can reach
    try:
        sb.pve.add_ct(150, node="pve1", status="running")  # `pct` acts on the node's own containers only
        subprocess.run(["chown", "-R", "nobody", str(sb.directory)], check=True)
        env = {**sb.shell.environment()}
        out = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--",
                "pct",
                "exec",
                "150",
                "--",
                "sh",
                "-c",
                "echo hi > /root/x; cat /etc/os-release | head -1; id -u",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == ['NAME="Alpine Linux"', "0"]  # root inside its namespace
        assert (sb.shell.state / "ct" / "150" / "root" / "x").read_text() == "hi\n"
    finally:
        sb.stop()


def test_a_sandbox_whose_tasks_take_time_runs_them_as_processes_its_node_shell_watches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from proximity_sdk.proxmox.task_watch import NodeTaskWatch
    from proximity_sdk.proxmox.tasks import wait_task
    from proximity_sdk.proxmox.upid import Upid
    from proximity_sdk.sandbox._workers import proc_starttime

    with (
        Sandbox.start(directory=tmp_path / "sandbox", time_scale=1.0) as sb,
        Proximity.local(data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False) as px,
    ):
        host = sb.add_to(px)
        client = px._clients.get(host.id)
        assert isinstance(client.task_watch, NodeTaskWatch)
        sb.pve.add_ct(150, name="watched", node="pve1").start_secs = 2.0
        upid = str(client.post("/nodes/pve1/lxc/150/status/start"))
        assert proc_starttime(Upid.parse(upid).pid) == Upid.parse(upid).pstart  # a real process, as on PVE
        with caplog.at_level("WARNING", logger="proximity_sdk.proxmox.task_watch"):
            result = wait_task(client, upid, timeout=30, history=None)
        polls = sum(
            1 for method, path, _ in sb.pve.requests if method == "GET" and upid in path and path.endswith("/status")
        )
    assert result.exitstatus == "OK"
    assert polls <= 5, polls  # the first polls, then the end the watch saw (unwatched: about 10)
    assert "not watching" not in caplog.text
