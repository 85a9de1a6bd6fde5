"""Connection reuse per node, concurrency within sshd's MaxSessions, reconnects, close."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest

from proximity_sdk.errors import NodeShellError, UnreachableError, ValidationError
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.proxmox.shell import NodeShell
from tests.harness.sshd import Sshd, StandinState, start_sshd


def _client_port(shell: NodeShell, node: str) -> str:
    # SSH_CONNECTION = "<client ip> <client port> <server ip> <server port>", set by sshd.
    return shell.run(node, ["sh", "-c", "echo $SSH_CONNECTION"], timeout=10).stdout.split()[1]


def test_commands_on_a_node_share_one_connection(node_shell: NodeShell) -> None:
    first = _client_port(node_shell, "pve1")
    node_shell.pct_exec("pve1", 105, "true", timeout=10)
    node_shell.pct_push("pve1", 105, b"x", "/root/x", timeout=10)

    assert _client_port(node_shell, "pve1") == first
    assert _client_port(node_shell, "pve2") != first  # each node has its own


def test_parallel_commands_beyond_max_sessions(node_shell: NodeShell, standin_state: StandinState) -> None:
    # The test sshd allows 10 sessions per connection, like a stock node; 24 at once must queue.
    def work(i: int) -> str:
        return node_shell.pct_exec("pve1", 100 + i, f"sleep 0.2; echo {i}", timeout=30).stdout

    with ThreadPoolExecutor(max_workers=24) as pool:
        outputs = list(pool.map(work, range(24)))

    assert outputs == [f"{i}\n" for i in range(24)]
    assert len({c.args[1] for c in standin_state.calls("pct")}) == 24


def test_a_dropped_connection_is_replaced(node_shell: NodeShell, sshd: Sshd) -> None:
    before = _client_port(node_shell, "pve1")
    # This connection's sshd session process: the command's ancestor whose parent is our test sshd
    # (between them: `timeout` and the login shell).
    script = (
        f"p=$PPID; while read -r _ _ _ pp _ < /proc/$p/stat && [ $pp -ne {sshd.process.pid} ]; do"
        " [ $pp -gt 1 ] || exit 1; p=$pp; done; echo $p"
    )
    session = int(node_shell.run("pve1", ["sh", "-c", script], timeout=10).stdout)
    with open(f"/proc/{session}/stat") as fh:
        assert int(fh.read().split()[3]) == sshd.process.pid  # a child of our test sshd, nothing else
    os.kill(session, signal.SIGTERM)

    after = _client_port(node_shell, "pve1")  # reconnects transparently: nothing ran on the dead one

    assert after != before


def test_closed_shell_refuses_work(node_shell: NodeShell) -> None:
    node_shell.run("pve1", ["true"], timeout=10)
    node_shell.close()

    with pytest.raises(ValidationError, match="closed"):
        node_shell.run("pve1", ["true"], timeout=10)


def _few_sessions_shell(tmp_path: Path, *, sleep: str) -> list[BaseException | None]:
    """Three commands at once on a node whose sshd allows two sessions per connection."""
    server = start_sshd(tmp_path / "sshd", max_sessions=2)
    access = SshAccess(
        user=server.user,
        port=server.port,
        key_file=str(server.client_key),
        known_hosts=str(server.known_hosts),
        addresses={"pve1": server.host},
    )
    try:
        with NodeShell(access, max_sessions=3) as shell:
            shell.run("pve1", ["true"], timeout=10)  # connect first: then all three share it
            with ThreadPoolExecutor(max_workers=3) as pool:
                futures = [pool.submit(shell.run, "pve1", ["sleep", sleep], timeout=15) for _ in range(3)]
                return [f.exception() for f in futures]
    finally:
        server.stop()


def test_a_refused_session_is_asked_again_once_one_frees_up(tmp_path: Path) -> None:
    """sshd refuses the third session while two run; one second later it has room again."""
    assert _few_sessions_shell(tmp_path, sleep="1") == [None, None, None]


def test_a_server_with_fewer_sessions_refuses_without_breaking_running_commands(tmp_path: Path) -> None:
    """When no session frees up within the back-off (about 3 s), the refusal is reported clearly."""
    outcomes = _few_sessions_shell(tmp_path, sleep="6")
    refused = [e for e in outcomes if e is not None]
    assert len(refused) == 1
    assert isinstance(refused[0], NodeShellError)
    assert "MaxSessions" in str(refused[0])


def test_a_command_that_ends_before_our_end_of_input_leaves_the_connection_alone(
    node_shell: NodeShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sshd drops the whole connection (every command on it) when an end-of-input arrives for a
    channel it has closed. That happens when a command ends and sshd's close reaches paramiko's
    transport thread between the moment our thread marks the end-of-input as sent and the moment
    it sends it: the transport then sends its close without one, and ours follows. Seen under load
    (tests/apps/test_concurrency.py, sshd logging "ieof packet referred to nonexistent channel");
    here every end-of-input sent from a caller's thread is held back long enough to lose that race."""
    original = paramiko.Transport._send_user_message

    def late_end_of_input(transport: paramiko.Transport, data: paramiko.Message) -> None:
        if data.asbytes()[:1] == paramiko.common.cMSG_CHANNEL_EOF and threading.current_thread() is not transport:
            time.sleep(0.3)
        original(transport, data)

    monkeypatch.setattr(paramiko.Transport, "_send_user_message", late_end_of_input)
    first = _client_port(node_shell, "pve1")
    for _ in range(3):
        assert node_shell.run("pve1", ["true"], timeout=10).exit_status == 0
    assert node_shell.pct_exec("pve1", 105, "echo done", timeout=10).stdout == "done\n"
    assert _client_port(node_shell, "pve1") == first  # the same connection all along


def test_a_connection_lost_during_a_command_points_at_ssh_not_at_the_api(node_shell: NodeShell, sshd: Sshd) -> None:
    # was: "Check the URL, the network path and that pveproxy runs on the host (port 8006)"
    script = (
        f"p=$PPID; while read -r _ _ _ pp _ < /proc/$p/stat && [ $pp -ne {sshd.process.pid} ]; do"
        " [ $pp -gt 1 ] || exit 1; p=$pp; done; echo $p"
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(node_shell.run, "pve1", ["sleep", "5"], timeout=15)
        time.sleep(0.3)
        session = int(node_shell.run("pve1", ["sh", "-c", script], timeout=10).stdout)  # the same connection
        os.kill(session, signal.SIGKILL)
        with pytest.raises(UnreachableError) as caught:
            running.result(timeout=15)
    assert "lost during sleep" in str(caught.value)
    assert "pveproxy" not in caught.value.hint and "sshd" in caught.value.hint
