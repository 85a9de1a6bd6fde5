"""`pct` answers from the containers of the node it runs on (fake mode; no real node needed).

pve-container's ``pct exec`` loads the container's config from the node it runs on and fails
when there is none (``Configuration file 'nodes/<node>/lxc/<vmid>.conf' does not exist``) or when
the container is not running (``container '<vmid>' not running!``), both with exit status 255;
``pct push``/``pull`` need it running. The sandbox's Proxmox writes each node's containers to the
node table the stand-in reads; each node's shell answers at its own loopback address.
"""

from __future__ import annotations

import pytest

from proximity_sdk.errors import CommandFailedError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.shell import NodeShell
from proximity_sdk.sandbox import Sandbox
from tests.harness.pve import HarnessPve


def _fails(shell: NodeShell, node: str, vmid: int) -> CommandFailedError:
    with pytest.raises(CommandFailedError) as caught:
        shell.pct_exec(node, vmid, "echo hi", timeout=30)
    assert caught.value.exit_status == 255
    return caught.value


def test_exec_follows_the_node_and_the_state_of_the_container(
    pve: HarnessPve, pve_client: ProxmoxClient, tabled_node_shell: NodeShell
) -> None:
    absent = _fails(tabled_node_shell, "pve1", 120)
    assert "Configuration file 'nodes/pve1/lxc/120.conf' does not exist" in str(absent)

    pve_client.post(
        "/nodes/pve1/lxc",
        vmid=120,
        ostemplate="local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
        hostname="web",
        rootfs="local-lvm:8",
    )
    stopped = _fails(tabled_node_shell, "pve1", 120)
    assert "container '120' not running!" in str(stopped)
    with pytest.raises(CommandFailedError, match="can only push files to a running CT"):
        tabled_node_shell.pct_push("pve1", 120, b"x", "/root/x", timeout=30)

    pve_client.post("/nodes/pve1/lxc/120/status/start")
    assert tabled_node_shell.pct_exec("pve1", 120, "echo hi", timeout=30).stdout == "hi\n"
    assert tabled_node_shell.run("pve1", ["pct", "status", "120"], timeout=30).stdout == "status: running\n"
    other = _fails(tabled_node_shell, "pve2", 120)
    assert "Configuration file 'nodes/pve2/lxc/120.conf' does not exist" in str(other)

    pve_client.post("/nodes/pve1/lxc/120/migrate", target="pve2", restart=1)
    assert tabled_node_shell.pct_exec("pve2", 120, "echo moved", timeout=30).stdout == "moved\n"
    assert "nodes/pve1/lxc/120.conf" in str(_fails(tabled_node_shell, "pve1", 120))

    pve_client.post("/nodes/pve2/lxc/120/status/stop")
    pve_client.delete("/nodes/pve2/lxc/120")
    assert "nodes/pve2/lxc/120.conf" in str(_fails(tabled_node_shell, "pve2", 120))


def test_list_and_config_read_the_node(
    pve: HarnessPve, pve_client: ProxmoxClient, tabled_node_shell: NodeShell
) -> None:
    pve_client.post(
        "/nodes/pve2/lxc",
        vmid=121,
        ostemplate="local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
        hostname="db",
        rootfs="local-lvm:8",
        memory=1024,
    )
    assert tabled_node_shell.run("pve1", ["pct", "list"], timeout=30).stdout.splitlines()[1:] == []
    rows = tabled_node_shell.run("pve2", ["pct", "list"], timeout=30).stdout.splitlines()
    assert rows[1].split() == ["121", "stopped", "db"]
    config = tabled_node_shell.run("pve2", ["pct", "config", "121"], timeout=30).stdout
    assert "hostname: db\n" in config and "memory: 1024\n" in config


def test_the_sandbox_nodes_are_distinct() -> None:
    with Sandbox.start() as sandbox:
        addresses = sandbox.ssh.addresses
        assert addresses == {"pve1": "127.0.0.1", "pve2": "127.0.0.2"}
        client = ProxmoxClient(
            url=sandbox.url, token_id=sandbox.token_id, token_secret=sandbox.token_secret, ca_file=sandbox.ca_file
        )
        try:
            client.post(
                "/nodes/pve1/lxc",
                vmid=130,
                ostemplate="local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
                rootfs="local-lvm:8",
                start=1,
            )
        finally:
            client.close()
        with NodeShell(sandbox.ssh) as shell:
            assert shell.pct_exec("pve1", 130, "echo in", timeout=30).stdout == "in\n"
            with pytest.raises(CommandFailedError, match=r"nodes/pve2/lxc/130\.conf' does not exist"):
                shell.pct_exec("pve2", 130, "echo in", timeout=30)
