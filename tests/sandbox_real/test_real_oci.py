"""OCI application containers in real mode (PVE 9.1's path): the image really pulled with skopeo
from the local registry into the storage's template cache, the container's root filesystem
unpacked from it with umoci, its entrypoint the LXC container's init with the image's environment,
its address leased by the host (``host-managed``). Checked against LXC and over HTTP, never
against the sandbox's bookkeeping alone."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from proximity_sdk.errors import OperationFailed, ProxmoxError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.sandbox._real import _lxc
from tests.harness.images import *  # noqa: F403
from tests.harness.images import LocalRegistry
from tests.harness.real_node import RealHarnessPve, real_path
from tests.real_node.conftest import RealLab, answers
from tests.real_node.conftest import real_lab as real_lab  # the fixture, used by name
from tests.sandbox_real.test_real_node import address, lxc_state, wait

pytestmark = [pytest.mark.real_node, pytest.mark.pve9_only, pytest.mark.timeout(600)]

NET = "name=eth0,bridge=vmbr0,ip=dhcp"


def fetch(url: str, *, within: float = 20.0) -> tuple[int, str]:
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as answer:  # noqa: S310 - a test container
                return int(answer.status), answer.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def refused(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3):  # noqa: S310 - a test container
            return False
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return True


def test_an_oci_image_pulled_and_run_as_an_application_container(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, local_registry: LocalRegistry
) -> None:
    client, pve = real_pve_client, real_pve
    reference = local_registry.image("web:1")
    pve.insecure_registries = {local_registry.address}  # the node's registries.conf: plain HTTP allowed
    wait(
        client,
        "pve1",
        client.post("/nodes/pve1/storage/local/oci-registry-pull", reference=reference, filename="web-1"),
    )
    archive = pve.template_dir("local") / "web-1.tar"
    assert (
        archive.is_file()
        and b"oci-layout" in subprocess.run(["tar", "-tf", str(archive)], capture_output=True, check=True).stdout
    )
    listed = client.get("/nodes/pve1/storage/local/content", content="vztmpl")
    assert any(item["volid"] == "local:vztmpl/web-1.tar" for item in listed)
    # PVE refuses to pull over an existing file
    with pytest.raises(ProxmoxError, match=r"refusing to override existing file 'web-1\.tar'"):
        client.post("/nodes/pve1/storage/local/oci-registry-pull", reference=reference, filename="web-1")

    wait(
        client,
        "pve1",
        client.post(
            "/nodes/pve1/lxc",
            vmid=170,
            ostemplate="local:vztmpl/web-1.tar",
            hostname="web",
            rootfs="local-lvm:1",
            net0=NET,
            memory=256,
            start=1,
        ),
    )
    config = client.get("/nodes/pve1/lxc/170/config")
    assert config["entrypoint"] == "/bin/busybox httpd -f -v -p 8080 -h /www"
    assert config["cmode"] == "console" and "host-managed=1" in config["net0"]
    # the root filesystem is the image's, and the LXC container's init is the entrypoint
    assert real_path(pve, 170, "/www/index.html").read_text() == "web v1\n"
    name = pve.lxc_name(170)
    assert name is not None
    lxc_config = (_lxc.LXC_PATH / name / "config").read_text()
    assert "lxc.init.cmd = /bin/busybox httpd -f -v -p 8080 -h /www" in lxc_config
    assert "lxc.environment = PATH=" in lxc_config
    init = subprocess.run(["lxc-info", "-n", name, "-pH"], capture_output=True, text=True, check=True).stdout.strip()
    assert Path(f"/proc/{init}/cmdline").read_text().split("\0")[:2] == ["/bin/busybox", "httpd"]
    environ = Path(f"/proc/{init}/environ").read_text().split("\0")
    assert any(e.startswith("PATH=") for e in environ)

    ip = address(client, "pve1", 170)  # leased by the host: the image has no DHCP client
    url = f"http://{ip}:8080/"
    assert fetch(url) == (200, "web v1\n")

    wait(client, "pve1", client.post("/nodes/pve1/lxc/170/status/stop"))
    assert lxc_state(pve, 170) == "stopped" and refused(url)
    wait(client, "pve1", client.post("/nodes/pve1/lxc/170/status/start"))
    assert fetch(f"http://{address(client, 'pve1', 170)}:8080/") == (200, "web v1\n")

    wait(client, "pve1", client.delete("/nodes/pve1/lxc/170", force=1, purge=1))
    assert not (_lxc.LXC_PATH / name).exists()


def test_an_entrypoint_that_exits_reads_stopped(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, local_registry: LocalRegistry
) -> None:
    client, pve = real_pve_client, real_pve
    pve.insecure_registries = {local_registry.address}
    wait(
        client,
        "pve1",
        client.post(
            "/nodes/pve1/storage/local/oci-registry-pull", reference=local_registry.image("crash:1"), filename="crash-1"
        ),
    )
    wait(
        client,
        "pve1",
        client.post(
            "/nodes/pve1/lxc",
            vmid=171,
            ostemplate="local:vztmpl/crash-1.tar",
            hostname="crash",
            rootfs="local-lvm:1",
            net0=NET,
            start=1,
        ),
    )
    deadline = time.monotonic() + 20
    while client.get("/nodes/pve1/lxc/171/status/current")["status"] != "stopped":
        assert time.monotonic() < deadline, "the exited entrypoint still reads running"
        time.sleep(0.3)
    assert lxc_state(pve, 171) == "stopped"


def test_a_pull_from_a_plain_http_registry_not_trusted_fails(
    real_pve: RealHarnessPve, real_pve_client: ProxmoxClient, local_registry: LocalRegistry
) -> None:
    client, pve = real_pve_client, real_pve
    upid = client.post(
        "/nodes/pve1/storage/local/oci-registry-pull", reference=local_registry.image("web:1"), filename="untrusted"
    )
    deadline = time.monotonic() + 120
    while (status := client.get(f"/nodes/pve1/tasks/{upid}/status"))["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert status["exitstatus"] != "OK" and "skopeo" in status["exitstatus"]
    assert not (pve.template_dir("local") / "untrusted.tar").exists()
    assert not list(pve.template_dir("local").glob("untrusted.tar.tmp.*"))


# ---------------------------------------------------------------- through Proximity


def _ours(lab: RealLab) -> list[str]:
    return _lxc.list_names(f"{lab.pve.real_prefix}-")


def test_an_image_deployed_by_proximity_on_the_91_node_answers_http(real_lab: RealLab) -> None:
    px, pve, registry = real_lab.px, real_lab.pve, real_lab.registry
    # only pve2 runs 9.1: the other nodes stay 9.0 (compose apps), as the real_node tier needs
    pve.node_versions["pve2"] = "9.1.2"
    # the node's own registries.conf trusts the local registry (PVE's pull reads only that)
    pve.insecure_registries = {registry.address}
    app = px.apps.deploy_image(registry.image("web:1"), hostname="oweb", node="pve2", ports=[8080]).wait(timeout=300)
    assert app.status == AppStatus.RUNNING and app.url is not None
    assert answers(app.url) == (200, "web v1\n")
    assert registry.image("web:1") in pve.pulled
    assert len(_ours(real_lab)) == 1
    config = pve.ct(app.vmid).config
    assert config["entrypoint"].startswith("/bin/busybox httpd") and "host-managed=1" in config["net0"]
    # its console (httpd -v logs every request to stderr) is copied by LXC into the file the raw key
    # names, which px.apps.logs reads through the node shell
    assert config["lxc"] == [["lxc.console.logfile", f"/var/log/proximity/ct-{app.vmid}.console.log"]]
    name = pve.lxc_name(app.vmid)
    assert name is not None
    logfile = _lxc.LXC_PATH / name / "config"
    assert (
        f"lxc.console.logfile = {pve.node_root}/pve2/var/log/proximity/ct-{app.vmid}.console.log" in logfile.read_text()
    )
    requests_before = px.apps.logs(app.id).count("response:200")
    assert requests_before >= 1, px.apps.logs(app.id)

    # busybox httpd is the container's PID 1 with no SIGTERM handler: PVE's shutdown (lxc-stop
    # --nokill with the image's stop signal) cannot end it, as on a 9.1 node; a forced stop can
    with pytest.raises(OperationFailed, match="container did not stop"):
        px.apps.stop(app.id, timeout=3, force=False).wait(timeout=180)
    assert answers(app.url) == (200, "web v1\n")
    px.apps.stop(app.id, timeout=3, force=True).wait(timeout=180)
    assert refused(app.url)
    px.apps.start(app.id).wait(timeout=180)
    assert answers(app.url) == (200, "web v1\n")
    # the restarted container appends: the requests before the restart are still there
    assert px.apps.logs(app.id).count("response:200") > requests_before

    px.apps.delete(app.id).wait(timeout=180)
    assert _ours(real_lab) == []
    assert not (pve.node_root / "pve2" / "var/log/proximity" / f"ct-{app.vmid}.console.log").exists()


def test_a_clone_of_the_running_oci_app_answers_on_its_own_address(real_lab: RealLab) -> None:
    px, pve, registry = real_lab.px, real_lab.pve, real_lab.registry
    pve.node_versions["pve2"] = "9.1.2"
    pve.insecure_registries = {registry.address}
    app = px.apps.deploy_image(registry.image("web:1"), hostname="oweb", node="pve2", ports=[8080]).wait(timeout=300)
    # a running source: PVE clones it from a snapshot (the real container frozen for the copy)
    clone = px.apps.clone(app.id, hostname="oweb-2").wait(timeout=300)
    assert clone.status == AppStatus.RUNNING and clone.config["runtime"] == "oci"
    assert clone.url is not None and app.url is not None and clone.address != app.address
    assert answers(clone.url) == (200, "web v1\n")
    assert answers(app.url) == (200, "web v1\n")
    assert len(_ours(real_lab)) == 2
    # the clone's init is the same entrypoint, with the image's stop signal (clone_vm copies the
    # raw `lxc` keys PVE keeps it in)
    source_name, clone_name = pve.lxc_name(app.vmid), pve.lxc_name(clone.vmid)
    assert source_name is not None and clone_name is not None
    lines = [(_lxc.LXC_PATH / n / "config").read_text().splitlines() for n in (source_name, clone_name)]
    for wanted in ("lxc.init.cmd = ", "lxc.signal.halt = "):
        source_line, clone_line = ([ln for ln in ls if ln.startswith(wanted)] for ls in lines)
        assert source_line and source_line == clone_line, wanted
    px.apps.delete(clone.id).wait(timeout=180)
    px.apps.delete(app.id).wait(timeout=180)
    assert _ours(real_lab) == []


def test_stop_of_the_oci_web_app_ends_after_its_grace_period(real_lab: RealLab) -> None:
    """docker stop semantics: no force given, the busybox httpd PID 1 (no handler for SIGTERM)
    gets the grace period (10 s: deploy_image has no catalog entry), then PVE's forceStop kills it."""
    px, pve, registry = real_lab.px, real_lab.pve, real_lab.registry
    pve.node_versions["pve2"] = "9.1.2"
    pve.insecure_registries = {registry.address}
    app = px.apps.deploy_image(registry.image("web:1"), hostname="oweb", node="pve2", ports=[8080]).wait(timeout=300)
    assert app.url is not None and answers(app.url) == (200, "web v1\n")
    began = time.monotonic()
    stopped = px.apps.stop(app.id).wait(timeout=180)
    took = time.monotonic() - began
    assert stopped.status == AppStatus.STOPPED and lxc_state(pve, app.vmid) == "stopped"
    assert refused(app.url)
    # the whole grace period was waited (the signal was dropped), and not much more
    assert 10 <= took < 40, took
    px.apps.delete(app.id).wait(timeout=180)
    assert _ours(real_lab) == []


def test_an_image_whose_entrypoint_exits_fails_at_address_at_once_and_says_why(real_lab: RealLab) -> None:
    """web:broken prints a line to stderr and exits 3. On a 9.1 node its container stops; the
    deploy must notice that while it waits for the DHCP lease (PVE's /interfaces answers nothing for
    a container that does not run), not wait out the 120 s address timeout and blame DHCP."""
    px, pve, registry = real_lab.px, real_lab.pve, real_lab.registry
    pve.node_versions["pve2"] = "9.1.2"
    pve.insecure_registries = {registry.address}
    started = time.monotonic()
    op = px.apps.deploy_image(registry.image("web:broken"), hostname="obroken", node="pve2", ports=[8080])
    with pytest.raises(OperationFailed) as caught:
        op.wait(timeout=300)
    elapsed = time.monotonic() - started
    assert caught.value.step == "address" and "entrypoint exited" in str(caught.value), str(caught.value)
    assert elapsed < 60, f"the deploy took {elapsed:.0f}s: it waited for an address the stopped CT cannot get"
    # the entrypoint's argv arrived intact (PVE's cmd2string + LXC 6's split), so its stderr line
    # is in the console log, whose last lines the rollback lists in the events
    messages = [e.message for e in op.events()]
    assert any(m.endswith("console: web broken: giving up at once") for m in messages), messages
    assert _ours(real_lab) == []
