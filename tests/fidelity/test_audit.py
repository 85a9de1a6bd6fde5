"""The rest of the audit (docs/fidelity.md): each test pins one Proxmox behaviour Proximity relies on,
against the sandbox's Proxmox and, where the SDK judges the answer, the SDK."""

from __future__ import annotations

import pytest

from proximity_sdk.errors import ProximityError, TaskFailedError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.tasks import wait_task
from tests.harness.pve import HarnessPve

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
NET = "name=eth0,bridge=vmbr0,ip=dhcp"


def _create(client: ProxmoxClient, vmid: int, **extra: object) -> None:
    params: dict[str, object] = dict(vmid=vmid, ostemplate=TEMPLATE, rootfs="local-lvm:8", net0=NET)
    params.update(extra)
    wait_task(client, str(client.post("/nodes/pve1/lxc", **params)))


def _start(client: ProxmoxClient, vmid: int) -> None:
    wait_task(client, str(client.post(f"/nodes/pve1/lxc/{vmid}/status/start")))


def test_create_defaults(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # create_vm: unprivileged defaults to 1; hostname CT<vmid>, memory 512, swap 512 when not given
    _create(pve_client, 200)
    config = pve.ct(200).config
    assert str(config["unprivileged"]) == "1"
    assert config["hostname"] == "CT200" and str(config["memory"]) == "512" and str(config["swap"]) == "512"
    assert config["rootfs"].startswith("local-lvm:vm-200-disk-0") and "size=8G" in config["rootfs"]


def test_create_without_rootfs_is_4g_on_the_storage_parameter(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # create_vm: storage // 'local'; no rootfs -> "$storage:4"
    wait_task(pve_client, str(pve_client.post("/nodes/pve1/lxc", vmid=201, ostemplate=TEMPLATE, storage="local-lvm")))
    rootfs = pve.ct(201).config["rootfs"]
    assert rootfs.startswith("local-lvm:vm-201-disk-0") and "size=4G" in rootfs


def test_create_on_a_storage_without_rootdir_content_is_refused(pve_client: ProxmoxClient) -> None:
    # create_vm check_and_activate_storage: raise_param_exc "storage 'local' does not support container directories"
    with pytest.raises(ProximityError, match="does not support container directories"):
        pve_client.post("/nodes/pve1/lxc", vmid=202, ostemplate=TEMPLATE, rootfs="local:8")


def test_duplicate_vmid_is_refused_before_any_task(pve_client: ProxmoxClient) -> None:
    _create(pve_client, 203)
    with pytest.raises(ProximityError, match="CT 203 already exists on node 'pve1'"):
        pve_client.post("/nodes/pve1/lxc", vmid=203, ostemplate=TEMPLATE, rootfs="local-lvm:8")


def test_start_of_a_running_container_and_shutdown_of_a_stopped_one(pve_client: ProxmoxClient) -> None:
    # Status.pm vm_start: "CT $vmid already running"; vm_shutdown: "CT $vmid not running"
    _create(pve_client, 204)
    _start(pve_client, 204)
    with pytest.raises(ProximityError, match="CT 204 already running"):
        wait_task(pve_client, str(pve_client.post("/nodes/pve1/lxc/204/status/start")))
    wait_task(pve_client, str(pve_client.post("/nodes/pve1/lxc/204/status/stop")))
    with pytest.raises(ProximityError, match="CT 204 not running"):
        wait_task(pve_client, str(pve_client.post("/nodes/pve1/lxc/204/status/shutdown")))


def test_destroy_of_a_running_container_is_refused(pve_client: ProxmoxClient) -> None:
    # destroy_vm: "unable to destroy CT $vmid - container is running"
    _create(pve_client, 205)
    _start(pve_client, 205)
    with pytest.raises(ProximityError, match="unable to destroy CT 205 - container is running"):
        wait_task(pve_client, str(pve_client.delete("/nodes/pve1/lxc/205", purge=1)))


def test_destroy_with_purge_removes_the_container_and_its_disks(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    _create(pve_client, 206)
    wait_task(pve_client, str(pve_client.delete("/nodes/pve1/lxc/206", purge=1, **{"destroy-unreferenced-disks": 1})))
    assert pve.ct(206) is None
    assert not [v for v in pve_client.storage_content("pve1", "local-lvm") if v.vmid == 206]


def test_resize_never_shrinks_and_refuses_the_same_size(pve_client: ProxmoxClient) -> None:
    # resize_vm: "unable to shrink disk size", "disk is already at specified size"
    _create(pve_client, 207)
    with pytest.raises(ProximityError, match="unable to shrink disk size"):
        wait_task(pve_client, str(pve_client.put("/nodes/pve1/lxc/207/resize", disk="rootfs", size="4G")))
    with pytest.raises(ProximityError, match="disk is already at specified size"):
        wait_task(pve_client, str(pve_client.put("/nodes/pve1/lxc/207/resize", disk="rootfs", size="8G")))


def test_migrating_a_running_container_needs_restart(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # migrate_vm: "can't migrate running container without --online or --restart"
    pve.add_node("pve2")
    _create(pve_client, 208)
    _start(pve_client, 208)
    with pytest.raises(ProximityError, match="can't migrate running container without --online or --restart"):
        wait_task(pve_client, str(pve_client.post("/nodes/pve1/lxc/208/migrate", target="pve2")))


def test_full_clone_of_a_running_container_needs_a_snapshot(pve_client: ProxmoxClient) -> None:
    # clone_vm: "Full clone of a running container is only possible from a snapshot"
    _create(pve_client, 209)
    _start(pve_client, 209)
    with pytest.raises(ProximityError, match="Full clone of a running container is only possible from a"):
        wait_task(pve_client, str(pve_client.post("/nodes/pve1/lxc/209/clone", newid=210, full=1)))


def test_vzdump_without_compress_writes_a_plain_tar(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # compressor_info: no compress -> no compressor, extension ".tar"
    _create(pve_client, 211)
    wait_task(pve_client, str(pve_client.post("/nodes/pve1/vzdump", vmid="211", storage="local")))
    [volume] = pve_client.storage_content("pve1", "local", content="backup")
    assert volume.volid.endswith(".tar") and volume.volid.startswith("local:backup/vzdump-lxc-211-")


def test_restore_over_an_existing_container_needs_force_and_a_stopped_one(
    pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    _create(pve_client, 212)
    wait_task(pve_client, str(pve_client.post("/nodes/pve1/vzdump", vmid="212", storage="local")))
    [volume] = pve_client.storage_content("pve1", "local", content="backup")
    with pytest.raises(ProximityError, match="CT 212 already exists"):
        wait_task(
            pve_client,
            str(pve_client.post("/nodes/pve1/lxc", vmid=212, ostemplate=volume.volid, restore=1, storage="local-lvm")),
        )
    _start(pve_client, 212)
    with pytest.raises(ProximityError, match="can't overwrite running container"):
        wait_task(
            pve_client,
            str(
                pve_client.post(
                    "/nodes/pve1/lxc", vmid=212, ostemplate=volume.volid, restore=1, storage="local-lvm", force=1
                )
            ),
        )


def test_restore_defaults_to_storage_local(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # create_vm: my $storage = extract_param($param, 'storage') // 'local' -> local has no rootdir content
    _create(pve_client, 213)
    wait_task(pve_client, str(pve_client.post("/nodes/pve1/vzdump", vmid="213", storage="local")))
    [volume] = pve_client.storage_content("pve1", "local", content="backup")
    with pytest.raises(ProximityError, match="does not support container directories"):
        wait_task(pve_client, str(pve_client.post("/nodes/pve1/lxc", vmid=214, ostemplate=volume.volid, restore=1)))


def test_aplinfo_download_is_a_download_task_named_after_the_template(
    pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    # apl_download: fork_worker('download', $template, ...); "no such template"
    template = "alpine-3.20-default_20240908_amd64.tar.xz"
    wait_task(pve_client, str(pve_client.post("/nodes/pve1/aplinfo", storage="local", template=template)))
    [task] = [t for t in pve.tasklog if t["type"] == "download"]
    assert task["id"] == template
    assert f"local:vztmpl/{template}" in [v.volid for v in pve_client.storage_content("pve1", "local")]
    with pytest.raises(ProximityError, match="no such template"):
        pve_client.post("/nodes/pve1/aplinfo", storage="local", template="nope.tar.xz")


@pytest.mark.parametrize(
    ("exitstatus", "ok"),
    [("OK", True), ("WARNINGS: 2", True), ("unexpected status", False), ("command 'tar' failed: exit code 2", False)],
)
def test_task_outcome_is_pve_upid_status_is_error(
    pve: HarnessPve, pve_client: ProxmoxClient, exitstatus: str, ok: bool
) -> None:
    # pve-common PVE::UPID::status_is_error: only OK and WARNINGS: n are success
    _create(pve_client, 215)
    upid = str(pve_client.post("/nodes/pve1/lxc/215/status/start"))
    wait_task(pve_client, upid)
    pve.tasks[upid]["exitstatus"] = exitstatus
    if ok:
        assert wait_task(pve_client, upid).exitstatus == exitstatus
    else:
        with pytest.raises(TaskFailedError, match=exitstatus):
            wait_task(pve_client, upid)


def test_a_missing_snapshot_in_pve_words(pve_client: ProxmoxClient) -> None:
    # pve-guest-common AbstractConfig.pm snapshot_delete: "snapshot '<name>' does not exist"
    # (proxmox/guests.py delete_snapshot takes that wording as already deleted)
    from proximity_sdk.proxmox.guests import _SNAPSHOT_GONE, delete_snapshot

    _create(pve_client, 220)
    with pytest.raises(ProximityError) as caught:
        wait_task(pve_client, str(pve_client.delete("/nodes/pve1/lxc/220/snapshot/nosuch")))
    assert _SNAPSHOT_GONE.search(str(caught.value))
    assert delete_snapshot(pve_client, "pve1", 220, "nosuch") is None


def test_a_stale_digest_is_refused(pve_client: ProxmoxClient) -> None:
    # pve-common PVE::Tools::assert_if_modified, called by pve-container API2/LXC/Config.pm update_vm
    from proximity_sdk.proxmox.guests import set_config

    _create(pve_client, 221)
    digest = pve_client.lxc_config("pve1", 221).digest
    set_config(pve_client, "pve1", 221, memory_mb=768, digest=digest)
    with pytest.raises(ProximityError, match="detected modified configuration - file changed by other user"):
        set_config(pve_client, "pve1", 221, memory_mb=1024, digest=digest)


def test_a_container_on_no_or_another_node_is_not_found(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # pve-guest-common AbstractConfig.pm load_config: "Configuration file 'nodes/<node>/lxc/<vmid>.conf'
    # does not exist" (proxmox/containers.py container_status: None)
    from proximity_sdk.errors import NotFoundError
    from proximity_sdk.proxmox.containers import container_status

    pve.add_node("pve2")
    _create(pve_client, 222)
    with pytest.raises(NotFoundError, match=r"Configuration file 'nodes/pve2/lxc/222\.conf' does not exist"):
        pve_client.lxc_status("pve2", 222)
    assert container_status(pve_client, "pve2", 222) is None
    assert container_status(pve_client, "pve1", 222) is not None
