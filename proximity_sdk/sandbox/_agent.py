"""`SandboxAgent`: a real ``proximity-agent serve`` process for the sandbox, on loopback, state in
SQLite in a directory, with an admin token made by ``proximity-agent token create``.

It is the agent a team would run, started with embedded defaults: the sandbox's CLI and SDK talk to
it over gRPC exactly as they would to one on a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType

from proximity_sdk.errors import ProximityError

__all__ = ["SandboxAgent"]

_START_TIMEOUT = 60.0


class SandboxAgentError(ProximityError):
    """The sandbox's agent did not start."""

    default_hint = "Run `proximity-agent serve` by hand to see why"


class SandboxAgent:
    """``start(directory)``, then ``target`` (``127.0.0.1:<port>``) and ``token`` (admin); ``stop()``."""

    def __init__(self, process: subprocess.Popen[str], target: str, token: str, log_tail: deque[str]) -> None:
        self.process = process
        self.target = target
        self.token = token
        self._log_tail = log_tail

    @staticmethod
    def _environment(directory: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
        env.update({
            "PROXIMITY_AGENT_DATA_DIR": str(directory),
            "PROXIMITY_AGENT_PORT": "0",
            "PROXIMITY_AGENT_METRICS_PORT": "null",
            "PROXIMITY_AGENT_ENTRY_POINTS": "false",
            "PROXIMITY_AGENT_LOG_FORMAT": "json",
        })
        return env

    @classmethod
    def start(cls, directory: str | os.PathLike[str]) -> SandboxAgent:
        where = Path(directory)
        where.mkdir(parents=True, exist_ok=True)
        env = cls._environment(where)
        made = subprocess.run([sys.executable, "-m", "proximity_agent.cli", "token", "create", "--admin"],
                              env=env, capture_output=True, text=True, timeout=_START_TIMEOUT, check=False)
        if made.returncode != 0:
            raise SandboxAgentError(f"could not make the agent's admin token: {made.stderr.strip()[-500:]}")
        token = made.stdout.strip()
        process = subprocess.Popen([sys.executable, "-m", "proximity_agent.cli", "serve"], env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        tail: deque[str] = deque(maxlen=50)
        port: list[int] = []
        ready = threading.Event()

        def read() -> None:  # keeps draining the log so the agent never blocks on a full pipe
            assert process.stderr is not None
            for line in process.stderr:
                tail.append(line.rstrip("\n"))
                if not ready.is_set():
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if str(entry.get("message", "")).startswith("serving gRPC on"):
                        port.append(int(entry["port"]))
                        ready.set()
            ready.set()

        threading.Thread(target=read, name="sandbox-agent-log", daemon=True).start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not ready.wait(0.1):
            if time.monotonic() > deadline:
                break
        agent = cls(process, f"127.0.0.1:{port[0]}" if port else "", token, tail)
        if not port:
            agent.stop()
            shown = "\n".join(list(tail)[-5:])
            raise SandboxAgentError(f"the sandbox's agent did not start:\n{shown}")
        return agent

    def stop(self) -> None:
        """SIGTERM (the agent shuts down gracefully), then a kill if it does not end within 30 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> SandboxAgent:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
