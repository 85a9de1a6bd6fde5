"""`pct push` / `pct pull`: exact bytes, modes, the real command's rules, no leftovers on the node."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proximity_sdk.errors import CommandFailedError, ValidationError
from proximity_sdk.proxmox.shell import NodeShell
from tests.harness.sshd import StandinState


def _left_on_the_node(standin_state: StandinState) -> list[str]:
    """The temporary files this test's pct calls used that still exist (named from the calls, not
    by globbing /tmp: other tests and xdist workers push and pull at the same time)."""
    used = [a for c in standin_state.calls("pct") for a in c.args if a.startswith("/tmp/.proximity-p")]
    assert used, "no pct call went through a temporary file on the node"
    return [path for path in used if Path(path).exists()]


def test_push_delivers_exact_bytes_with_the_mode(node_shell: NodeShell, standin_state: StandinState) -> None:
    data = bytes(range(256)) * 4096 + b"\r\n\x00tail"  # 1 MiB and a bit, every byte value
    node_shell.pct_exec("pve1", 105, "mkdir -p /opt/app", timeout=20)

    node_shell.pct_push("pve1", 105, data, "/opt/app/.env", mode=0o600, timeout=30)

    target = standin_state.ct_path(105, "/opt/app/.env")
    assert target.read_bytes() == data
    assert target.stat().st_mode & 0o7777 == 0o600
    (push,) = [c for c in standin_state.calls("pct") if c.args[0] == "push"]
    assert push.args[1] == "105"
    assert push.args[3:] == ("/opt/app/.env", "--perms", "0600")
    assert push.args[2].startswith("/tmp/.proximity-push-")
    assert _left_on_the_node(standin_state) == []  # the temporary file on the node is gone


def test_push_sets_owner_ids_and_overwrites(node_shell: NodeShell, standin_state: StandinState) -> None:
    node_shell.pct_push("pve1", 105, b"first version, longer", "/root/compose.yml", timeout=20)
    node_shell.pct_push("pve1", 105, b"second", "/root/compose.yml", mode=0o640, user=1000, group=1001, timeout=20)

    target = standin_state.ct_path(105, "/root/compose.yml")
    assert target.read_bytes() == b"second"
    info = target.stat()
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o640, 1000, 1001)


def test_push_into_a_missing_directory_fails_like_pct(node_shell: NodeShell, standin_state: StandinState) -> None:
    with pytest.raises(CommandFailedError) as caught:
        node_shell.pct_push("pve1", 105, b"x", "/opt/missing/file", timeout=20)

    assert "failed to create file: /opt/missing/file: No such file or directory" in caught.value.stderr_tail
    assert _left_on_the_node(standin_state) == []


def test_push_to_a_stopped_container_fails(node_shell: NodeShell, standin_state: StandinState) -> None:
    standin_state.set_status(105, "stopped")

    with pytest.raises(CommandFailedError) as caught:
        node_shell.pct_push("pve1", 105, b"x", "/root/x", timeout=20)

    assert "can only push files to a running CT" in caught.value.stderr_tail


def test_pull_returns_exact_bytes(node_shell: NodeShell, standin_state: StandinState) -> None:
    data = os.urandom(200_000)
    standin_state.write_ct_file(105, "/var/lib/app/state.bin", data)

    assert node_shell.pct_pull("pve1", 105, "/var/lib/app/state.bin", timeout=20) == data
    assert _left_on_the_node(standin_state) == []


def test_pull_of_a_missing_file_fails(node_shell: NodeShell) -> None:
    with pytest.raises(CommandFailedError) as caught:
        node_shell.pct_pull("pve1", 105, "/etc/nothing-here", timeout=20)

    assert "failed to open /etc/nothing-here" in caught.value.stderr_tail


@pytest.mark.parametrize(
    "dest", ["relative/path", "/opt/../etc/passwd", "/opt/app/", "/opt//x", "/opt/a\x00b", "/opt/a\nb", ""]
)
def test_bad_destinations_are_refused(node_shell: NodeShell, standin_state: StandinState, dest: str) -> None:
    with pytest.raises(ValidationError) as caught:
        node_shell.pct_push("pve1", 105, b"x", dest, timeout=20)

    assert caught.value.field == "dest"
    assert standin_state.calls() == []


@pytest.mark.parametrize(("mode", "user"), [(0o10000, None), (-1, None), (0o644, -5)])
def test_bad_mode_or_owner_is_refused(node_shell: NodeShell, mode: int, user: int | None) -> None:
    with pytest.raises(ValidationError):
        node_shell.pct_push("pve1", 105, b"x", "/root/x", mode=mode, user=user, timeout=20)
