"""The agent's token cache (issue 18): lookups saved, and revocation honoured within 1 s."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from proximity_agent.auth import TOKEN_CACHE_SECONDS, TokenCache
from proximity_sdk._pb.proximity.v1 import users_pb2, users_pb2_grpc
from proximity_sdk.models.user import Role, User
from tests.agent._rpc import code_of
from tests.agent.conftest import Agent

C = grpc.StatusCode


def _user() -> User:
    return User.model_validate(
        {"id": "u1", "name": "alice", "role": Role.MEMBER, "disabled": False, "created_at": "2026-01-01T00:00:00Z"}
    )


def test_token_cache_keeps_successes_for_its_time_only() -> None:
    now = [100.0]
    answers: dict[str, User | None] = {"good": _user(), "bad": None}
    asked: list[str] = []

    async def authenticate(token: str) -> User | None:
        asked.append(token)
        return answers[token]

    cache = TokenCache(authenticate, seconds=0.5, max_entries=2, clock=lambda: now[0])

    async def scenario() -> None:
        assert await cache("good") == answers["good"]
        now[0] += 0.4
        assert await cache("good") == answers["good"]  # within 0.5 s: no lookup
        assert asked == ["good"]
        now[0] += 0.1
        assert await cache("good") is not None  # 0.5 s old: looked up again
        assert asked == ["good", "good"]
        answers["good"] = None  # revoked
        now[0] += 0.5
        assert await cache("good") is None
        assert await cache("good") is None  # failures are never kept
        assert await cache("bad") is None
        assert await cache("bad") is None
        assert asked == ["good", "good", "good", "good", "bad", "bad"]
        # bounded: the oldest entry goes first
        for token in ("a", "b", "c"):
            answers[token] = _user()
            await cache(token)
        asked.clear()
        await cache("c")
        await cache("a")
        assert asked == ["a"]
        assert cache.lookups == 10
        cache.clear()
        await cache("c")
        assert asked == ["a", "c"]

    asyncio.run(scenario())


def test_calls_within_the_cache_time_do_not_look_the_token_up(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    users = agent.px.store.users
    real = users.authenticate
    lookups: list[str] = []

    def counting(token: str) -> User | None:
        lookups.append(token)
        return real(token)

    monkeypatch.setattr(users, "authenticate", counting)
    me = agent.stub(users_pb2_grpc.UserServiceStub, agent.member)
    began = time.monotonic()
    calls = 0
    while time.monotonic() - began < TOKEN_CACHE_SECONDS * 0.8:
        assert me.GetCurrentUser(users_pb2.GetCurrentUserRequest()).user.id == agent.member_id
        calls += 1
    assert calls >= 5
    assert len(lookups) == 1


def test_a_token_revoked_elsewhere_is_refused_within_1s(agent: Agent) -> None:
    users = agent.px.store.users
    me = agent.stub(users_pb2_grpc.UserServiceStub, agent.member)
    assert code_of(lambda: me.GetCurrentUser(users_pb2.GetCurrentUserRequest())) == C.OK  # cached now
    token_id = next(t.id for t in users.tokens(agent.member_id) if t.name == "alice-cli")
    users.revoke_token(token_id)  # straight in the store: as another agent or the CLI would
    revoked = time.monotonic()
    while code_of(lambda: me.GetCurrentUser(users_pb2.GetCurrentUserRequest())) == C.OK:
        assert time.monotonic() - revoked < 1.0, "a revoked token still served after 1 s"
        time.sleep(0.02)
    assert time.monotonic() - revoked < 1.0
    # and it stays refused
    assert code_of(lambda: me.GetCurrentUser(users_pb2.GetCurrentUserRequest())) == C.UNAUTHENTICATED


def test_revoking_through_this_agent_is_honoured_at_once(agent: Agent) -> None:
    admin = agent.stub(users_pb2_grpc.UserServiceStub, agent.admin)
    me = agent.stub(users_pb2_grpc.UserServiceStub, agent.member)
    assert code_of(lambda: me.GetCurrentUser(users_pb2.GetCurrentUserRequest())) == C.OK  # cached now
    token_id = next(t.id for t in agent.px.store.users.tokens(agent.member_id) if t.name == "alice-cli")
    admin.RevokeToken(users_pb2.RevokeTokenRequest(token_id=token_id))
    assert code_of(lambda: me.GetCurrentUser(users_pb2.GetCurrentUserRequest())) == C.UNAUTHENTICATED
