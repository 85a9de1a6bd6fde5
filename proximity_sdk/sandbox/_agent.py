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
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from proximity_sdk.errors import ProximityError

if TYPE_CHECKING:
    from proximity_sdk._client import Proximity

__all__ = ["SandboxAgent"]

_START_TIMEOUT = 60.0


class SandboxAgentError(ProximityError):
    """The sandbox's agent did not start."""

    default_hint = "Run `proximity-agent serve` by hand to see why"


class SandboxAgent:
    """``start(directory)``, then ``target`` (``127.0.0.1:<port>``) and ``token`` (admin); ``stop()``."""

    def __init__(
        self,
        process: subprocess.Popen[str],
        target: str,
        token: str,
        log_tail: deque[str],
        *,
        directory: Path | None = None,
    ) -> None:
        self.process = process
        self.directory = directory
        self.target = target
        self.token = token
        self._log_tail = log_tail

    @staticmethod
    def _environment(directory: Path, catalog_paths: Sequence[Path] = ()) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
        env.update(
            {
                "PROXIMITY_AGENT_DATA_DIR": str(directory),
                "PROXIMITY_AGENT_PORT": "0",
                "PROXIMITY_AGENT_METRICS_PORT": "null",
                "PROXIMITY_AGENT_ENTRY_POINTS": "false",
                "PROXIMITY_AGENT_LOG_FORMAT": "json",
            }
        )
        if catalog_paths:
            env["PROXIMITY_AGENT_CATALOG_PATHS"] = json.dumps([str(p) for p in catalog_paths])
        return env

    @classmethod
    def start(cls, directory: str | os.PathLike[str], *, catalog_paths: Sequence[Path] = ()) -> SandboxAgent:
        """Start it with state in ``directory`` and, besides the built-in catalog, the catalog
        directories ``catalog_paths`` (a real-mode sandbox's ``demo-web``)."""
        where = Path(directory)
        where.mkdir(parents=True, exist_ok=True)
        env = cls._environment(where, catalog_paths)
        made = subprocess.run(
            [sys.executable, "-m", "proximity_agent.cli", "token", "create", "--admin"],
            env=env,
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT,
            check=False,
        )
        if made.returncode != 0:
            raise SandboxAgentError(f"could not make the agent's admin token: {made.stderr.strip()[-500:]}")
        token = made.stdout.strip()
        process = subprocess.Popen(
            [sys.executable, "-m", "proximity_agent.cli", "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
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
        agent = cls(process, f"127.0.0.1:{port[0]}" if port else "", token, tail, directory=where)
        if not port:
            agent.stop()
            shown = "\n".join(list(tail)[-5:])
            raise SandboxAgentError(f"the sandbox's agent did not start:\n{shown}")
        return agent

    @staticmethod
    def prepare(directory: str | os.PathLike[str]) -> Proximity:
        """A local Proximity on the state an agent started in ``directory`` will use (its SQLite file
        and key file), for what the agent's API does not carry (a host's registry settings). Use it
        and close it before :meth:`start`, so the agent starts with what it wrote."""
        from cryptography.fernet import Fernet

        from proximity_sdk._client import Proximity
        from proximity_sdk.store.crypto import KEY_FILE_NAME, read_key_file, write_key_file

        where = Path(directory)
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_file = where / KEY_FILE_NAME
        # the key file the agent will read, not $PROXIMITY_SECRET_KEY (the agent starts without it)
        write_key_file(key_file, [Fernet.generate_key()], replace=False)
        key = b"\n".join(read_key_file(key_file))
        return Proximity.local(data_dir=where, secret_key=key, entry_points=False)

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

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
