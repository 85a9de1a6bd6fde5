"""Keyset page tokens (issue 18, AIP-158): ListApps, ListOperations and ListBackups page by the
position of the last item, so a list that changes between pages neither repeats nor skips an
item, and a token is strictly parsed."""

from __future__ import annotations

import base64
import itertools
import json

import grpc

from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc, operations_pb2, operations_pb2_grpc
from tests.agent._rpc import rpc_error, trailing
from tests.agent.conftest import Agent

C = grpc.StatusCode
_NUMBERS = itertools.count()


def _seed(agent: Agent, count: int, *, owner: str) -> list[str]:
    host = agent.px.hosts.get("lab")
    return [
        agent.px.store.apps.create(hostname=f"page-{next(_NUMBERS):03d}", host_id=host.id, owner_id=owner).id
        for _ in range(count)
    ]


def _token(payload: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decoded(token: str) -> dict[str, object]:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))  # type: ignore[no-any-return]


def test_list_apps_pages_without_skipping_when_seen_apps_go_away(agent: Agent) -> None:
    ids = _seed(agent, 23, owner=agent.admin_id)
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.admin)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = apps.ListApps(apps_pb2.ListAppsRequest(page_size=5, page_token=token))
        seen += [a.id for a in page.apps]
        pages += 1
        if pages == 2:
            # Two apps of the first page are deleted and one is added while the client pages on:
            # OFFSET paging would skip two apps here; keyset paging resumes after the last one seen.
            agent.px.store.apps.delete(seen[0])
            agent.px.store.apps.delete(seen[1])
            ids += _seed(agent, 1, owner=agent.admin_id)
        token = page.next_page_token
        if not token:
            break
    assert seen == ids  # every app once, in creation order, the one added meanwhile at the end
    assert pages == 5  # 24 apps by pages of 5; the last page says so with an empty token
    decoded = _decoded(apps.ListApps(apps_pb2.ListAppsRequest(page_size=5)).next_page_token)
    assert set(decoded) == {"v", "q", "t", "i"}  # a position, not an offset


def test_a_member_pages_through_their_own_apps_only_whatever_the_token_says(agent: Agent) -> None:
    admin_ids = _seed(agent, 4, owner=agent.admin_id)
    mine = _seed(agent, 3, owner=agent.member_id)
    member = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    first = member.ListApps(apps_pb2.ListAppsRequest(page_size=2))
    assert [a.id for a in first.apps] == mine[:2]
    # a token moved back to before every app: still only the member's apps follow
    forged = _decoded(first.next_page_token)
    forged["t"] = "2000-01-01T00:00:00+00:00"
    forged["i"] = admin_ids[0]
    page = member.ListApps(apps_pb2.ListAppsRequest(page_size=10, page_token=_token(forged)))
    assert [a.id for a in page.apps] == mine and page.next_page_token == ""


def test_bad_page_tokens_are_invalid_argument_naming_page_token(agent: Agent) -> None:
    _seed(agent, 3, owner=agent.admin_id)
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.admin)
    good = apps.ListApps(apps_pb2.ListAppsRequest(page_size=1)).next_page_token
    payload = _decoded(good)
    bad_tokens = {
        "garbage": "garbage!",
        "an offset token of the old kind": _token({"o": 1, "q": payload["q"]}),
        "another version": _token({**payload, "v": 2}),
        "an extra key": _token({**payload, "x": 1}),
        "a naive time": _token({**payload, "t": "2026-01-01T00:00:00"}),
        "a bad id": _token({**payload, "i": "x' OR 1=1 --"}),
        "not json": base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "cut short": good[:-3],
        "too long": "A" * 600,
    }
    for why, bad in bad_tokens.items():
        error = rpc_error(lambda bad=bad: apps.ListApps(apps_pb2.ListAppsRequest(page_size=1, page_token=bad)))
        assert error.code() == C.INVALID_ARGUMENT, why
        assert trailing(error)["proximity-error-field"] == "page_token", why
        assert "page_token" in error.details(), why
    # the token of one query is refused by another (other filters, another method)
    other = rpc_error(lambda: apps.ListApps(apps_pb2.ListAppsRequest(page_size=1, search="x", page_token=good)))
    assert other.code() == C.INVALID_ARGUMENT and "another query" in other.details()
    ops = agent.stub(operations_pb2_grpc.OperationServiceStub, agent.admin)
    cross = rpc_error(lambda: ops.ListOperations(operations_pb2.ListOperationsRequest(page_token=good)))
    assert cross.code() == C.INVALID_ARGUMENT and "another query" in cross.details()


def test_page_size_1000_still_tells_whether_more_follow(agent: Agent) -> None:
    ids = _seed(agent, 3, owner=agent.admin_id)
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.admin)
    everything = apps.ListApps(apps_pb2.ListAppsRequest(page_size=1000))
    assert [a.id for a in everything.apps] == ids and everything.next_page_token == ""
