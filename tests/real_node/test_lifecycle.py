"""Every lifecycle of a compose app on real containers: Docker installed by Proximity, images from
the local registry, answers fetched over HTTP from the node. One deploy is chained through the
operations that keep it (stop/start/restart/logs/update/backup/restore/clone/migrate/delete)."""

from __future__ import annotations

import subprocess

import pytest

from proximity_sdk.errors import CommandFailedError, NotFoundError, OperationFailed
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.operations.provision import _HEALTH, _INSTALL_DOCKER
from proximity_sdk.proxmox.templates import ensure_template
from proximity_sdk.sandbox._real import _lxc
from tests.harness.images import web_entry
from tests.real_node.conftest import RealLab, answers, fetch, refused

pytestmark = pytest.mark.real_node


def _lxc_names() -> set[str]:
    out = subprocess.run(["lxc-ls", "-1"], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def _ours(lab: RealLab) -> set[str]:
    """The LXC containers this test's node has (other tests' may still be going away)."""
    return {n for n in _lxc_names() if n.startswith(f"{lab.pve.real_prefix}-")}


def _note(app: App) -> str:
    return answers(f"{app.url}/cgi-bin/note")[1].strip()


@pytest.mark.timeout(1200)
def test_a_web_app_through_its_whole_life(real_lab: RealLab) -> None:
    px, pve = real_lab.px, real_lab.pve
    app = px.apps.deploy("rweb", hostname="rweb").wait(timeout=600)
    assert app.status == AppStatus.RUNNING and app.url == f"http://{app.address}:8080"
    assert answers(app.url) == (200, "web v1\n")
    assert fetch(f"{app.url}/cgi-bin/note?set=first")[1].strip() == "first"
    # the service's real output: busybox httpd -v logs each request with the client's address (this
    # node, 10.0.3.1 on the bridge) and the status it answered
    assert any("10.0.3.1]:" in line and "response:200" in line for line in px.apps.logs(app.id).splitlines())

    px.apps.stop(app.id).wait(timeout=180)
    assert refused(app.url)
    px.apps.start(app.id).wait(timeout=180)
    assert answers(app.url) == (200, "web v1\n")
    px.apps.restart(app.id).wait(timeout=240)
    assert answers(app.url) == (200, "web v1\n") and _note(app) == "first"

    # an update to the next image version: serves it, the volume kept
    real_lab.publish("rweb.json", web_entry(real_lab.registry, "2.0", "2"))
    app = px.apps.update(app.id).wait(timeout=600)
    assert app.catalog_version == "2.0"
    assert answers(app.url) == (200, "web v2\n") and _note(app) == "first"

    # a broken release (its service exits at once, Docker restarts it in a loop): rolled back
    real_lab.publish("rweb.json", web_entry(real_lab.registry, "3.0", "broken"))
    op = px.apps.update(app.id)
    with pytest.raises(OperationFailed) as failed:
        op.wait(timeout=900)
    assert failed.value.step == "health"
    assert "restart" in str(failed.value)
    after = px.apps.get(app.id)
    assert after.status == AppStatus.RUNNING and after.catalog_version == "2.0"
    assert answers(after.url or "") == (200, "web v2\n") and _note(after) == "first"

    # backup, change the data through the app, restore in place: the old data is back
    backup = px.backups.create(app.id).wait(timeout=600)
    assert fetch(f"{app.url}/cgi-bin/note?set=second")[1].strip() == "second"
    app = px.backups.restore(backup.id, in_place=True).wait(timeout=900)
    assert _note(app) == "first"
    # ... and into a new container: the old one retired (stopped), the app at its new address
    fetch(f"{app.url}/cgi-bin/note?set=third")
    old_vmid = app.vmid
    assert old_vmid is not None
    app = px.backups.restore(backup.id).wait(timeout=900)
    assert app.vmid != old_vmid and _note(app) == "first"
    assert _lxc.state(pve.lxc_name(old_vmid) or "") == "stopped"

    # clone: both answer, at different addresses
    twin = px.apps.clone(app.id, hostname="rweb-twin").wait(timeout=900)
    assert twin.address != app.address
    assert answers(twin.url or "") == (200, "web v2\n") and answers(app.url or "") == (200, "web v2\n")

    # migrate: it answers at its new place
    moved = px.apps.migrate(twin.id, node="pve2").wait(timeout=900)
    assert moved.node == "pve2"
    assert answers(moved.url or "") == (200, "web v2\n")

    # delete: no container left, no reservation
    for gone in (moved, app):
        name = pve.lxc_name(gone.vmid or 0)
        px.apps.delete(gone.id).wait(timeout=300)
        assert name not in _lxc_names()
        with pytest.raises(NotFoundError):
            px.apps.get(gone.id)
    assert [r.vmid for r in px.store.reservations.vmid_reservations() if r.app_id in (app.id, moved.id)] == []


@pytest.mark.timeout(600)
def test_an_app_that_crashes_at_start_fails_at_health_and_is_rolled_back(real_lab: RealLab) -> None:
    px = real_lab.px
    px.settings.update(health_timeout_seconds=20)
    op = px.apps.deploy("rcrash", hostname="rcrash")
    with pytest.raises(OperationFailed) as failed:
        op.wait(timeout=600)
    assert failed.value.step == "health"
    assert "rcrash" in str(failed.value) and "restart" in str(failed.value)
    assert _ours(real_lab) == set()  # the real container was destroyed
    assert px.store.reservations.vmid_reservations() == []


@pytest.mark.timeout(600)
def test_the_two_service_app_works_with_its_generated_password(real_lab: RealLab) -> None:
    px = real_lab.px
    app = px.apps.deploy("rkv", hostname="rkv").wait(timeout=600)
    assert answers(f"{app.url}/cgi-bin/value?set=kept") == (200, "value: kept\n")
    assert fetch(f"{app.url}/cgi-bin/value") == (200, "value: kept\n")
    password = px.apps.credentials(app.id).secrets["DB_PASSWORD"].get_secret_value()
    assert len(password) >= 16
    # the database really checks it: a wrong one is refused, the generated one accepted
    shell = px._shells.get(app.host_id)
    ask = (
        "cd /opt/proximity/rkv && id=$(docker ps -q --filter label=com.docker.compose.service=web) && "
        'echo "$1 get" | docker exec -i "$id" nc -w 3 db 6000'
    )
    assert shell.pct_exec(app.node or "", app.vmid or 0, ask, args=("wrong",), timeout=60).stdout.strip() == "DENIED"
    assert shell.pct_exec(app.node or "", app.vmid or 0, ask, args=(password,), timeout=60).stdout.strip() == "OK kept"

    # the node-side scripts as an Alpine container runs them: busybox sh, only busybox applets
    # first on PATH (its nc, grep, timeout, ...), docker from the container
    node, vmid = app.node or "", app.vmid or 0
    shell.pct_exec(
        node,
        vmid,
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox >/dev/null && "
        "mkdir -p /tmp/bb && busybox --install -s /tmp/bb",
        timeout=300,
    )
    # $1: the script, then its arguments
    as_alpine = 'script="$1"; shift; PATH=/tmp/bb:/usr/sbin:/usr/bin; export PATH; exec busybox sh -c "$script" sh "$@"'
    healthy = shell.pct_exec(
        node,
        vmid,
        as_alpine,
        args=(_HEALTH, "/opt/proximity/rkv", "rkv", "8080", "/cgi-bin/value", "30", "2"),
        timeout=120,
    )
    assert "healthy: every container of rkv runs, port 8080 answers: HTTP/1." in healthy.stdout
    assert healthy.stdout.rstrip().endswith("200 OK")
    # without an HTTP path (an app that is no web app): an accepted connection; a closed port is not
    accepted = shell.pct_exec(
        node, vmid, as_alpine, args=(_HEALTH, "/opt/proximity/rkv", "rkv", "8080", "", "30", "1"), timeout=120
    )
    assert "healthy: every container of rkv runs, port 8080 answers" in accepted.stdout
    with pytest.raises(CommandFailedError) as closed:
        shell.pct_exec(
            node, vmid, as_alpine, args=(_HEALTH, "/opt/proximity/rkv", "rkv", "8089", "", "2", "1"), timeout=120
        )
    assert "unhealthy after 2 checks: nothing listens on port 8089" in str(closed.value)
    present = shell.pct_exec(node, vmid, as_alpine, args=(_INSTALL_DOCKER, "0"), timeout=120)
    assert "container runtime present" in present.stdout and "container runtime ready" in present.stdout
    # and the check fails when the database service is gone: the web part answers 500
    shell.pct_exec(node, vmid, "docker stop $(docker ps -q --filter label=com.docker.compose.service=db)", timeout=60)
    with pytest.raises(CommandFailedError) as unhealthy:
        shell.pct_exec(
            node,
            vmid,
            as_alpine,
            args=(_HEALTH, "/opt/proximity/rkv", "rkv", "8080", "/cgi-bin/value", "3", "2"),
            timeout=120,
        )
    assert "unhealthy after 3 checks" in str(unhealthy.value) and "rkv_db_1 is exited" in str(unhealthy.value)


@pytest.mark.timeout(600)
def test_an_unreachable_registry_fails_at_the_pull_naming_it(real_lab: RealLab) -> None:
    px = real_lab.px
    dead = "10.0.3.1:1"  # nothing listens there
    px.hosts.set_registries("real", insecure=[real_lab.registry.address, dead])
    entry = web_entry(real_lab.registry, "1.0", "1")
    entry["docker_compose"]["services"]["web"]["image"] = f"{dead}/proximity-test/web:1"
    real_lab.publish("rweb.json", entry)
    op = px.apps.deploy("rweb", hostname="rweb-dead")
    with pytest.raises(OperationFailed) as failed:
        op.wait(timeout=600)
    assert failed.value.step == "up"
    assert dead in str(failed.value)
    assert _ours(real_lab) == set()


def test_templates_come_from_the_nodes_own_index(real_lab: RealLab) -> None:
    client = real_lab.px._clients.get(real_lab.px.hosts.get("real").id)
    listed = sorted(a["package"] for a in real_lab.pve.appliances)
    with pytest.raises(NotFoundError) as missing:
        ensure_template(client, "pve1", storage="local", template="alpine")
    text = f"{missing.value} {missing.value.hint}"
    assert "no alpine template" in text and all(p in text for p in listed)
    # auto: no Alpine here, so the newest Debian the node lists
    newest = max(listed, key=lambda p: int(p.split("-")[1]))
    volid = ensure_template(client, "pve1", storage="local", template="auto")
    assert volid.startswith(f"local:vztmpl/{newest}_")


@pytest.mark.timeout(600)
def test_a_deploy_on_debian_13(real_lab: RealLab) -> None:
    """Debian 13's docker.io and docker-compose (the runtime step's other Debian), when the node has it."""
    if not any(a["package"] == "debian-13-standard" for a in real_lab.pve.appliances):
        pytest.skip("no Debian 13 template cached on this machine (scripts/real-node builds it)")
    entry = web_entry(real_lab.registry, "1.0", "1")
    entry["os_template"] = "debian-13-standard"
    real_lab.publish("rweb.json", entry)
    app = real_lab.px.apps.deploy("rweb", hostname="rweb13").wait(timeout=600)
    assert answers(app.url or "") == (200, "web v1\n")
    assert real_lab.px.apps.logs(app.id).strip()
