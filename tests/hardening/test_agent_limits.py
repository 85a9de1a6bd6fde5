"""Issue 15: one member cannot stall the agent for everyone. Token checks run on their own pool,
long calls on theirs, and a user holds a bounded number of long calls (RESOURCE_EXHAUSTED beyond).
Plaintext is refused off loopback. Logs and the shell's line buffer are bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from proximity_agent.server import ServerOptions
from proximity_sdk._client import Proximity
from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc, users_pb2, users_pb2_grpc
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.proxmox import shell as shell_module
from tests.agent.conftest import Agent, ServerThread


class _Blocker:
    """Stands in for ``px.apps.logs``: holds its thread until released, like a slow SSH read."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = 0
        self._lock = threading.Lock()

    def __call__(self, app_id: str, **kwargs: Any) -> str:
        with self._lock:
            self.entered += 1
        self.release.wait(30)
        return "done\n"


@pytest.fixture
def blocker(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Blocker]:
    stand_in = _Blocker()
    monkeypatch.setattr(agent.px.apps, "logs", stand_in)
    yield stand_in
    stand_in.release.set()


def _member_app(px: Proximity, owner_id: str) -> str:
    host = px.hosts.get("lab")
    return px.store.apps.create(
        hostname="mine", host_id=host.id, status=AppStatus.RUNNING, node="pve1", vmid=150, owner_id=owner_id
    ).id


def _wait(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_user_holds_a_bounded_number_of_long_calls(agent: Agent, blocker: _Blocker) -> None:
    app_id = _member_app(agent.px, agent.member_id)
    member = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    backend = agent.server.server.backend
    held = [member.GetAppLogs.future(apps_pb2.GetAppLogsRequest(app_id=app_id)) for _ in range(4)]
    _wait(lambda: blocker.entered == 4)
    assert backend.long_calls(agent.member_id) == 4

    with pytest.raises(grpc.RpcError) as refused:
        member.GetAppLogs(apps_pb2.GetAppLogsRequest(app_id=app_id), timeout=5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "4 long calls running" in (refused.value.details() or "")

    # another user has a quota of their own (and still cannot see the member's app)
    other = agent.stub(apps_pb2_grpc.AppServiceStub, agent.other)
    with pytest.raises(grpc.RpcError) as hidden:
        other.GetAppLogs(apps_pb2.GetAppLogsRequest(app_id=app_id), timeout=5)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND

    # a cancelled call keeps counting until its thread is done: cancel-and-retry piles up nothing
    held[0].cancel()
    with pytest.raises(grpc.RpcError) as still:
        member.GetAppLogs(apps_pb2.GetAppLogsRequest(app_id=app_id), timeout=5)
    assert still.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    blocker.release.set()
    for call in held[1:]:
        assert call.result(timeout=10).text == "done\n"
    _wait(lambda: backend.long_calls(agent.member_id) == 0)
    assert member.GetAppLogs(apps_pb2.GetAppLogsRequest(app_id=app_id), timeout=10).text == "done\n"


def test_token_checks_never_wait_behind_long_calls(agent: Agent, blocker: _Blocker) -> None:
    """Every thread of the long pool and of the quick pool busy: the admin is still admitted."""
    app_id = _member_app(agent.px, agent.member_id)
    server = ServerThread(ServerOptions(port=0, max_workers=2, long_workers=2, long_calls_per_user=64), agent.px)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        member = apps_pb2_grpc.AppServiceStub(channel)
        metadata = (("authorization", f"Bearer {agent.member}"),)
        held = [
            member.GetAppLogs.future(apps_pb2.GetAppLogsRequest(app_id=app_id), metadata=metadata) for _ in range(16)
        ]
        _wait(lambda: blocker.entered >= 2)
        admin = users_pb2_grpc.UserServiceStub(channel)
        began = time.monotonic()
        me = admin.GetCurrentUser(
            users_pb2.GetCurrentUserRequest(), timeout=5, metadata=(("authorization", f"Bearer {agent.admin}"),)
        )
        assert me.user.id == agent.admin_id
        assert time.monotonic() - began < 5
        blocker.release.set()
        for call in held:
            call.result(timeout=30)
        channel.close()
    finally:
        blocker.release.set()
        server.stop()


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.10", "agent.example.org"])
def test_plaintext_is_refused_off_loopback(agent_px: Proximity, address: str) -> None:
    from proximity_agent.server import build_server

    with pytest.raises(ValidationError, match="refusing to serve plaintext gRPC") as refused:
        build_server(ServerOptions(address=address, port=0), px=agent_px)
    assert "tls_cert_file" in (refused.value.hint or "")


def test_plaintext_off_loopback_when_allowed_is_logged(agent_px: Proximity, caplog: pytest.LogCaptureFixture) -> None:
    options = ServerOptions(address="0.0.0.0", port=0, allow_plaintext=True)
    with caplog.at_level("WARNING", logger="proximity_agent.server"):
        server = ServerThread(options, agent_px)
    try:
        assert any("PLAINTEXT" in r.getMessage() for r in caplog.records)
    finally:
        server.stop()


def test_logs_tail_is_capped(agent_px: Proximity) -> None:
    host = agent_px.hosts.get("lab")
    app = agent_px.store.apps.create(hostname="mine", host_id=host.id, status=AppStatus.RUNNING, node="pve1", vmid=150)
    with pytest.raises(ValidationError, match="from 1 to 10000"):
        agent_px.apps.logs(app.id, tail=100_000)


def test_the_shell_line_buffer_stays_bounded_without_newlines() -> None:
    seen: list[str] = []
    lines = shell_module._Lines("stdout", lambda _stream, line: seen.append(line))
    chunk = b"x" * 65536
    for _ in range(256):  # 16 MiB without a newline
        lines.feed(chunk)
        assert len(lines._pending) <= shell_module._MAX_LINE
    lines.feed(b"\nnext")
    lines.finish()
    assert len(lines.data) == 256 * 65536 + 5  # the full output is still there
    assert len(seen) == 2
    assert seen[0].endswith("[line cut at 65536 bytes]")
    assert len(seen[0]) < shell_module._MAX_LINE + 64
    assert seen[1] == "next"


def test_a_member_holds_a_bounded_number_of_backup_schedules(agent: Agent) -> None:
    from proximity_sdk._pb.proximity.v1 import backups_pb2, backups_pb2_grpc

    app_id = _member_app(agent.px, agent.member_id)
    server = ServerThread(ServerOptions(port=0, backup_schedules_per_user=2), agent.px)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        backups = backups_pb2_grpc.BackupServiceStub(channel)

        def create(token: str) -> Any:
            request = backups_pb2.CreateBackupScheduleRequest(app_id=app_id, cron="0 3 * * *")
            return backups.CreateBackupSchedule(request, metadata=(("authorization", f"Bearer {token}"),), timeout=10)

        create(agent.member)
        create(agent.member)
        with pytest.raises(grpc.RpcError) as refused:
            create(agent.member)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "2 backup schedules" in (refused.value.details() or "")
        create(agent.admin)  # admins are not counted
        assert len(agent.px.store.backups.schedules(app_id=app_id)) == 3
        channel.close()
    finally:
        server.stop()
