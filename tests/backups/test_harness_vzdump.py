"""The harness's vzdump and restore (proximity_sdk/sandbox/_vzdump.py) behave as the module says."""

from __future__ import annotations

import re

import pytest

from proximity_sdk.errors import TaskFailedError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.tasks import wait_task
from proximity_sdk.sandbox._vzdump import read_archive_config
from tests.harness.pve import HarnessPve

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
VOLID = re.compile(r"^local:backup/vzdump-lxc-101-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar\.zst$")


def _container(pve: HarnessPve, client: ProxmoxClient) -> None:
    upid = client.post(
        "/nodes/pve1/lxc",
        vmid=101,
        ostemplate=TEMPLATE,
        hostname="app-1",
        memory=1024,
        rootfs="local-lvm:8",
        net0="name=eth0,bridge=vmbr0,ip=dhcp",
    )
    wait_task(client, str(upid))


def test_vzdump_writes_a_real_archive_listed_in_the_storage(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    _container(pve, pve_client)
    seen: list[tuple[str, str]] = []
    pve.on_archive = lambda volid, path: seen.append((volid, path))
    upid = pve_client.post("/nodes/pve1/vzdump", vmid="101", storage="local", mode="snapshot", compress="zstd")
    result = wait_task(pve_client, str(upid), on_log=lambda lines: None)
    assert any("creating vzdump archive" in line for line in result.log_tail)
    [volume] = pve_client.storage_content("pve1", "local", content="backup", vmid=101)
    assert VOLID.match(volume.volid)
    assert seen == [(volume.volid, str(pve.archive_path(volume.volid)))]
    assert volume.size == pve.archive_path(volume.volid).stat().st_size > 64 * 1024
    assert read_archive_config(pve.archive_path(volume.volid))["hostname"] == "app-1"
    # the content is the directory: removing the file removes the volume, and back
    data = pve.archive_path(volume.volid).read_bytes()
    pve.archive_path(volume.volid).unlink()
    assert pve_client.storage_content("pve1", "local", content="backup") == []
    pve.archive_path(volume.volid).write_bytes(data)
    assert [v.volid for v in pve_client.storage_content("pve1", "local", content="backup")] == [volume.volid]
    wait_task(pve_client, str(pve_client.delete(f"/nodes/pve1/storage/local/content/{volume.volid}")))
    assert not pve.archive_path(volume.volid).exists()


def test_restore_brings_the_archived_config_back_and_a_corrupt_archive_fails(
    pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    _container(pve, pve_client)
    wait_task(pve_client, str(pve_client.post("/nodes/pve1/vzdump", vmid="101", storage="local", compress="gzip")))
    [volume] = pve_client.storage_content("pve1", "local", content="backup")
    assert volume.volid.endswith(".tar.gz")
    wait_task(
        pve_client,
        str(
            pve_client.post(
                "/nodes/pve1/lxc", vmid=102, ostemplate=volume.volid, restore=1, storage="local-lvm", unique=1
            )
        ),
    )
    restored = pve.ct(102).config
    assert restored["hostname"] == "app-1" and restored["memory"] == 1024
    assert restored["rootfs"].startswith("local-lvm:vm-102-disk") and "size=8G" in restored["rootfs"]
    assert "ip=dhcp" in restored["net0"]
    assert restored["net0"] != pve.ct(101).config["net0"]  # unique: a new MAC

    pve.archive_path(volume.volid).write_bytes(b"not a tar archive at all" * 100)
    upid = pve_client.post(
        "/nodes/pve1/lxc", vmid=101, ostemplate=volume.volid, restore=1, force=1, storage="local-lvm"
    )
    with pytest.raises(TaskFailedError, match="unable to restore CT 101"):
        wait_task(pve_client, str(upid))
    assert pve.ct(101) is None  # PVE's overwrite path destroyed the old container first


@pytest.mark.pve(time_scale=0.01)
def test_vzdumps_on_one_node_wait_for_the_global_lock(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    _container(pve, pve_client)
    upid = pve_client.post("/nodes/pve1/lxc", vmid=102, ostemplate=TEMPLATE, rootfs="local-lvm:8")
    wait_task(pve_client, str(upid))
    pve.vzdump_secs = 20
    first = pve_client.post("/nodes/pve1/vzdump", vmid="101", storage="local")
    second = pve_client.post("/nodes/pve1/vzdump", vmid="102", storage="local", lockwait=1)
    logs: list[str] = []
    wait_task(pve_client, str(first))
    wait_task(pve_client, str(second), on_log=logs.extend)
    assert "INFO: trying to get global lock - waiting..." in logs
    assert pve.vzdump_parallel["pve1"] == 1
    assert pve.vzdump_waited["pve1"] == 1
