"""``proximity-agent serve`` as a process of its own, for the tests and the benches."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ServedAgent"]

ROOT = Path(__file__).resolve().parents[2]


class ServedAgent:
    """A ``proximity-agent serve`` process; its JSON logs (stderr) go to a file."""

    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.stderr"
        with self.log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "proximity_agent.cli", "serve"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def wait_log(self, match: Callable[[dict[str, Any]], bool], *, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.logs():
                if match(entry):
                    return entry
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no such log line in {timeout} s\n{self.log.read_text()[-3000:]}")

    def serving(self) -> tuple[int, str]:
        """(gRPC port, agent identity) once it serves."""
        entry = self.wait_log(lambda e: str(e.get("message", "")).startswith("serving gRPC on"))
        return int(entry["port"]), str(entry["agent"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
