"""`proximity sandbox`, the README's first command, as a user runs it: a sandbox Proxmox, a real agent
process, a first deploy with live progress; then the same CLI against that agent from "another terminal"."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}


def test_once_deploys_a_sample_app_with_progress_and_cleans_up() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "proximity_sdk.cli", "sandbox", "--once"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout
    assert "SANDBOX" in text and "nothing really runs" in text  # clearly labelled
    assert re.search(r"Agent serving gRPC on 127\.0\.0\.1:\d+", text)
    assert re.search(r"pve1\W+online", text) and re.search(r"pve2\W+online", text) and "local-lvm (lvmthin)" in text
    steps = re.findall(r"^\d\d:\d\d:\d\d (\w+)\s+\1: done$", text, re.M)
    # uptime-kuma has one service and the sandbox runs PVE 9.1: a native OCI container; the node shell
    # only names its console log file in its config (step console)
    assert steps == ["place", "reserve", "image", "create", "configure", "console", "start", "address", "health"]
    assert re.search(r"demo is running on pve\d, CT \d+", text)
    assert "proximity hosts add pve --url https://" in text  # how to go real
    assert "PROXIMITY_TOKEN" not in text  # no instructions for the agent it has just stopped
    files = Path(re.search(r"Files: (\S+)", text)[1])  # type: ignore[index]
    assert not files.exists()  # stopped: nothing left behind


def test_serving_answers_the_same_cli_from_another_terminal_until_interrupted() -> None:
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "proximity_sdk.cli", "sandbox", "--hostname", "kuma"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 180
        exports = None
        while exports is None and time.monotonic() < deadline:
            line = sandbox.stdout.readline()
            if not line:
                break
            seen.append(line)
            exports = re.search(r"export PROXIMITY_AGENT=(\S+) PROXIMITY_TOKEN=(\S+)", line)
        assert exports is not None, "".join(seen)[-3000:]
        env = {**_env(), "PROXIMITY_AGENT": exports[1], "PROXIMITY_TOKEN": exports[2]}
        listed = subprocess.run(
            [sys.executable, "-m", "proximity_sdk.cli", "apps", "list", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        [app] = json.loads(listed.stdout)
        assert (app["hostname"], app["status"], app["catalog_id"]) == ("kuma", "running", "uptime-kuma")
    finally:
        sandbox.send_signal(signal.SIGINT)
        rest, _ = sandbox.communicate(timeout=60)
    assert sandbox.returncode == 0, rest[-2000:]
    assert "Sandbox stopped" in rest
