"""Errors through the agent are the SDK's own classes with the agent's words, field and hint."""

from __future__ import annotations

import inspect
import socket
from typing import Any

import grpc
import pytest

from proximity_agent.status import CallerNotAllowed, CallerNotAuthenticated, to_failure
from proximity_sdk import errors
from proximity_sdk._client import Proximity
from proximity_sdk._remote._errors import from_rpc_error
from proximity_sdk.models.user import Role
from tests.remote._agent import RunningAgent


class _Failed(grpc.RpcError):
    """A finished call as grpc reports it: code, details, trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str, metadata: tuple[tuple[str, str], ...]) -> None:
        self._code, self._details = code, details
        self._metadata = metadata

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return [_Item(k, v) for k, v in self._metadata]


class _Item:
    def __init__(self, key: str, value: str) -> None:
        self.key, self.value = key, value


def _instances() -> list[errors.ProximityError]:
    made: list[errors.ProximityError] = []
    extra: dict[str, Any] = {
        "upid": "UPID:x",
        "exitstatus": "failed",
        "log_tail": ["l1"],
        "exit_status": 3,
        "stderr_tail": "oops",
        "operation_id": "op1",
        "step": "up",
        "errors": {"x": "bad"},
    }
    for name in errors.__all__:
        cls = getattr(errors, name)
        wanted = {p for p in inspect.signature(cls).parameters if p in extra}
        made.append(cls(f"{name} happened", hint="do this", **{k: extra[k] for k in wanted}))
    made.append(errors.ValidationError("bad hostname", field="hostname"))
    return made


@pytest.mark.parametrize("exc", _instances(), ids=lambda e: type(e).__name__)
def test_every_error_class_comes_back_as_itself(exc: errors.ProximityError) -> None:
    failure = to_failure(exc)
    back = from_rpc_error(_Failed(failure.code, failure.details, failure.metadata), target="agent:1")
    assert type(back) is type(exc)
    # the agent's words exactly (it says when a Proxmox host, not the caller, was refused)
    assert str(back) == failure.details and failure.details.endswith(str(exc))
    assert back.hint == exc.hint and back.message.endswith(exc.message)
    assert getattr(back, "field", None) == getattr(exc, "field", None)


def test_the_agents_own_caller_errors_become_the_sdks() -> None:
    for exc, cls in (
        (CallerNotAuthenticated("no token"), errors.AuthenticationError),
        (CallerNotAllowed("admins only"), errors.PermissionDeniedError),
    ):
        failure = to_failure(exc)
        back = from_rpc_error(_Failed(failure.code, failure.details, failure.metadata), target="agent:1")
        assert type(back) is cls and str(back) == str(exc)
    internal = to_failure(RuntimeError("secret detail"))
    back = from_rpc_error(_Failed(internal.code, internal.details, internal.metadata), target="agent:1")
    assert type(back) is errors.ProximityError and "secret detail" not in str(back) and "reference" in str(back)


def test_errors_through_a_real_agent(running: RunningAgent) -> None:
    local = running.px
    with running.connect() as px:
        with pytest.raises(errors.NotFoundError) as remote_missing:
            px.apps.get("nope")
        with pytest.raises(errors.NotFoundError) as local_missing:
            local.apps.get("nope")
        assert str(remote_missing.value) == str(local_missing.value)

        with pytest.raises(errors.PermissionDeniedError) as rotate:
            px.settings.rotate_secret_key()
        assert "agent host" in rotate.value.hint

        with pytest.raises(errors.ValidationError) as owner:
            px.apps.deploy("gitea", hostname="web1", owner_id="someone")
        assert owner.value.field == "owner_id"

    user = local.store.users.create("alice", role=Role.MEMBER)
    _, member_token = local.store.users.issue_token(user.id, name="cli")
    with Proximity.connect(running.target, token=member_token) as member:
        with pytest.raises(errors.PermissionDeniedError):
            member.hosts.list()  # admin-only on the agent
        assert member.apps.list() == []
    with (
        Proximity.connect(running.target, token="not-a-token") as stranger,
        pytest.raises(errors.AuthenticationError) as refused,
    ):
        stranger.apps.list()
    assert "token" in str(refused.value).lower()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with (
        Proximity.connect(f"127.0.0.1:{closed}", token="t", timeout=5) as nowhere,
        pytest.raises(errors.UnreachableError) as unreachable,
    ):
        nowhere.apps.list()
    assert f"127.0.0.1:{closed}" in str(unreachable.value)
