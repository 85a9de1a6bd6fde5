"""Ctrl-C during a local deploy: the operation lives in this process, so it is cancelled and rolled
back (not abandoned half-done), and the command exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.cli.conftest import ROOT, Cli
from tests.harness.pve import HarnessPve


@pytest.mark.timeout(300)
def test_ctrl_c_cancels_a_local_deploy_and_rolls_it_back(lab_cli: Cli, pve: HarnessPve) -> None:
    cli = lab_cli
    cli.ok("hosts", "add", "lab", *cli.host_args)
    pve.time_scale = 1.0
    pve.download_secs = 15.0  # the template step takes a while: time to press Ctrl-C (cancel acts after it)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")} | cli.env
    process = subprocess.Popen(
        [sys.executable, "-m", "proximity_sdk.cli", "apps", "deploy", "gitea", "--hostname", "git-1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen.append(line)
        if "template: started" in line:
            break
    else:
        pytest.fail("the deploy never reached its template step:\n" + "".join(seen))
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    stderr = "".join(seen) + rest
    assert process.returncode == 130, stderr
    assert "cancelling: what was created is rolled back" in stderr
    assert "Traceback" not in stderr
    [op] = cli.json("operations", "list", "--limit", "1")
    assert op["kind"] == "deploy" and op["status"] == "cancelled"
    assert pve.cts == []  # nothing left behind on Proxmox
