"""A deploy whose process is killed (SIGKILL) while it installs Docker in a real container: the next
process takes the operation over and removes the real container (tests/apps/_crash_child.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proximity_sdk.errors import OperationFailed
from proximity_sdk.models.operation import OperationStatus
from tests.real_node.conftest import RealLab

pytestmark = pytest.mark.real_node

CHILD = Path(__file__).resolve().parents[1] / "apps" / "_crash_child.py"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_sigkill_during_a_deploy_the_next_process_removes_the_real_container(real_lab: RealLab) -> None:
    child = subprocess.Popen(
        [sys.executable, str(CHILD)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    # a built-in app: it never gets past "docker" here, where the child dies with apt-get running
    child.stdin.write(
        json.dumps(
            {
                "database_url": real_lab.database_url,
                "data_dir": str(real_lab.data_dir),
                "secret_key": real_lab.key,
                "hostname": "killed",
                "catalog_id": "librespeed",
                "kill_at": "docker",
                "kill_delay": 3.0,
                "lease_seconds": 1.0,
            }
        )
        + "\n"
    )
    child.stdin.close()
    lines = [json.loads(line) for line in child.stdout.read().splitlines() if line.startswith("{")]
    assert child.wait(timeout=300) == -signal.SIGKILL, lines
    op_id = str(lines[0]["operation_id"])
    vmid = real_lab.px.apps.get(str(lines[0]["app_id"])).vmid
    assert vmid is not None
    name = real_lab.pve.lxc_name(vmid)
    listed = subprocess.run(["lxc-ls", "-1"], capture_output=True, text=True, check=True).stdout.split()
    assert name in listed  # the dead process left a real container behind

    deadline = time.monotonic() + 60
    while op_id not in real_lab.px.engine.recover():
        assert time.monotonic() < deadline, "the dead deploy was never taken over"
        time.sleep(1)
    with pytest.raises(OperationFailed) as failed:
        real_lab.px.operations.handle(op_id).wait(timeout=300)
    assert failed.value.step == "docker"
    assert real_lab.px.operations.get(op_id).status == OperationStatus.FAILED
    listed = subprocess.run(["lxc-ls", "-1"], capture_output=True, text=True, check=True).stdout.split()
    assert name not in listed
    assert real_lab.px.store.reservations.vmid_reservations() == []
