"""The agent in-process for the remote SDK's tests: its server (tests/agent/conftest.py's
``ServerThread``, on its own event loop) around a ``Proximity.local`` over the harness host, and
an admin token; ``connect()`` gives a ``Proximity.connect`` client over a real channel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from proximity_agent.auth import bootstrap_admin_token
from proximity_agent.server import ServerOptions
from proximity_sdk._client import Proximity
from proximity_sdk._remote._client import RemoteProximity
from tests.agent.conftest import ServerThread
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState


def standins_follow_fakepve(pve: HarnessPve, standin_state: StandinState) -> None:
    """What tests/backups does: `pvesm path` knows every archive the fake vzdump writes (a clone
    copies the stand-in container's files by itself: ``SandboxPve``'s clone)."""
    pve.on_archive = standin_state.set_volume_path


@dataclass
class RunningAgent:
    px: Proximity
    server: ServerThread | None
    token: str
    options: ServerOptions
    port: int = 0

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def start(self) -> None:
        """(Again) on the same port."""
        assert self.server is None
        self.server = ServerThread(self.options.model_copy(update={"port": self.port}), self.px)
        self.port = self.server.port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def connect(self, **kwargs: object) -> RemoteProximity:
        return Proximity.connect(self.target, token=self.token, **kwargs)  # type: ignore[arg-type]


@contextmanager
def running_agent(px: Proximity, *, options: ServerOptions | None = None) -> Iterator[RunningAgent]:
    agent = RunningAgent(
        px=px,
        server=None,
        token=bootstrap_admin_token(px, "remote-admin"),
        options=options or ServerOptions(port=0, watch_poll_seconds=0.05),
    )
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()
