"""Stopping a native OCI app works like ``docker stop``: the stop signal, a grace period, then a
kill; a compose app keeps its clean shutdown without a kill. The sandbox's ``deaf_images`` is an
image whose PID 1 has no handler for its stop signal (busybox httpd): only a kill ends it.
An OCI migrate stops the app itself and is refused on a node older than PVE 9.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.errors import OperationFailed, TaskFailedError, ValidationError
from proximity_sdk.models._duration import grace_seconds
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.plugins.manager import PluginManager
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.guests import migrate_container
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import StandinState
from tests.oci.conftest import LISTENING, cli_with_host
from tests.remote._agent import running_agent

pytestmark = pytest.mark.pve9_only

GRAFANA_IMAGE = "grafana/grafana:11.3.0"
BUILTIN = Path(__file__).resolve().parents[2] / "proximity_sdk" / "catalog" / "builtin" / "grafana.json"


def _entry(app_id: str, grace: object) -> dict[str, Any]:
    """The builtin grafana entry under another id, its service with ``stop_grace_period``."""
    entry: dict[str, Any] = json.loads(BUILTIN.read_text())
    entry["id"] = app_id
    entry["name"] = app_id
    entry["docker_compose"]["services"]["grafana"]["stop_grace_period"] = grace
    return entry


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    path = tmp_path / "catalog"
    path.mkdir()
    (path / "slowgraf.json").write_text(json.dumps(_entry("slowgraf", "1m30s")))
    return path


@pytest.fixture
def px(tmp_path: Path, pve: HarnessPve, pve_ca: str, catalog_dir: Path) -> Iterator[Proximity]:
    """Host "lab" without SSH on a PVE 9.1 node, with the catalog entry ``slowgraf`` (grace 1m30s)."""
    pve.version = "9.1.2"
    with Proximity.local(
        data_dir=tmp_path / "px",
        secret_key=Fernet.generate_key(),
        entry_points=False,
        lease_seconds=5,
        catalog_paths=[catalog_dir],
    ) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca)
        yield px


def _shutdowns(pve: HarnessPve, vmid: int) -> list[dict[str, str]]:
    return [r.params() for r in pve.recorded if r.method == "POST" and r.path.endswith(f"/lxc/{vmid}/status/shutdown")]


def _stops(pve: HarnessPve, vmid: int) -> list[object]:
    return [r for r in pve.recorded if r.method == "POST" and r.path.endswith(f"/lxc/{vmid}/status/stop")]


def _deploy(px: Proximity, catalog_id: str = "grafana", hostname: str = "graf-1") -> App:
    app: App = px.apps.deploy(catalog_id, hostname=hostname).wait(timeout=60)
    assert app.config["runtime"] == "oci" and app.vmid is not None
    return app


def test_an_oci_app_whose_pid1_ignores_the_signal_stops_after_10s_then_a_kill(px: Proximity, pve: HarnessPve) -> None:
    pve.deaf_images.add(GRAFANA_IMAGE)
    app = _deploy(px)
    assert app.vmid is not None and "stop_grace_seconds" not in app.config["oci"]
    stopped = px.apps.stop(app.id).wait(timeout=60)
    assert stopped.status == AppStatus.STOPPED and pve.ct(app.vmid).status == "stopped"
    # one task: Docker's default grace period, then PVE's own kill (forceStop)
    assert _shutdowns(pve, app.vmid) == [{"timeout": "10", "forceStop": "1"}]
    assert _stops(pve, app.vmid) == []


def test_the_services_stop_grace_period_is_the_oci_apps_grace(px: Proximity, pve: HarnessPve) -> None:
    app = _deploy(px, "slowgraf")
    assert app.vmid is not None and app.config["oci"]["stop_grace_seconds"] == 90
    px.apps.stop(app.id).wait(timeout=60)
    assert _shutdowns(pve, app.vmid) == [{"timeout": "90", "forceStop": "1"}]
    px.apps.start(app.id).wait(timeout=60)
    px.apps.restart(app.id).wait(timeout=60)  # restart shuts down with the same grace, then kills
    assert _shutdowns(pve, app.vmid)[-1] == {"timeout": "90", "forceStop": "1"}


def test_explicit_values_win_over_the_oci_default(px: Proximity, pve: HarnessPve) -> None:
    pve.deaf_images.add(GRAFANA_IMAGE)
    app = _deploy(px)
    assert app.vmid is not None
    with pytest.raises(OperationFailed, match="container did not stop"):
        px.apps.stop(app.id, force=False).wait(timeout=60)
    assert _shutdowns(pve, app.vmid) == [{"timeout": "10", "forceStop": "0"}]
    assert pve.ct(app.vmid).status == "running" and px.apps.get(app.id).status == AppStatus.RUNNING
    px.apps.stop(app.id, timeout=3).wait(timeout=60)
    assert _shutdowns(pve, app.vmid)[-1] == {"timeout": "3", "forceStop": "1"}
    assert pve.ct(app.vmid).status == "stopped"


def test_a_compose_app_keeps_its_clean_shutdown_without_a_kill(
    tmp_path: Path, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess, standin_state: StandinState
) -> None:
    standin_state.script("ss", stdout=LISTENING.format(port=3000))
    with Proximity.local(
        data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False, lease_seconds=5
    ) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access)
        app = px.apps.deploy("grafana", hostname="graf-c", strategy="compose").wait(timeout=120)
        assert app.vmid is not None and app.config.get("runtime") != "oci"
        px.apps.stop(app.id).wait(timeout=60)
        assert _shutdowns(pve, app.vmid) == [{"timeout": "60", "forceStop": "0"}]
        px.apps.start(app.id).wait(timeout=120)
        pve.ct(app.vmid).shutdown_secs = 600  # a container that does not stop in time
        with pytest.raises(OperationFailed, match="container did not stop"):
            px.apps.stop(app.id).wait(timeout=60)
        assert pve.ct(app.vmid).status == "running"
        px.apps.stop(app.id, force=True, timeout=5).wait(timeout=60)
        assert _shutdowns(pve, app.vmid)[-1] == {"timeout": "5", "forceStop": "1"}
        assert pve.ct(app.vmid).status == "stopped"


@pytest.mark.parametrize("force", ["yes", 1])
def test_stop_refuses_a_force_that_is_not_a_bool(px: Proximity, force: object) -> None:
    app = _deploy(px)
    with pytest.raises(ValidationError) as refused:
        px.apps.stop(app.id, force=force)  # type: ignore[arg-type]
    assert refused.value.field == "force"
    with pytest.raises(ValidationError) as refused:
        px.apps.stop(app.id, timeout=0)
    assert refused.value.field == "timeout"


@pytest.mark.parametrize("grace", ["30", 30, "30 sec", "-5s", "1x", "2h", ""])
def test_a_bad_stop_grace_period_is_refused_at_catalog_validation(tmp_path: Path, grace: object) -> None:
    (tmp_path / "badgrace.json").write_text(json.dumps(_entry("badgrace", grace)))
    catalog = Catalog(plugins=PluginManager(entry_points=False), catalog_paths=[tmp_path])
    assert "badgrace" not in catalog
    [problem] = [p for p in catalog.errors if p.app_id == "badgrace" or "badgrace" in p.origin]
    assert "stop_grace_period" in problem.message and "grafana" in problem.message


@pytest.mark.parametrize(
    ("grace", "seconds"), [("10s", 10), ("1m30s", 90), ("1.5s", 2), ("500ms", 1), ("1h", 3600), ("2m0s", 120)]
)
def test_good_stop_grace_periods_are_read_in_whole_seconds(grace: str, seconds: int) -> None:
    assert grace_seconds(grace) == seconds


def test_a_stopped_oci_app_restored_keeps_the_grace_for_the_old_container(px: Proximity, pve: HarnessPve) -> None:
    pve.deaf_images.add(GRAFANA_IMAGE)
    app = _deploy(px, "slowgraf")
    assert app.vmid is not None
    backup = px.backups.create(app.id).wait(timeout=60)
    restored = px.backups.restore(backup.id).wait(timeout=60)
    assert restored.status == AppStatus.RUNNING and restored.vmid != app.vmid
    # the old container (its PID 1 ignores the signal) was shut down with the grace, then killed
    assert _shutdowns(pve, app.vmid) == [{"timeout": "90", "forceStop": "1"}]
    assert pve.ct(app.vmid).status == "stopped"


def test_a_running_oci_app_migrates_although_its_pid1_ignores_the_signal(px: Proximity, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    pve.deaf_images.add(GRAFANA_IMAGE)
    app = _deploy(px)
    assert app.vmid is not None
    op = px.apps.migrate(app.id, node="pve2")
    moved = op.wait(timeout=60)
    assert moved.node == "pve2" and moved.status == AppStatus.RUNNING
    assert pve.ct(app.vmid).node == "pve2" and pve.ct(app.vmid).status == "running"
    assert _shutdowns(pve, app.vmid) == [{"timeout": "10", "forceStop": "1"}]
    [migrate] = [r.params() for r in pve.recorded if r.method == "POST" and r.path.endswith("/migrate")]
    assert "restart" not in migrate  # moved offline: PVE's restart migration would not kill it
    messages = [e.message for e in op.events()]
    assert any("offline migration" in m for m in messages)
    assert any(m == f"CT {app.vmid} started on node pve2" for m in messages)


def test_the_sandboxs_restart_migration_does_not_kill_as_pve(
    px: Proximity, pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    """Migrate.pm prepare: vm_stop($vmid, 0, $timeout), lxc-stop --nokill: a PID 1 that ignores
    the signal fails PVE's own restart migration (what Proximity avoids above)."""
    pve.add_node("pve2")
    pve.deaf_images.add(GRAFANA_IMAGE)
    app = _deploy(px)
    assert app.vmid is not None
    with pytest.raises(TaskFailedError, match="container did not stop"):
        migrate_container(pve_client, "pve1", app.vmid, target="pve2", restart=True, shutdown_timeout=5)
    assert pve.ct(app.vmid).node == "pve1" and pve.ct(app.vmid).status == "running"


def test_an_oci_migrate_to_a_node_older_than_91_is_refused_at_submit(px: Proximity, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    pve.node_versions["pve2"] = "8.4.1"
    app = _deploy(px)
    with pytest.raises(ValidationError) as refused:
        px.apps.migrate(app.id, node="pve2")
    assert refused.value.field == "node" and "PVE 8.4.1" in str(refused.value)
    assert [o.kind for o in px.operations.list()] == ["deploy"]
    assert pve.ct(app.vmid).node == "pve1" and px.apps.get(app.id).node == "pve1"


def test_stop_through_the_agent_carries_not_given(px: Proximity, pve: HarnessPve) -> None:
    pve.deaf_images.add(GRAFANA_IMAGE)
    app = _deploy(px)
    assert app.vmid is not None
    with running_agent(px) as agent, agent.connect() as remote:
        # force and timeout left out: the agent applies the OCI app's default (10 s, then a kill)
        assert remote.apps.stop(app.id).wait(timeout=60).status == AppStatus.STOPPED
        assert _shutdowns(pve, app.vmid) == [{"timeout": "10", "forceStop": "1"}]
        remote.apps.start(app.id).wait(timeout=60)
        with pytest.raises(OperationFailed, match="container did not stop"):
            remote.apps.stop(app.id, force=False).wait(timeout=60)  # an explicit False is carried
        assert _shutdowns(pve, app.vmid)[-1] == {"timeout": "10", "forceStop": "0"}
        remote.apps.stop(app.id, timeout=4).wait(timeout=60)
        assert _shutdowns(pve, app.vmid)[-1] == {"timeout": "4", "forceStop": "1"}
        with pytest.raises(ValidationError) as refused:
            remote.apps.stop(app.id, timeout=0)
        assert refused.value.field == "timeout"


@pytest.mark.timeout(300)  # a handful of subprocesses, each importing the SDK
def test_cli_stop_flags_left_out_are_the_apps_default(tmp_path: Path, pve: HarnessPve, pve_ca: str) -> None:
    pve.version = "9.1.2"
    pve.deaf_images.add("nginx:1.27")
    run = cli_with_host(tmp_path, pve, pve_ca)
    out = run("--json", "apps", "deploy-image", "nginx:1.27", "--hostname", "web", "--port", "80")
    assert out.returncode == 0, out.stderr
    vmid = json.loads(out.stdout)["result"]["vmid"]

    out = run("--json", "apps", "stop", "web")  # no flag: the OCI app's 10 s, then a kill
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["result"]["status"] == "stopped"
    assert _shutdowns(pve, vmid) == [{"timeout": "10", "forceStop": "1"}]
    assert run("apps", "start", "web").returncode == 0

    out = run("apps", "stop", "web", "--no-force", "--shutdown-timeout", "5")
    assert out.returncode == 1 and "container did not stop" in out.stderr
    assert _shutdowns(pve, vmid)[-1] == {"timeout": "5", "forceStop": "0"}
    assert pve.ct(vmid).status == "running"

    bad = run("apps", "stop", "web", "--shutdown-timeout", "0")
    assert bad.returncode == 2 and "--shutdown-timeout must be whole seconds from 1 to 3600" in bad.stderr
    assert len(_shutdowns(pve, vmid)) == 2  # nothing sent


def test_stop_on_the_wire_old_clients_force_and_an_unknown_kill_mode(px: Proximity, pve: HarnessPve) -> None:
    """StopAppRequest as other services send it: the deprecated ``force`` still kills, ``kill``
    wins over it, and a kill mode this agent does not know is refused, not taken as the default."""
    import grpc

    from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc

    pve.deaf_images.add(GRAFANA_IMAGE)
    app = _deploy(px)
    assert app.vmid is not None
    with running_agent(px) as agent, grpc.insecure_channel(agent.target) as channel:
        stub = apps_pb2_grpc.AppServiceStub(channel)
        auth = (("authorization", f"Bearer {agent.token}"),)

        def stop(**fields: Any) -> None:
            op_id = stub.StopApp(apps_pb2.StopAppRequest(app_id=app.id, **fields), metadata=auth).operation.id
            px.operations.handle(op_id).wait(timeout=60)

        with pytest.raises(grpc.RpcError) as refused:
            stub.StopApp(apps_pb2.StopAppRequest(app_id=app.id, kill=7), metadata=auth)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "kill" in (refused.value.details() or "")
        assert _shutdowns(pve, app.vmid) == []
        stop(force=True, timeout_seconds=3)  # a client from before `kill`
        assert _shutdowns(pve, app.vmid) == [{"timeout": "3", "forceStop": "1"}]
        px.apps.start(app.id).wait(timeout=60)
        with pytest.raises(OperationFailed, match="container did not stop"):
            stop(force=True, kill=apps_pb2.STOP_KILL_NEVER, timeout_seconds=3)
        assert _shutdowns(pve, app.vmid)[-1] == {"timeout": "3", "forceStop": "0"}
