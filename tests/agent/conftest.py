"""The agent in-process: its gRPC server on port 0 (its own event loop, in a thread) around a
Proximity on SQLite with the harness host (fakepve over HTTPS + the real sshd), and users.

``agent.stub(ServiceStub, token)`` gives a stub on a real channel that sends the bearer token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.fernet import Fernet

from proximity_agent.auth import bootstrap_admin_token
from proximity_agent.server import AgentServer, ServerOptions, build_server
from proximity_sdk._client import Proximity
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.models.user import Role
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import StandinState

LISTENING = "LISTEN 0 4096 0.0.0.0:{port} 0.0.0.0:*\n"


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds `authorization: Bearer <token>` to every call of a channel."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=tuple(details.metadata or ()) + self._metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


class ServerThread:
    """The agent's server on its own event loop in a background thread, as the CLI would run it."""

    def __init__(self, options: ServerOptions, px: Proximity) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="agent-loop", daemon=True)
        self._thread.start()
        self.server, self.port = self.call(self._start(options, px))

    @staticmethod
    async def _start(options: ServerOptions, px: Proximity) -> tuple[AgentServer, int]:
        server, port = build_server(options, px=px)
        await server.start()
        return server, port

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        try:
            self.call(self.server.stop(0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@dataclass
class Agent:
    px: Proximity
    server: ServerThread
    admin: str  # bearer tokens
    member: str
    other: str
    admin_id: str
    member_id: str
    other_id: str
    _channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self, token: str | None) -> grpc.Channel:
        channel = grpc.insecure_channel(self.target)
        if token is not None:
            channel = grpc.intercept_channel(channel, _Bearer(token))
        self._channels.append(channel)
        return channel

    def stub(self, stub_class: Callable[[grpc.Channel], Any], token: str | None) -> Any:
        return stub_class(self.channel(token))

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


@pytest.fixture
def agent_px(
    tmp_path: Path, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess, standin_state: StandinState
) -> Iterator[Proximity]:
    """Proximity on SQLite with host "lab" (node pve1 and its sshd); containers' `ss` reports 3000 and 80."""
    standin_state.script("ss", stdout=LISTENING.format(port=3000) + LISTENING.format(port=80))
    with Proximity.local(
        data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False, lease_seconds=5
    ) as px:
        px.store.apps.keep_reads()  # as AgentReplica.open does for a served agent
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access)
        yield px


@pytest.fixture
def agent(agent_px: Proximity) -> Iterator[Agent]:
    """The agent on 127.0.0.1:<free port>, plainly (TLS has its own tests), with an admin and two members."""
    px = agent_px
    admin = bootstrap_admin_token(px, "root-admin")
    users = px.store.users
    member_user = users.create("alice", role=Role.MEMBER)
    other_user = users.create("bob", role=Role.MEMBER)
    _, member = users.issue_token(member_user.id, name="alice-cli")
    _, other = users.issue_token(other_user.id, name="bob-cli")
    server = ServerThread(ServerOptions(port=0, watch_poll_seconds=0.05), px)
    handle = Agent(
        px=px,
        server=server,
        admin=admin,
        member=member,
        other=other,
        admin_id=users.get("root-admin").id,
        member_id=member_user.id,
        other_id=other_user.id,
    )
    try:
        yield handle
    finally:
        handle.close()
        server.stop()
