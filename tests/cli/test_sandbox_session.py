"""A recorded session of the README's first hour: `proximity sandbox` serving, then from "another
terminal" (a fresh PATH that has not got the venv, the printed exports only): deploy, logs, clone,
backup, restore, update, rm. Every command exits 0 with the expected output; the bad arguments a
stranger tries are refused early with usage errors in CLI words."""

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

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).absolute().parent


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
    # a new terminal: the venv is not on PATH, and nothing of ours is in the data directory
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p).absolute() != BIN)
    env.update({"HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp / "cfg")})
    return env


def _shell(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.mark.timeout(600)  # a sandbox, an agent and a dozen CLI processes on a shared 2-core machine
def test_readme_session_in_the_sandbox(tmp_path: Path) -> None:
    env = _env(tmp_path)
    started = subprocess.Popen(
        [str(BIN / "proximity"), "sandbox", "--app", "gitea", "--hostname", "git-a"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert started.stdout is not None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = started.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "proximity apps deploy gitea --hostname git" in line:
                break
        text = "".join(seen)
        assert "git-a is running" in text, text[-3000:]
        # the next steps, exactly as printed: a PATH line (this venv is not on the new terminal's PATH)
        steps = re.search(r"another terminal.*?\n((?:  .*\n)+)", text)
        assert steps is not None, text[-3000:]
        printed = [line.strip() for line in steps[1].splitlines()]
        assert printed[0] == f"export PATH={BIN}:$PATH"
        assert printed[1].startswith("export PROXIMITY_AGENT=127.0.0.1:")
        exports = "; ".join(printed[:2])

        def cli(command: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
            out = _shell(f"{exports}; {command}", env, tmp_path)
            assert out.returncode == expect, f"{command} -> {out.returncode}\n{out.stdout}\n{out.stderr}"
            assert "Traceback" not in out.stderr
            return out

        out = cli("proximity apps list")  # the printed first step, in a shell that could not find proximity
        assert re.search(r"^git-a\s+running\s+gitea\s+pve\d\s+\d+\s+http://10\.10\.", out.stdout, re.M)

        out = cli("proximity apps deploy gitea --hostname git-b")
        assert "deploy succeeded" in out.stderr
        # every event names its step (the first and the last ones included): none shown as "-"
        shown = re.findall(r"^\d\d:\d\d:\d\d (\S+)\s", out.stderr, re.M)
        assert shown[0] == "queued" and shown[-1] == "done" and "-" not in shown, out.stderr
        assert re.search(r"^status\s+running", out.stdout, re.M)

        out = cli("proximity apps logs git-a")
        assert re.findall(r"^git-a-(\w+)-1\s+\|", out.stdout, re.M) == ["db", "gitea"]
        out = cli("proximity apps logs git-a --service gitea --tail 5")
        assert re.findall(r"^git-a-(\w+)-1\s+\|", out.stdout, re.M) == ["gitea"]
        out = cli("proximity apps logs git-a --service nope", expect=2)
        assert out.stderr.splitlines() == [
            "proximity: error: app 'git-a' has no service 'nope'",
            "proximity: hint: Its services: db, gitea",
        ]

        out = cli("proximity apps clone git-a --hostname git-c")
        assert "clone succeeded" in out.stderr
        out = cli("proximity apps logs git-c")  # the clone has its source's compose project
        assert "git-a-gitea-1" in out.stdout

        out = cli("proximity backups create git-a")
        assert re.search(r"^status\s+completed", out.stdout, re.M)
        backups = json.loads(cli("proximity --json backups list git-a").stdout)
        assert [b["status"] for b in backups] == ["completed"]
        out = cli(f"proximity backups restore {backups[0]['id']} --in-place")
        assert "restore succeeded" in out.stderr
        assert re.search(r"^status\s+running", out.stdout, re.M)

        out = cli("proximity apps updates")
        assert "every app is up to date" in out.stdout
        out = cli("proximity apps update git-a")
        assert "update succeeded" in out.stderr

        out = cli("proximity apps rm git-b --yes")
        assert "delete succeeded" in out.stderr
        listed = json.loads(cli("proximity --json apps list").stdout)
        assert sorted(a["hostname"] for a in listed) == ["git-a", "git-c"]
    finally:
        started.send_signal(signal.SIGINT)
        try:
            rest, _ = started.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # it ignored Ctrl-C: fail, but leave no sandbox running
            started.kill()
            started.communicate()
            raise
    assert started.returncode == 0, rest[-2000:]
    assert "Sandbox stopped" in rest


def test_sandbox_refuses_an_unknown_app_before_starting(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(BIN / "proximity"), "sandbox", "--app", "gitae"],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 3, out.stderr
    assert "SANDBOX" not in out.stdout  # nothing started
    assert out.stderr.splitlines()[0] == "proximity: error: no app 'gitae' in the catalog"
    assert "gitea" in out.stderr  # the near match
