"""OCI deploys and clones through the agent (remote SDK) and the CLI, like every other operation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import NotRecordedError, ValidationError
from proximity_sdk.proxmox.console_log import console_log_path
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState
from tests.oci.conftest import cli_with_host
from tests.remote._agent import running_agent

pytestmark = pytest.mark.pve9_only


def test_deploy_image_and_strategy_through_the_agent(nossh: Proximity, pve: HarnessPve) -> None:
    with running_agent(nossh) as agent, agent.connect() as remote:
        app = remote.apps.deploy_image("ghcr.io/example/whoami:1.10", hostname="who", ports=[8080]).wait(timeout=60)
        assert app.config["runtime"] == "oci" and app.url == f"http://{app.address}:8080"
        ct = pve.ct(app.vmid)
        assert ct is not None and ct.status == "running" and ct.config["ostype"] == "unmanaged"
        graf = remote.apps.deploy("grafana", hostname="graf", strategy="oci").wait(timeout=60)
        assert graf.config["runtime"] == "oci"
        with pytest.raises(ValidationError) as bad:
            remote.apps.deploy_image("Not A Reference", hostname="x")
        assert bad.value.field == "reference"
        with pytest.raises(ValidationError) as ports:
            remote.apps.deploy_image("nginx:1.27", hostname="x", ports=[0])
        assert ports.value.field == "ports"
        with pytest.raises(ValidationError) as strategy:
            remote.apps.deploy("grafana", hostname="g2", strategy="docker")  # type: ignore[arg-type]
        assert strategy.value.field == "strategy"
        assert sorted(a.hostname for a in remote.apps.list()) == ["graf", "who"]
        copy = remote.apps.clone(graf.id, hostname="graf-2").wait(timeout=60)  # no node shell: API only
        assert (copy.config["runtime"], copy.status) == ("oci", "running")
        assert copy.vmid is not None and copy.vmid != graf.vmid and pve.ct(copy.vmid).status == "running"
        assert pve.ct(copy.vmid).config["env"] == pve.ct(graf.vmid).config["env"]


def test_console_log_of_an_oci_app_through_the_agent(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    pve.version = "9.1.2"
    with running_agent(withssh) as agent, agent.connect() as remote:
        app = remote.apps.deploy_image("ghcr.io/example/whoami:1.10", hostname="who", ports=[8080]).wait(timeout=60)
        assert app.vmid is not None
        log = standin_state.path / "root" / "pve1" / console_log_path(app.vmid).lstrip("/")
        log.write_text("Starting up on port 8080\nGET / 200\n")
        assert remote.apps.logs(app.id, tail=1) == "GET / 200"


def test_no_console_log_through_the_agent_is_the_same_error(nossh: Proximity) -> None:
    with running_agent(nossh) as agent, agent.connect() as remote:
        app = remote.apps.deploy_image("ghcr.io/example/whoami:1.10", hostname="who", ports=[8080]).wait(timeout=60)
        with pytest.raises(NotRecordedError) as caught:
            remote.apps.logs(app.id)
        assert "SSH access" in caught.value.message and "px.hosts.update" in caught.value.hint


@pytest.mark.timeout(240)
def test_deploy_image_from_the_cli_with_no_ssh(tmp_path: Path, pve: HarnessPve, pve_ca: str) -> None:
    pve.version = "9.1.2"
    run = cli_with_host(tmp_path, pve, pve_ca)
    out = run("--json", "apps", "deploy-image", "nginx:1.27", "--hostname", "web", "--port", "80")
    assert out.returncode == 0, out.stderr
    app = json.loads(out.stdout)["result"]
    assert (app["hostname"], app["status"], app["config"]["runtime"]) == ("web", "running", "oci")
    cloned = run("--json", "apps", "clone", "web", "--hostname", "web-2")
    assert cloned.returncode == 0, cloned.stderr
    copy = json.loads(cloned.stdout)["result"]
    assert (copy["hostname"], copy["status"], copy["config"]["runtime"]) == ("web-2", "running", "oci")
    assert copy["vmid"] != app["vmid"] and copy["address"] != app["address"]
    refused = run("apps", "deploy", "gitea", "--hostname", "git", "--strategy", "oci")  # two services
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
