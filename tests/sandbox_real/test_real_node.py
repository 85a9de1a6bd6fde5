"""The sandbox's Proxmox in real mode: every container operation acts on a real LXC container.

Driven through fakepve's HTTP API (``real_pve_client``) and the node shell over the real sshd
(``real_node_shell``), as Proximity drives a PVE node; checked against LXC itself (``lxc-info``,
the container's own files and cgroups), never against the sandbox's own bookkeeping alone.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest

from proximity_sdk.errors import CommandFailedError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.shell import NodeShell
from proximity_sdk.sandbox._real import _lxc
from tests.harness.real_node import RealHarnessPve, real_path

# the first test may build the Debian template (about 80 s, more on a busy machine) in its setup
pytestmark = [pytest.mark.real_node, pytest.mark.timeout(400)]

NET = "name=eth0,bridge=vmbr0,ip=dhcp"


def wait(client: ProxmoxClient, node: str, upid: str, *, timeout: float = 90) -> dict[str, Any]:
    """The task's final status; fails the test unless it ended OK."""
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.get(f"/nodes/{node}/tasks/{upid}/status")
        if status["status"] == "stopped":
            break
        assert time.monotonic() < deadline, f"task {upid} still running after {timeout} s"
        time.sleep(0.2)
    assert status.get("exitstatus") == "OK", client.get(f"/nodes/{node}/tasks/{upid}/log")
    return status


def create(
    client: ProxmoxClient, pve: RealHarnessPve, vmid: int, *, start: bool = True, node: str = "pve1", **extra: Any
) -> None:
    params: dict[str, Any] = {
        "vmid": vmid,
        "ostemplate": pve.template_volid,
        "hostname": f"ct{vmid}",
        "rootfs": "local-lvm:8",
        "net0": NET,
        "memory": 512,
        **extra,
    }
    if start:
        params["start"] = 1
    wait(client, node, client.post(f"/nodes/{node}/lxc", **params))


def address(client: ProxmoxClient, node: str, vmid: int, *, timeout: float = 30) -> str:
    """The DHCP address /interfaces reports for eth0, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        for item in client.get(f"/nodes/{node}/lxc/{vmid}/interfaces") or []:
            if item["name"] == "eth0" and item.get("inet"):
                return str(item["inet"]).split("/")[0]
        assert time.monotonic() < deadline, f"CT {vmid} got no DHCP lease within {timeout} s"
        time.sleep(0.25)


def lxc_state(pve: RealHarnessPve, vmid: int) -> str | None:
    name = pve.lxc_name(vmid)
    assert name is not None
    return _lxc.state(name)


def failure(shell: NodeShell, node: str, vmid: int, script: str = "true") -> CommandFailedError:
    with pytest.raises(CommandFailedError) as caught:
        shell.pct_exec(node, vmid, script, timeout=30)
    return caught.value


def test_lifecycle_on_a_real_container(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, real_node_shell: NodeShell
) -> None:
    client, shell = real_pve_client, real_node_shell
    create(client, real_pve, 150, start=False)
    assert lxc_state(real_pve, 150) == "stopped"
    assert client.get("/nodes/pve1/lxc/150/status/current")["status"] == "stopped"
    assert (real_path(real_pve, 150, "/etc/debian_version")).read_text().startswith("12.")

    wait(client, "pve1", client.post("/nodes/pve1/lxc/150/status/start"))
    assert lxc_state(real_pve, 150) == "running"
    leased = address(client, "pve1", 150)
    assert leased.startswith("10.0.3.")
    inside = shell.pct_exec("pve1", 150, "hostname; ip -4 -o addr show dev eth0", timeout=30).stdout
    assert inside.splitlines()[0] == "ct150"
    assert f"inet {leased}/" in inside  # the address the API reports is the container's own

    shell.pct_push("pve1", 150, b"pushed\n", "/root/pushed.txt", mode=0o640, user=1000, group=1001, timeout=30)
    stat = shell.pct_exec("pve1", 150, "stat -c '%a %u %g' /root/pushed.txt; cat /root/pushed.txt", timeout=30).stdout
    assert stat == "640 1000 1001\npushed\n"
    shell.pct_exec("pve1", 150, "printf 'made inside' > /tmp/inside.txt", timeout=30)
    assert shell.pct_pull("pve1", 150, "/tmp/inside.txt", timeout=30) == b"made inside"
    failed = shell.pct_exec("pve1", 150, "exit 7", timeout=30, check=False)
    assert failed.exit_status == 7  # pct exec keeps the command's exit status

    wait(client, "pve1", client.post("/nodes/pve1/lxc/150/status/shutdown", timeout=30))
    assert lxc_state(real_pve, 150) == "stopped"
    stopped = failure(shell, "pve1", 150)
    assert stopped.exit_status == 255
    assert "container '150' not running!" in str(stopped)
    with pytest.raises(CommandFailedError, match="can only push files to a running CT"):
        shell.pct_push("pve1", 150, b"x", "/root/late.txt", timeout=30)

    wait(client, "pve1", client.delete("/nodes/pve1/lxc/150"))
    assert lxc_state(real_pve, 150) is None
    assert not _lxc.list_names(real_pve.real_prefix + "-")
    absent = failure(shell, "pve1", 150)
    assert absent.exit_status == 255
    assert "Configuration file 'nodes/pve1/lxc/150.conf' does not exist" in str(absent)


def test_pct_answers_for_its_own_node_only(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, real_node_shell: NodeShell
) -> None:
    create(real_pve_client, real_pve, 151)
    assert real_node_shell.pct_exec("pve1", 151, "echo here", timeout=30).stdout == "here\n"
    elsewhere = failure(real_node_shell, "pve2", 151)
    assert "Configuration file 'nodes/pve2/lxc/151.conf' does not exist" in str(elsewhere)
    listed = real_node_shell.run("pve1", ["pct", "list"], timeout=30).stdout.splitlines()
    assert listed[0].split() == ["VMID", "Status", "Lock", "Name"]
    assert listed[1].split() == ["151", "running", "ct151"]
    assert real_node_shell.run("pve2", ["pct", "list"], timeout=30).stdout.splitlines()[1:] == []
    config = real_node_shell.run("pve1", ["pct", "config", "151"], timeout=30).stdout
    assert "hostname: ct151\n" in config and "memory: 512\n" in config
    # pct exec keeps the caller's environment by default (pct.pm: keep-env defaults to 1), with a
    # node's root PATH; --keep-env 0 clears it
    show = 'echo "[$SSH_CONNECTION] $PATH"'
    kept = real_node_shell.run("pve1", ["pct", "exec", "151", "--", "sh", "-c", show], timeout=30).stdout
    assert kept.startswith("[127.0.0.") and kept.rstrip().endswith(
        " /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    )
    cleared = real_node_shell.run(
        "pve1", ["pct", "exec", "151", "--keep-env", "0", "--", "sh", "-c", show], timeout=30
    ).stdout
    assert cleared.startswith("[] ")


def test_status_follows_a_container_that_powered_off(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, real_node_shell: NodeShell
) -> None:
    create(real_pve_client, real_pve, 152)
    real_node_shell.pct_exec("pve1", 152, "systemctl poweroff", timeout=30, check=False)
    deadline = time.monotonic() + 30
    while lxc_state(real_pve, 152) == "running":
        assert time.monotonic() < deadline, "the container did not power off"
        time.sleep(0.25)
    assert real_pve_client.get("/nodes/pve1/lxc/152/status/current")["status"] == "stopped"


def test_memory_and_cores_become_cgroup_limits(real_pve: RealHarnessPve, real_pve_client: ProxmoxClient) -> None:
    create(real_pve_client, real_pve, 153)
    real_pve_client.put("/nodes/pve1/lxc/153/config", memory=256, cores=1)
    name = real_pve.lxc_name(153)
    assert name is not None

    def cgroup(key: str) -> str:
        return subprocess.run(
            ["lxc-cgroup", "-n", name, key], capture_output=True, text=True, check=True
        ).stdout.strip()

    assert cgroup("memory.limit_in_bytes") == str(256 * 1024 * 1024)
    assert cgroup("cpu.cfs_quota_us") == "100000"
    assert real_pve.real_notes[153] == []
    # kept for the next start too
    assert "lxc.cgroup.memory.limit_in_bytes = 268435456" in (_lxc.LXC_PATH / name / "config").read_text()


def test_vzdump_and_restore_of_a_real_filesystem(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, real_node_shell: NodeShell
) -> None:
    client, shell = real_pve_client, real_node_shell
    create(client, real_pve, 154)
    shell.pct_exec("pve1", 154, "echo version-1 > /root/data.txt", timeout=30)
    wait(
        client, "pve1", client.post("/nodes/pve1/vzdump", vmid="154", storage="local", compress="zstd", mode="snapshot")
    )
    [volume] = client.get("/nodes/pve1/storage/local/content", content="backup")
    assert volume["volid"].startswith("local:backup/vzdump-lxc-154-") and volume["volid"].endswith(".tar.zst")
    archive = real_pve.archive_path(volume["volid"])
    members = subprocess.run(
        ["tar", "-t", "--zstd", "-f", str(archive)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "./etc/vzdump/pct.conf" in members and "./root/data.txt" in members and "./etc/debian_version" in members

    # a new container from the backup holds the file as it was
    wait(
        client,
        "pve1",
        client.post("/nodes/pve1/lxc", vmid=155, ostemplate=volume["volid"], restore=1, storage="local-lvm", unique=1),
    )
    assert client.get("/nodes/pve1/lxc/155/config")["hostname"] == "ct154"
    wait(client, "pve1", client.post("/nodes/pve1/lxc/155/status/start"))
    assert shell.pct_exec("pve1", 155, "cat /root/data.txt", timeout=30).stdout == "version-1\n"

    # in place (force) over the stopped original, whose file changed since
    shell.pct_exec("pve1", 154, "echo version-2 > /root/data.txt", timeout=30)
    wait(client, "pve1", client.post("/nodes/pve1/lxc/154/status/stop"))
    wait(
        client,
        "pve1",
        client.post("/nodes/pve1/lxc", vmid=154, ostemplate=volume["volid"], restore=1, force=1, storage="local-lvm"),
    )
    assert real_path(real_pve, 154, "/root/data.txt").read_text() == "version-1\n"
    assert lxc_state(real_pve, 154) == "stopped"


def test_clone_copies_the_stopped_source(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, real_node_shell: NodeShell
) -> None:
    client, shell = real_pve_client, real_node_shell
    create(client, real_pve, 156)
    shell.pct_exec("pve1", 156, "echo original > /root/mark.txt", timeout=30)
    wait(client, "pve1", client.post("/nodes/pve1/lxc/156/status/shutdown"))
    wait(client, "pve1", client.post("/nodes/pve1/lxc/156/clone", newid=157, hostname="copy", full=1))
    for vmid in (156, 157):
        wait(client, "pve1", client.post(f"/nodes/pve1/lxc/{vmid}/status/start"))
    assert shell.pct_exec("pve1", 157, "cat /root/mark.txt; hostname", timeout=30).stdout == "original\ncopy\n"
    assert address(client, "pve1", 156) != address(client, "pve1", 157)  # a new MAC, a lease of its own


def test_migrate_in_restart_mode(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, real_node_shell: NodeShell
) -> None:
    client, shell = real_pve_client, real_node_shell
    create(client, real_pve, 158)
    shell.pct_exec("pve1", 158, "echo moved > /root/mark.txt", timeout=30)
    before = shell.pct_exec("pve1", 158, "cat /proc/1/stat | cut -d' ' -f22", timeout=30).stdout
    wait(client, "pve1", client.post("/nodes/pve1/lxc/158/migrate", target="pve2", restart=1, timeout=30))
    assert lxc_state(real_pve, 158) == "running"
    assert shell.pct_exec("pve2", 158, "cat /root/mark.txt", timeout=30).stdout == "moved\n"
    after = shell.pct_exec("pve2", 158, "cat /proc/1/stat | cut -d' ' -f22", timeout=30).stdout
    assert after != before  # its init started again (restart mode)
    assert "nodes/pve1/lxc/158.conf" in str(failure(shell, "pve1", 158))
    assert address(client, "pve2", 158).startswith("10.0.3.")


def test_appliance_index_offers_the_built_templates(real_pve: RealHarnessPve, real_pve_client: ProxmoxClient) -> None:
    index = real_pve_client.get("/nodes/pve1/aplinfo")
    names = [entry["template"] for entry in index]
    assert real_pve.real_templates[0].name in names
    assert all(name.startswith("debian-") and name.endswith("_amd64.tar.zst") for name in names)
    wanted = names[-1]
    wait(real_pve_client, "pve1", real_pve_client.post("/nodes/pve1/aplinfo", storage="local", template=wanted))
    stored = real_pve.template_dir("local") / wanted
    template = next(t for t in real_pve.real_templates if t.name == wanted)
    assert stored.stat().st_size == template.path.stat().st_size
    with pytest.raises(Exception, match="no such template") as caught:
        real_pve_client.post("/nodes/pve1/aplinfo", storage="local", template="alpine-3.22-default_x_amd64.tar.xz")
    assert real_pve.real_templates[0].name in str(caught.value)  # the error lists what the index has


def test_a_failed_create_leaves_no_container(real_pve: RealHarnessPve, real_pve_client: ProxmoxClient) -> None:
    broken = real_pve.template_dir("local") / "debian-12-standard_12.0-1_amd64.tar.zst"
    broken.write_bytes(b"not a tarball")
    real_pve.store_file("local", broken.name, broken.stat().st_size, content="vztmpl")
    upid = real_pve_client.post(
        "/nodes/pve1/lxc", vmid=159, ostemplate=f"local:vztmpl/{broken.name}", rootfs="local-lvm:8", net0=NET
    )
    deadline = time.monotonic() + 60
    while (status := real_pve_client.get(f"/nodes/pve1/tasks/{upid}/status"))["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status["exitstatus"].startswith("unable to create CT 159 - ")
    assert lxc_state(real_pve, 159) is None
    assert not (_lxc.LXC_PATH / str(real_pve.lxc_name(159))).exists()
    assert real_pve.ct(159) is None


def test_teardown_removes_every_container_of_the_sandbox(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient
) -> None:
    create(real_pve_client, real_pve, 160)
    create(real_pve_client, real_pve, 161, start=False)
    leased = address(real_pve_client, "pve1", 160)
    assert f" {leased} " in _lxc.LEASES.read_text()
    assert len(_lxc.list_names(real_pve.real_prefix + "-")) == 2
    gone = real_pve.destroy_real_containers()
    assert sorted(gone) == [real_pve.lxc_name(160), real_pve.lxc_name(161)]
    assert _lxc.list_names(real_pve.real_prefix + "-") == []
    # its address went back to lxc-net's pool (dhcp_release), not held for the lease time
    deadline = time.monotonic() + 5
    while f" {leased} " in _lxc.LEASES.read_text():
        assert time.monotonic() < deadline, f"the lease of {leased} was not released (dnsmasq-utils installed?)"
        time.sleep(0.1)


def test_sandbox_start_real_runs_real_containers_and_removes_them(real_template: object) -> None:
    from proximity_sdk.sandbox import Sandbox

    with Sandbox.start(real=True) as sandbox:
        assert sandbox.real and "real LXC containers" in repr(sandbox)
        assert sandbox.pve.version == "9.0.10"  # no OCI images in real mode: apps deploy as compose apps
        [volume] = [a["template"] for a in sandbox.pve.appliances][:1]
        client = ProxmoxClient(
            url=sandbox.url,
            token_id=sandbox.token_id,
            token_secret=sandbox.token_secret,
            ca_file=sandbox.ca_file,
            timeout=(5.0, 60.0),
        )
        try:
            wait(
                client,
                "pve1",
                client.post(
                    "/nodes/pve1/lxc",
                    vmid=170,
                    ostemplate=f"local:vztmpl/{volume}",
                    hostname="sb",
                    rootfs="local-lvm:8",
                    net0=NET,
                    start=1,
                ),
            )
            assert address(client, "pve1", 170).startswith("10.0.3.")
        finally:
            client.close()
        with NodeShell(sandbox.ssh) as shell:  # the sandbox's own shell (paramiko), pve1 at 127.0.0.1
            assert shell.pct_exec("pve1", 170, "hostname", timeout=30).stdout == "sb\n"
            with pytest.raises(CommandFailedError, match=r"nodes/pve2/lxc/170\.conf"):
                shell.pct_exec("pve2", 170, "hostname", timeout=30)
        prefix = sandbox.pve.real_prefix + "-"
        assert _lxc.list_names(prefix) == [f"{prefix}170"]
    assert _lxc.list_names(prefix) == []


def test_orphans_of_a_dead_process_are_swept_and_live_ones_kept(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient
) -> None:
    create(real_pve_client, real_pve, 162, start=False)
    create(real_pve_client, real_pve, 163, start=False)
    prefix = real_pve.real_prefix + "-"
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout.strip()
    (_lxc.LXC_PATH / f"{prefix}163" / "proximity-owner").write_text(dead + "\n")  # its maker has exited
    assert _lxc.owner(f"{prefix}162") == os.getpid()
    half_made = _lxc.LXC_PATH / f"{prefix}164"  # a create killed while unpacking: no config yet
    (half_made / "rootfs" / "etc").mkdir(parents=True)
    (half_made / "proximity-owner").write_text(dead + "\n")
    assert _lxc.sweep_orphans(prefix) == [f"{prefix}163", f"{prefix}164"]
    assert _lxc.list_names(prefix) == [f"{prefix}162"]
    assert not half_made.exists()


def test_debian_13_template_boots_with_its_lease_and_resolver(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, real_node_shell: NodeShell, real_templates: dict[int, Any]
) -> None:
    template = real_templates[13]
    volid = real_pve.add_template("local", template)
    create(real_pve_client, real_pve, 164, ostemplate=volid)
    leased = address(real_pve_client, "pve1", 164)
    out = real_node_shell.pct_exec(
        "pve1",
        164,
        "cat /etc/debian_version; grep -c '^nameserver 10.0.3.1' /etc/resolv.conf; readlink /proc/1/exe",
        timeout=30,
    ).stdout.split()
    assert out[0].startswith("13.") and out[1] == "1" and out[2] == "/usr/lib/systemd/systemd"
    assert leased.startswith("10.0.3.")
    # Debian 13 mounts a tmpfs on /tmp: push and pull work inside the container's mount namespace,
    # as pct's do, not on the root filesystem directory beneath it
    real_node_shell.pct_push("pve1", 164, b"in tmpfs", "/tmp/pushed", timeout=30)
    assert (
        real_node_shell.pct_exec("pve1", 164, "findmnt -no FSTYPE /tmp; cat /tmp/pushed", timeout=30).stdout
        == "tmpfs\nin tmpfs"
    )
    assert not real_path(real_pve, 164, "/tmp/pushed").exists()
    assert real_node_shell.pct_pull("pve1", 164, "/tmp/pushed", timeout=30) == b"in tmpfs"


def test_vzdump_stop_mode_stops_and_starts_the_container(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, real_node_shell: NodeShell
) -> None:
    create(real_pve_client, real_pve, 165)
    booted = real_node_shell.pct_exec("pve1", 165, "cut -d' ' -f22 /proc/1/stat", timeout=30).stdout
    wait(
        real_pve_client,
        "pve1",
        real_pve_client.post("/nodes/pve1/vzdump", vmid="165", storage="local", compress="gzip", mode="stop"),
    )
    [volume] = real_pve_client.get("/nodes/pve1/storage/local/content", content="backup")
    assert volume["volid"].endswith(".tar.gz")
    members = subprocess.run(
        ["tar", "-tzf", str(real_pve.archive_path(volume["volid"]))], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "./etc/vzdump/pct.conf" in members
    assert lxc_state(real_pve, 165) == "running"
    again = real_node_shell.pct_exec("pve1", 165, "cut -d' ' -f22 /proc/1/stat", timeout=30).stdout
    assert again != booted  # it was shut down for the archive and booted again


def test_snapshot_rollback_and_clone_from_a_snapshot(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, real_node_shell: NodeShell
) -> None:
    client, shell = real_pve_client, real_node_shell
    create(client, real_pve, 167)
    shell.pct_exec("pve1", 167, "echo before > /root/state.txt", timeout=30)
    wait(client, "pve1", client.post("/nodes/pve1/lxc/167/snapshot", snapname="safe"))
    assert lxc_state(real_pve, 167) == "running"  # frozen for the copy, running again
    shell.pct_exec("pve1", 167, "echo after > /root/state.txt", timeout=30)

    # a clone of the running container from its snapshot holds the snapshot's files
    wait(
        client,
        "pve1",
        client.post("/nodes/pve1/lxc/167/clone", newid=168, snapname="safe", full=1, hostname="fromsnap"),
    )
    assert real_path(real_pve, 168, "/root/state.txt").read_text() == "before\n"

    wait(client, "pve1", client.post("/nodes/pve1/lxc/167/snapshot/safe/rollback", start=1))
    assert lxc_state(real_pve, 167) == "running"
    assert shell.pct_exec("pve1", 167, "cat /root/state.txt", timeout=30).stdout == "before\n"

    name = real_pve.lxc_name(167)
    assert name is not None and _lxc.snapshot_dir(name, "safe").is_dir()
    wait(client, "pve1", client.delete("/nodes/pve1/lxc/167/snapshot/safe"))
    assert not _lxc.snapshot_dir(name, "safe").exists()

    # destroying a container removes its snapshots' copies with it
    wait(client, "pve1", client.post("/nodes/pve1/lxc/167/snapshot", snapname="kept"))
    wait(client, "pve1", client.post("/nodes/pve1/lxc/167/status/stop"))
    wait(client, "pve1", client.delete("/nodes/pve1/lxc/167"))
    assert not (_lxc.LXC_PATH / name).exists()
