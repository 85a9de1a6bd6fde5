"""`proximity apps logs` of a native OCI app: its console log (exit 0), and the refusals: a runtime
condition is exit 1 with a hint in CLI words, a --service that cannot apply is a usage error (2)."""

from __future__ import annotations

import pytest

from proximity_sdk.cli._hints import bare_sdk_calls
from proximity_sdk.proxmox.console_log import console_log_path
from tests.cli.conftest import Cli
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState

pytestmark = pytest.mark.pve9_only


@pytest.mark.timeout(300)  # several subprocesses, each importing the SDK, on a shared 2-core machine
def test_apps_logs_of_an_oci_app(lab_cli: Cli, pve: HarnessPve, standin_state: StandinState) -> None:
    cli = lab_cli
    pve.version = "9.1.2"
    cli.ok("hosts", "add", "lab", *cli.host_args)
    vmid = cli.json("apps", "deploy-image", "docker.io/library/nginx:1.27", "--hostname", "web-1", "--port", "80")[
        "result"
    ]["vmid"]
    log = standin_state.path / "root" / "pve1" / console_log_path(vmid).lstrip("/")
    empty = cli.ok("apps", "logs", "web-1")  # started, printed nothing yet: said on stderr, stdout empty
    assert empty.stdout == "" and "web-1: no output logged yet" in empty.stderr
    log.write_bytes(b"nginx: start\r\nGET / 200\r\nGET /x 404\r\n")  # what LXC copied from the console
    assert cli.ok("apps", "logs", "web-1", "--tail", "2").stdout == "GET / 200\nGET /x 404\n"

    refused = cli.fails(2, "apps", "logs", "web-1", "--service", "nginx")
    assert "one process" in refused.stderr

    # a host without SSH access: the app runs, but nothing recorded its console
    secret_args = cli.host_args[: cli.host_args.index("--ssh-user")]
    cli.ok("hosts", "add", "bare", *secret_args)
    cli.ok(
        "apps", "deploy-image", "docker.io/library/nginx:1.27", "--hostname", "web-2", "--port", "80", "--host", "bare"
    )
    out = cli.fails(1, "apps", "logs", "web-2")
    assert "has no console log" in out.stderr and "SSH access" in out.stderr
    assert "--ssh-key" in out.stderr and "pct console" in out.stderr  # what to do, as commands
    assert bare_sdk_calls(out.stderr.split("in Python:")[0]) == []
