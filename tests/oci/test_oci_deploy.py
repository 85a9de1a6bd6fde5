"""Native OCI deploys (PVE 9.1) against the harness Proxmox, on a host with no SSH access at all."""

from __future__ import annotations

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import NotRecordedError, OperationFailed, ValidationError
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.sandbox._oci import DEFAULT_IMAGE_ENV
from tests.harness.pve import HarnessPve

pytestmark = pytest.mark.pve9_only


def _env(pve: HarnessPve, vmid: int) -> dict[str, str]:
    raw = pve.ct(vmid).config["env"]
    assert isinstance(raw, str)
    return dict(item.split("=", 1) for item in raw.split("\0"))  # NUL-separated, as PVE's `env` takes it


def _calls(pve: HarnessPve) -> list[str]:
    return [f"{r.method} {r.path.removeprefix('/api2/json')}" for r in pve.recorded]


def test_catalog_app_deploys_as_oci_without_any_ssh(nossh: Proximity, pve: HarnessPve) -> None:
    op = nossh.apps.deploy("grafana", hostname="graf-1")  # strategy "auto"; the host has no node shell
    app: App = op.wait(timeout=60)

    assert app.status == AppStatus.RUNNING
    assert app.config["runtime"] == "oci" and app.config["template"] == "local:vztmpl/grafana_grafana_.11.3.0.tar"
    assert app.url == f"http://{app.address}:3000" and [p.port for p in app.ports] == [3000]
    assert pve.pulled == ["grafana/grafana:11.3.0"]
    assert app.vmid is not None
    ct = pve.ct(app.vmid)
    assert ct.status == "running" and ct.config["ostype"] == "unmanaged"  # PVE's ostype for an OCI image
    assert "host-managed=1" in ct.config["net0"]

    # generated secrets reach the container through `env`, beside the image's own variables
    secrets = {k: v.get_secret_value() for k, v in nossh.apps.credentials(app.id).secrets.items()}
    env = _env(pve, app.vmid)
    assert f"\0GF_SECURITY_ADMIN_PASSWORD={secrets['ADMIN_PASSWORD']}" in pve.ct(app.vmid).config["env"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == secrets["ADMIN_PASSWORD"]
    assert env["PATH"] == DEFAULT_IMAGE_ENV.split("=", 1)[1]
    assert nossh.apps.credentials(app.id).root_password is None  # no password set in an app container

    # ... and never in an event or the app's record
    messages = [e.message for e in op.events()]
    for value in secrets.values():
        assert all(value not in m for m in messages)
        assert value not in str(nossh.apps.get(app.id).config)
    assert any("native OCI container" in m and "9.1.2" in m for m in messages)

    calls = _calls(pve)
    pull = calls.index("POST /nodes/pve1/storage/local/oci-registry-pull")
    create = calls.index("POST /nodes/pve1/lxc")
    configure = calls.index(f"PUT /nodes/pve1/lxc/{app.vmid}/config")
    start = calls.index(f"POST /nodes/pve1/lxc/{app.vmid}/status/start")
    assert calls.index("GET /nodes/pve1/version") < pull < create < configure < start
    assert not any("aplinfo" in c for c in calls)  # no OS template, no Docker


def test_second_deploy_reuses_the_pulled_image(nossh: Proximity, pve: HarnessPve) -> None:
    first = nossh.apps.deploy("grafana", hostname="graf-1", strategy="oci", node="pve1").wait(timeout=60)
    second = nossh.apps.deploy("grafana", hostname="graf-2", strategy="oci").wait(timeout=60)
    assert pve.pulled == ["grafana/grafana:11.3.0"]  # PVE refuses to overwrite: the file is reused
    assert first.config["template"] == second.config["template"]
    assert first.vmid != second.vmid and second.status == AppStatus.RUNNING


def test_deploy_image_passes_environment_and_keeps_secrets_out_of_the_record(nossh: Proximity, pve: HarnessPve) -> None:
    op = nossh.apps.deploy_image(
        "ghcr.io/example/whoami:1.4",
        hostname="who-1",
        environment={"GREETING": "hi $USER", "API_TOKEN": "tok-3f9a1c"},
        ports=[8080, 9090],
    )
    app = op.wait(timeout=60)
    assert app.status == AppStatus.RUNNING and app.catalog_id is None
    assert app.url == f"http://{app.address}:8080" and [p.port for p in app.ports] == [8080, 9090]
    assert app.vmid is not None
    env = _env(pve, app.vmid)
    assert env["GREETING"] == "hi $USER" and env["API_TOKEN"] == "tok-3f9a1c"
    assert app.config["environment"] == {"GREETING": "hi $USER"}
    assert "tok-3f9a1c" not in str(app.config)
    assert all("tok-3f9a1c" not in e.message for e in op.events())
    assert nossh.apps.credentials(app.id).secrets["API_TOKEN"].get_secret_value() == "tok-3f9a1c"
    assert pve.pulled == ["ghcr.io/example/whoami:1.4"]


@pytest.mark.parametrize(
    "reference", ["nginx", "Nginx:1.27", "nginx@sha256:" + "a" * 64, "", "ghcr.io//x:1", "nginx:-bad", 42]
)
def test_deploy_image_refuses_a_bad_reference_before_anything(
    nossh: Proximity, pve: HarnessPve, reference: object
) -> None:
    sent = len(pve.recorded)
    with pytest.raises(ValidationError) as caught:
        nossh.apps.deploy_image(reference, hostname="who-1")  # type: ignore[arg-type]
    assert caught.value.field == "reference"
    assert nossh.apps.list() == [] and nossh.operations.list() == []
    assert len(pve.recorded) == sent


def test_deploy_image_refuses_bad_ports_and_environment(nossh: Proximity) -> None:
    with pytest.raises(ValidationError) as caught:
        nossh.apps.deploy_image("nginx:1.27", hostname="web-1", ports=[0])
    assert caught.value.field == "ports"
    with pytest.raises(ValidationError) as caught:
        nossh.apps.deploy_image("nginx:1.27", hostname="web-1", environment={"A": "line\nbreak"})
    assert caught.value.field == "environment.A"
    with pytest.raises(ValidationError) as caught:
        nossh.apps.deploy("grafana", hostname="web-1", strategy="docker")  # type: ignore[arg-type]
    assert caught.value.field == "strategy"
    assert nossh.apps.list() == []


def test_multi_service_app_cannot_be_forced_to_oci(nossh: Proximity) -> None:
    with pytest.raises(ValidationError) as caught:
        nossh.apps.deploy("gitea", hostname="git-1", strategy="oci")
    assert caught.value.field == "strategy" and "services" in str(caught.value)
    assert nossh.apps.list() == []


def test_update_and_logs_of_an_oci_app_are_refused_clearly(nossh: Proximity) -> None:
    app = nossh.apps.deploy("grafana", hostname="graf-1").wait(timeout=60)
    with pytest.raises(ValidationError) as caught:
        nossh.apps.update(app.id)
    assert caught.value.field == "app_id" and "native OCI" in str(caught.value)
    with pytest.raises(NotRecordedError, match="native OCI container"):  # no node shell: no console log
        nossh.apps.logs(app.id)
    assert nossh.apps.get(app.id).status == AppStatus.RUNNING


@pytest.mark.pve(time_scale=0.01)
def test_deploy_waits_for_a_pull_that_takes_time(nossh: Proximity, pve: HarnessPve) -> None:
    pve.pull_secs = 30  # PVE seconds: 0.3 s here
    op = nossh.apps.deploy_image("docker.io/library/nginx:1.27", hostname="web-1", ports=[80])
    app = op.wait(timeout=60)
    assert app.status == AppStatus.RUNNING and app.vmid is not None
    assert pve.ct(app.vmid).config["ostype"] == "unmanaged"
    assert "PATH" in _env(pve, app.vmid)  # the image's own environment kept (no variable given)
    assert any("is ready as local:vztmpl/docker.io_library_nginx_.1.27.tar" in e.message for e in op.events())


def test_an_entrypoint_that_exits_fails_the_deploy_and_rolls_back(nossh: Proximity, pve: HarnessPve) -> None:
    pve.exiting_images.add("ghcr.io/example/crash:1")
    op = nossh.apps.deploy_image("ghcr.io/example/crash:1", hostname="crash-1", ports=[80])
    with pytest.raises(OperationFailed) as caught:
        op.wait(timeout=60)
    # it never gets an address: the address step fails and says why
    assert caught.value.step == "address" and "entrypoint exited" in str(caught.value)
    app = nossh.apps.get(op.get().app_id or "")
    assert app.status == AppStatus.ERROR and app.vmid is None
    assert pve.cts == []  # the container it made is destroyed
