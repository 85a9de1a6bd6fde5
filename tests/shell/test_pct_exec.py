"""`pct exec` and plain node commands through a real sshd, a real shell and the `pct` stand-in."""

from __future__ import annotations

import logging
import os
import time

import pytest

from proximity_sdk.errors import CommandFailedError, CommandTimeoutError, ValidationError
from proximity_sdk.proxmox.shell import NodeShell
from tests.harness.sshd import StandinState


def test_pct_exec_reaches_pct_with_the_whole_script_as_one_argument(
    node_shell: NodeShell, standin_state: StandinState
) -> None:
    script = 'apk add --no-cache docker && rc-service docker start && echo "ready; $HOME"'

    result = node_shell.pct_exec("pve1", 105, script, args=["x y", "-n"], timeout=20)

    assert result.exit_status == 0
    assert result.stdout == "ready; /root\n"
    (pct,) = standin_state.calls("pct")
    assert pct.args == ("exec", "105", "--", "sh", "-c", script, "sh", "x y", "-n")
    tools = [(c.tool, c.args, c.vmid) for c in standin_state.calls() if c.tool != "pct"]
    assert tools == [
        ("apk", ("add", "--no-cache", "docker"), 105),
        ("rc-service", ("docker", "start"), 105),
    ]


def test_env_is_exported_inside_the_script_and_reaches_docker_compose(
    node_shell: NodeShell, standin_state: StandinState
) -> None:
    env = {"APP_DIR": "/opt/my app", "DB_PASSWORD": "p'w\"$(reboot)`id`;\n2"}

    node_shell.pct_exec(
        "pve2",
        201,
        'mkdir -p "$APP_DIR" && printf %s "$DB_PASSWORD" > "$APP_DIR/.pw" && '
        'docker compose --project-directory "$APP_DIR" up -d',
        env=env,
        timeout=20,
    )

    assert standin_state.ct_path(201, "/opt/my app/.pw").read_bytes() == env["DB_PASSWORD"].encode()
    (docker,) = standin_state.calls("docker", vmid=201)
    assert docker.args == ("compose", "--project-directory", "/opt/my app", "up", "-d")
    # The exports travel inside the single script argument, not as extra argv.
    (pct,) = standin_state.calls("pct")
    assert len(pct.argv) == 6
    assert pct.args[5].startswith("export APP_DIR='/opt/my app'\nexport DB_PASSWORD=")


def test_container_writes_stay_in_the_stand_in_container(node_shell: NodeShell, standin_state: StandinState) -> None:
    marker = "/opt/proximity-test-marker-105"

    node_shell.pct_exec("pve1", 105, f"echo hi > {marker} && test ! -w /usr", timeout=20)

    assert standin_state.ct_path(105, marker).read_text() == "hi\n"
    assert not os.path.exists(marker)


def test_non_zero_exit_raises_with_the_last_20_stderr_lines(node_shell: NodeShell) -> None:
    script = 'i=1; while [ $i -le 30 ]; do echo "err $i" >&2; i=$((i+1)); done; echo out; exit 3'

    with pytest.raises(CommandFailedError) as caught:
        node_shell.pct_exec("pve1", 105, script, timeout=20)

    assert caught.value.exit_status == 3
    assert caught.value.stderr_tail.splitlines() == [f"err {i}" for i in range(11, 31)]
    assert "container 105 on node pve1" in str(caught.value)


def test_check_false_returns_the_failed_result(node_shell: NodeShell) -> None:
    result = node_shell.pct_exec("pve1", 105, "test -e /opt/nothing", timeout=20, check=False)

    assert result.exit_status == 1
    assert result.stdout == ""


def test_scripted_tool_failure_surfaces_its_stderr(node_shell: NodeShell, standin_state: StandinState) -> None:
    standin_state.script("docker", match="compose up", exit_code=1, stderr="pull access denied for nope\n")

    with pytest.raises(CommandFailedError) as caught:
        node_shell.pct_exec("pve1", 105, "docker compose pull && docker compose up -d", timeout=20)

    assert caught.value.exit_status == 1
    assert caught.value.stderr_tail == "pull access denied for nope"
    assert [c.args for c in standin_state.calls("docker")] == [("compose", "pull"), ("compose", "up", "-d")]


def test_stopped_container_fails_like_pct(node_shell: NodeShell, standin_state: StandinState) -> None:
    """pve-container src/PVE/CLI/pct.pm, exec: dies before lxc-attach runs (docs/fidelity.md)."""
    standin_state.set_status(105, "stopped")

    with pytest.raises(CommandFailedError) as caught:
        node_shell.pct_exec("pve1", 105, "touch /ran", timeout=20)

    assert caught.value.exit_status == 255
    assert caught.value.stderr_tail == "container '105' not running!"
    assert not standin_state.ct_path(105, "/ran").exists()


def test_timeout_closes_the_channel_and_the_connection_stays_usable(node_shell: NodeShell) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeoutError) as caught:
        node_shell.pct_exec("pve1", 105, "echo started; sleep 30", timeout=0.5)

    assert time.monotonic() - started < 5
    assert isinstance(caught.value, TimeoutError)
    assert node_shell.run("pve1", ["echo", "still here"], timeout=10).stdout == "still here\n"


def test_output_streams_line_by_line_while_the_command_runs(node_shell: NodeShell) -> None:
    seen: list[tuple[str, str, float]] = []

    def on_output(stream: str, line: str) -> None:
        seen.append((stream, line, time.monotonic()))

    node_shell.pct_exec(
        "pve1",
        105,
        "echo one; echo warn >&2; sleep 0.5; printf 'two\\nthree'",
        timeout=20,
        on_output=on_output,
    )
    finished = time.monotonic()

    assert sorted((s, line) for s, line, _ in seen) == [
        ("stderr", "warn"),
        ("stdout", "one"),
        ("stdout", "three"),
        ("stdout", "two"),
    ]
    first = next(t for s, line, t in seen if line == "one")
    assert finished - first >= 0.4  # "one" arrived before the command ended, not at the end


def test_input_goes_to_stdin(node_shell: NodeShell, standin_state: StandinState) -> None:
    data = bytes(range(256)) * 3

    node_shell.pct_exec("pve1", 105, "cat > /root/stdin.bin", input=data, timeout=20)

    assert standin_state.ct_path(105, "/root/stdin.bin").read_bytes() == data


def test_run_quotes_each_argument_for_the_node_shell(node_shell: NodeShell, standin_state: StandinState) -> None:
    args = ["set", "$(touch /tmp/pwned)", "a;b", "'q'", "", "-x"]

    node_shell.run("pve1", ["pvesm", *args], timeout=10)

    (call,) = standin_state.calls("pvesm")
    assert call.args == tuple(args)


def test_secrets_stay_out_of_errors_and_logs(node_shell: NodeShell, caplog: pytest.LogCaptureFixture) -> None:
    secret = "hunter2-very-secret"
    caplog.set_level(logging.DEBUG, logger="proximity_sdk")

    with pytest.raises(CommandFailedError) as caught:
        node_shell.pct_exec("pve1", 105, "exit 4", env={"TOKEN": secret}, timeout=20)

    assert secret not in str(caught.value)
    assert caplog.records  # the shell did log, just not the value
    assert all(secret not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.pct_exec("pve1", 99, "true", timeout=5), "vmid"),
        (lambda s: s.pct_exec("pve1", True, "true", timeout=5), "vmid"),
        (lambda s: s.pct_exec("pve 1", 105, "true", timeout=5), "node"),
        (lambda s: s.pct_exec("pve1", 105, "true", env={"1BAD": "x"}, timeout=5), "env"),
        (lambda s: s.pct_exec("pve1", 105, "true", env={"OK": "a\x00b"}, timeout=5), "env"),
        (lambda s: s.pct_exec("pve1", 105, "echo \x00", timeout=5), "script"),
        (lambda s: s.pct_exec("pve1", 105, "true", args="abc", timeout=5), "args"),
        (lambda s: s.pct_exec("pve1", 105, "true", timeout=0), "timeout"),
        (lambda s: s.run("pve1", "ls -la", timeout=5), "argv"),
        (lambda s: s.run("pve1", [], timeout=5), "argv"),
        (lambda s: s.run("pve1", ["echo", "\ud800"], timeout=5), "argv"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    node_shell: NodeShell, standin_state: StandinState, call: object, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        call(node_shell)  # type: ignore[operator]

    assert caught.value.field == field
    assert standin_state.calls() == []


def test_nul_in_env_value_error_does_not_echo_the_value(node_shell: NodeShell) -> None:
    with pytest.raises(ValidationError) as caught:
        node_shell.pct_exec("pve1", 105, "true", env={"PASSWORD": "s3cr3t\x00"}, timeout=5)

    assert "PASSWORD" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_timeout_stops_the_command_on_the_node(node_shell: NodeShell, standin_state: StandinState) -> None:
    with pytest.raises(CommandTimeoutError):
        node_shell.pct_exec("pve1", 105, "sleep 30 & echo $! > /tmp/pid; wait", timeout=1)

    pid = int(standin_state.ct_path(105, "/tmp/pid").read_text())  # no PID namespace: a host pid
    deadline = time.monotonic() + 5
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init, which may reap it late)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
