"""The sandbox's Proxmox does what pve-container, pve-storage and pve-manager do (docs/fidelity.md).

Each test names the Proxmox source it pins. The ones marked "was:" failed on the sandbox before
the fidelity audit (issue 14).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from proximity_sdk.errors import ProximityError, TaskFailedError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.tasks import wait_task
from proximity_sdk.sandbox._oci import OciImageConfig, normalize_content_filename
from proximity_sdk.sandbox._vzdump import _archive_bytes
from tests.harness.pve import HarnessPve

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
NET = "name=eth0,bridge=vmbr0,ip=dhcp"


def _create(client: ProxmoxClient, vmid: int, **extra: object) -> None:
    params: dict[str, object] = dict(
        vmid=vmid, ostemplate=TEMPLATE, hostname=f"app-{vmid}", memory=1024, rootfs="local-lvm:8", net0=NET
    )
    params.update(extra)
    wait_task(client, str(client.post("/nodes/pve1/lxc", **params)))


def _backup(client: ProxmoxClient, vmid: int, **extra: object) -> str:
    result = wait_task(
        client,
        str(client.post("/nodes/pve1/vzdump", vmid=str(vmid), storage="local", **extra)),
        on_log=lambda lines: None,
    )
    [volume] = [v for v in client.storage_content("pve1", "local", content="backup") if v.vmid == vmid]
    assert result.log_tail
    return volume.volid


def _pull(client: ProxmoxClient, reference: str, **extra: object) -> None:
    wait_task(client, str(client.post("/nodes/pve1/storage/local/oci-registry-pull", reference=reference, **extra)))


# ------------------------------------------------------------------ OCI pull (pve-storage)


def test_normalize_content_filename_is_pve_storages() -> None:
    # PVE::Storage::normalize_content_filename: drop up to the last / or \, then [^a-zA-Z0-9_.-] -> _
    assert normalize_content_filename("docker.io/library/nginx:1.27") == "nginx_1.27"
    assert normalize_content_filename("ghcr.io_owner_app_1.2") == "ghcr.io_owner_app_1.2"
    assert normalize_content_filename("a\\b c") == "b_c"


@pytest.mark.pve9_only
def test_pull_without_filename_names_the_file_after_the_last_path_component(
    pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    # was: docker.io_library_nginx_1.27.tar (the whole reference)
    _pull(pve_client, "docker.io/library/nginx:1.27")
    names = [v.volid for v in pve_client.storage_content("pve1", "local", content="vztmpl")]
    assert "local:vztmpl/nginx_1.27.tar" in names
    [task] = [t for t in pve.tasklog if t["type"] == "ociregistrypull"]
    assert task["id"] == "nginx_1.27.tar"  # the worker id is the file name


@pytest.mark.pve9_only
def test_pull_refuses_to_override_in_pve_words(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    _pull(pve_client, "nginx:1.27")
    with pytest.raises(ProximityError, match=r"refusing to override existing file 'nginx_1\.27\.tar'"):
        pve_client.post("/nodes/pve1/storage/local/oci-registry-pull", reference="nginx:1.27")  # was: the volid


@pytest.mark.pve9_only
def test_pull_into_a_storage_without_a_path_is_refused_first(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # was: "does not support templates"; PVE checks for a path before the content type
    with pytest.raises(ProximityError, match=r"can't upload to storage type 'lvmthin', not a file based storage!"):
        pve_client.post("/nodes/pve1/storage/local-lvm/oci-registry-pull", reference="nginx:1.27")
    pve.storages["local"]["content"] = "iso,backup"
    with pytest.raises(ProximityError, match=r"storage 'local' is not configured for content-type 'vztmpl'"):
        pve_client.post("/nodes/pve1/storage/local/oci-registry-pull", reference="nginx:1.27")


# ------------------------------------------------------------ OCI create (restore_oci_archive)


@pytest.mark.pve9_only
def test_image_configuration_overwrites_what_the_create_gave(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # was: the request's entrypoint and env won, and no cmode/host-managed was set
    pve.images["nginx:1.27"] = OciImageConfig(
        env=("PATH=/usr/bin:/bin", "NGINX_VERSION=1.27.0"),
        entrypoint=("/docker-entrypoint.sh",),
        cmd=("nginx", "-g", "daemon off;"),
    )
    _pull(pve_client, "nginx:1.27")
    wait_task(
        pve_client,
        str(
            pve_client.post(
                "/nodes/pve1/lxc",
                vmid=120,
                ostemplate="local:vztmpl/nginx_1.27.tar",
                hostname="web",
                rootfs="local-lvm:4",
                net0=NET,
                entrypoint="/bin/true",
                env="MINE=1",
            )
        ),
    )
    config = pve.ct(120).config
    assert config["entrypoint"] == "/docker-entrypoint.sh nginx -g 'daemon off;'"
    assert config["env"] == "PATH=/usr/bin:/bin\0NGINX_VERSION=1.27.0"
    assert config["cmode"] == "console"
    assert "host-managed=1" in config["net0"]


@pytest.mark.parametrize(
    ("command", "entrypoint"),
    [
        (["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"], "/docker-entrypoint.sh nginx -g 'daemon off;'"),
        # String::ShellQuote writes a quote '\'' (Python's shlex.join: '"'"', which PVE never writes)
        (["/bin/sh", "-c", "echo 'a b' >&2; exit 3"], "/bin/sh -c 'echo '\\''a b'\\'' >&2; exit 3'"),
        (["it's"], "'it'\\''s'"),
        (["''"], "\"''\""),  # two or more quotes in a row: '"''"' with the empty '' ends dropped
        (["a=b", "KEY=v", ""], "'a=b' 'KEY=v' ''"),  # one argument a shell_quote call: every = quoted
        (["/usr/bin/run", "--port=80", "x,y:z@w^%!+"], "/usr/bin/run '--port=80' x,y:z@w^%!+"),
    ],
)
def test_entrypoint_is_written_as_pve_cmd2string_writes_it(command: list[str], entrypoint: str) -> None:
    # pve-container Create.pm restore_oci_archive: $conf->{entrypoint} = PVE::Tools::cmd2string(Entrypoint + Cmd)
    assert OciImageConfig(entrypoint=tuple(command)).init_command() == entrypoint


@pytest.mark.pve9_only
def test_an_image_whose_init_is_sbin_init_is_a_system_container(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    pve.images["sys:1"] = OciImageConfig(env=(), entrypoint=("/sbin/init",))
    _pull(pve_client, "sys:1")
    wait_task(
        pve_client,
        str(
            pve_client.post(
                "/nodes/pve1/lxc",
                vmid=121,
                ostemplate="local:vztmpl/sys_1.tar",
                hostname="sys",
                rootfs="local-lvm:4",
                net0=NET,
            )
        ),
    )
    config = pve.ct(121).config
    assert "entrypoint" not in config and "cmode" not in config and "env" not in config
    assert "host-managed" not in config["net0"]


# ------------------------------------------------------------------ vzdump (pve-manager)


def test_a_stopped_container_is_backed_up_in_stop_mode(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # was: "backup mode: snapshot" (PVE::VZDump::exec_backup_task: $mode = $running ? $task->{mode} : 'stop')
    _create(pve_client, 130)
    upid = pve_client.post("/nodes/pve1/vzdump", vmid="130", storage="local", mode="snapshot")
    lines: list[str] = []
    wait_task(pve_client, str(upid), on_log=lines.extend)
    assert "INFO: backup mode: stop" in lines
    wait_task(pve_client, str(pve_client.post("/nodes/pve1/lxc/130/status/start")))
    lines.clear()
    wait_task(
        pve_client,
        str(pve_client.post("/nodes/pve1/vzdump", vmid="130", storage="local", mode="snapshot")),
        on_log=lines.extend,
    )
    assert "INFO: backup mode: snapshot" in lines


# ------------------------------------------------------ restore (sanitize_and_merge_config)


def test_restore_keeps_every_archived_option_the_request_did_not_give(
    pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    # was: only a list of 16 options came back (startup, cmode, tty were lost)
    _create(pve_client, 140, startup="order=2", cmode="shell", tty=4, cores=2)
    volid = _backup(pve_client, 140)
    wait_task(
        pve_client,
        str(
            pve_client.post(
                "/nodes/pve1/lxc", vmid=141, ostemplate=volid, restore=1, storage="local-lvm", unique=1, cores=3
            )
        ),
    )
    config = pve.ct(141).config
    assert config["startup"] == "order=2" and config["cmode"] == "shell" and str(config["tty"]) == "4"
    assert str(config["cores"]) == "3"  # what the request gives wins
    assert config["hostname"] == "app-140" and str(config["memory"]) == "1024"


def test_restore_makes_mount_points_again_with_their_archived_sizes(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # was: only rootfs came back; PVE restores every volume mount point (storage_only_mode)
    _create(pve_client, 150, mp0="local-lvm:2,mp=/data")
    volid = _backup(pve_client, 150)
    wait_task(
        pve_client, str(pve_client.post("/nodes/pve1/lxc", vmid=151, ostemplate=volid, restore=1, storage="local-lvm"))
    )
    config = pve.ct(151).config
    assert config["rootfs"].startswith("local-lvm:vm-151-disk") and "size=8G" in config["rootfs"]
    assert config["mp0"].startswith("local-lvm:vm-151-disk") and "size=2G" in config["mp0"]
    assert "mp=/data" in config["mp0"]


def test_restore_of_an_archive_whose_disk_has_no_size_fails_as_pve(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    # was: a 4 GiB disk was made up
    name = f"vzdump-lxc-160-{time.strftime('%Y_%m_%d-%H_%M_%S')}.tar"
    (pve.dump_dir("local") / name).write_bytes(
        _archive_bytes({"hostname": "old", "rootfs": "local-lvm:vm-160-disk-0", "memory": "512"})
    )
    upid = pve_client.post(
        "/nodes/pve1/lxc", vmid=161, ostemplate=f"local:backup/{name}", restore=1, storage="local-lvm"
    )
    with pytest.raises(TaskFailedError, match=r"unable to detect disk size - please specify rootfs \(size\)"):
        wait_task(pve_client, str(upid))
    assert pve.ct(161) is None


@pytest.mark.pve9_only
def test_pull_image_takes_pves_refusal_as_pulled_meanwhile(
    pve: HarnessPve, pve_client: ProxmoxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Storage Status.pm oci_registry_pull refuses before forking when the file exists: a pull that
    # finished between Proximity's listing and its POST (was: the deploy failed on the refusal)
    from proximity_sdk.proxmox.oci import pull_image

    pve.version = "9.1.2"
    volid = pull_image(pve_client, "pve1", storage="local", reference="nginx:1.27")
    real = pve_client.storage_content
    calls: list[object] = []

    def stale_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return [] if len(calls) == 1 else real(*args, **kwargs)  # the first listing misses the new file

    monkeypatch.setattr(pve_client, "storage_content", stale_once)
    assert pull_image(pve_client, "pve1", storage="local", reference="nginx:1.27") == volid
    assert pve.pulled == ["nginx:1.27"] and len(calls) == 1
    assert [r.path for r in pve.recorded].count("/api2/json/nodes/pve1/storage/local/oci-registry-pull") == 2
