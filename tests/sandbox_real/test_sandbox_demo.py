"""`proximity sandbox --real`: the sample app deployed for real in a real LXC container, its URL
answering from this machine; Ctrl-C (SIGTERM here) leaves no container, registry or file behind.

The CLI runs as a subprocess exactly as a user starts it; the test reads its output for the app's
URL and fetches it itself.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from proximity_sdk.sandbox._real import _images, _lxc

pytestmark = pytest.mark.real_node


def _processes_mentioning(text: str) -> list[int]:
    """Ids of the processes whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def _owned_by(pid: int) -> list[str]:
    """The LXC containers a sandbox in process ``pid`` made (it writes its id into each)."""
    if not _lxc.LXC_PATH.is_dir():
        return []
    return sorted(
        p.name
        for p in _lxc.LXC_PATH.iterdir()
        if (p / "proximity-owner").is_file() and (p / "proximity-owner").read_text().strip() == str(pid)
    )


@pytest.mark.timeout(900)
def test_sandbox_real_deploys_the_sample_app_and_its_url_answers(real_template: object) -> None:
    problems = _images.missing_tools()
    if problems:
        message = "image tools missing: " + "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: the real_node tier must run, not skip)", pytrace=False)
        pytest.skip(message)
    env = {**os.environ, "COLUMNS": "300", "NO_COLOR": "1", "TERM": "dumb"}
    cli = subprocess.Popen(
        [sys.executable, "-m", "proximity_sdk.cli", "sandbox", "--real"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    serving = threading.Event()

    def read() -> None:
        assert cli.stdout is not None
        for line in cli.stdout:
            lines.append(line)
            if "Serving until Ctrl-C" in line:
                serving.set()
        serving.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert serving.wait(840) and cli.poll() is None, "".join(lines[-40:])
        output = "".join(lines)
        directory = re.search(r"Files: (/\S+)", output)
        url = re.search(r"demo is running\S* on pve\d, CT \d+, at (http://10\.0\.3\.\d+:8080)", output)
        assert directory and url, output
        registry = re.search(r"local registry (10\.0\.3\.1:\d+)", output)
        assert registry, output
        # the printed next steps name this app's URL and a deploy that works in real mode
        assert f"curl {url.group(1)}" in output and "proximity apps deploy demo-web" in output
        assert "gitea" not in output
        # ... and the printed commands work from another terminal, against this sandbox's agent
        exported = re.search(r"export PROXIMITY_AGENT=(\S+) PROXIMITY_TOKEN=(\S+)", output)
        assert exported, output
        other = {k: v for k, v in env.items() if not k.startswith("PROXIMITY_")}
        other.update(PROXIMITY_AGENT=exported.group(1), PROXIMITY_TOKEN=exported.group(2).strip("'"))
        listed = subprocess.run(
            [sys.executable, "-m", "proximity_sdk.cli", "apps", "list"],
            env=other,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0 and url.group(1) in listed.stdout, listed.stdout + listed.stderr
        assert _processes_mentioning(directory.group(1) + "/registry")  # the registry runs while it serves
        with urllib.request.urlopen(url.group(1), timeout=10) as answer:  # noqa: S310 - http to a test container
            assert answer.status == 200
            assert answer.read().decode() == _images.SAMPLE_PAGE
        assert _owned_by(cli.pid)
    finally:
        if cli.poll() is None:
            cli.send_signal(signal.SIGTERM)  # what the CLI does on Ctrl-C too: stop everything
        try:
            code = cli.wait(timeout=120)
        except subprocess.TimeoutExpired:
            cli.kill()
            raise
    assert code == 0, "".join(lines[-40:])
    assert "Sandbox stopped" in "".join(lines)
    assert _owned_by(cli.pid) == []
    assert _processes_mentioning(directory.group(1)) == []
    assert not Path(directory.group(1)).exists()
    deadline = time.monotonic() + 5
    while True:  # nothing listens at the registry's address any more
        try:
            urllib.request.urlopen(f"http://{registry.group(1)}/v2/", timeout=2)
        except OSError:
            break
        assert time.monotonic() < deadline, "the local registry still answers"
        time.sleep(0.2)
