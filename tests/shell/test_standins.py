"""The harness's own promises: pvesm answers, scripted failures that run out, pct's refusals."""

from __future__ import annotations

import pytest

from proximity_sdk.errors import CommandFailedError
from proximity_sdk.proxmox.shell import NodeShell
from tests.harness.sshd import StandinState


def test_pvesm_path_answers_from_the_mapping(node_shell: NodeShell, standin_state: StandinState) -> None:
    volid = "local:backup/vzdump-lxc-105-2025_01_02-03_04_05.tar.zst"
    standin_state.set_volume_path(volid, "/var/lib/vz/dump/vzdump-lxc-105-2025_01_02-03_04_05.tar.zst")

    result = node_shell.run("pve1", ["pvesm", "path", volid], timeout=10)

    assert result.stdout == "/var/lib/vz/dump/vzdump-lxc-105-2025_01_02-03_04_05.tar.zst\n"
    with pytest.raises(CommandFailedError) as caught:
        node_shell.run("pve1", ["pvesm", "path", "nas:backup/missing.tar.zst"], timeout=10)
    assert caught.value.stderr_tail == "storage 'nas' does not exist"


def test_a_rule_with_times_fails_only_that_often(node_shell: NodeShell, standin_state: StandinState) -> None:
    standin_state.script("apk", match="add", times=1, exit_code=99, stderr="ERROR: unable to lock database\n")
    script = "apk add docker"

    with pytest.raises(CommandFailedError) as caught:
        node_shell.pct_exec("pve1", 105, script, timeout=10)
    node_shell.pct_exec("pve1", 105, script, timeout=10)  # the retry succeeds

    assert caught.value.exit_status == 99
    assert len(standin_state.calls("apk", vmid=105)) == 2


def test_scripted_stdout_replaces_the_default_answer(node_shell: NodeShell, standin_state: StandinState) -> None:
    standin_state.script("ss", stdout="LISTEN 0 4096 0.0.0.0:3000 0.0.0.0:*\n")

    result = node_shell.pct_exec("pve1", 105, "ss -ltn | grep -c ':3000 '", timeout=10)

    assert result.stdout == "1\n"


def test_pct_refuses_what_pct_refuses(node_shell: NodeShell) -> None:
    with pytest.raises(CommandFailedError) as unknown:
        node_shell.run("pve1", ["pct", "frobnicate", "105"], timeout=10)
    with pytest.raises(CommandFailedError) as bad_vmid:
        node_shell.run("pve1", ["pct", "exec", "abc", "--", "true"], timeout=10)

    assert unknown.value.exit_status == 255
    assert "unknown command 'pct frobnicate'" in unknown.value.stderr_tail
    assert "vmid: invalid format" in bad_vmid.value.stderr_tail


def test_containers_are_separate(node_shell: NodeShell, standin_state: StandinState) -> None:
    node_shell.pct_exec("pve1", 105, "echo a > /root/f", timeout=10)
    node_shell.pct_exec("pve1", 106, "echo b > /root/f", timeout=10)

    assert standin_state.ct_path(105, "/root/f").read_text() == "a\n"
    assert standin_state.ct_path(106, "/root/f").read_text() == "b\n"
    assert node_shell.pct_exec("pve1", 105, ". /etc/os-release; echo $ID", timeout=10).stdout == "alpine\n"
