"""WatchOperation under load: 100 concurrent grpc.aio watchers of one live deploy each get every
event in order; watchers that disconnect and resume from their last seq miss nothing and get
nothing twice; and the watchers share one poller instead of holding a thread each."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import grpc
import pytest
from grpc import aio

from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc, operations_pb2, operations_pb2_grpc
from tests.agent.conftest import Agent
from tests.harness.sshd import StandinState

WATCHERS = 100


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _live_deploy(agent: Agent, standin_state: StandinState, hostname: str) -> str:
    # `compose up` takes 2 s in the stand-in, so the watchers connect while the deploy runs
    standin_state.script("docker", match="up", sleep=2.0)
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    op = apps.DeployApp(apps_pb2.DeployAppRequest(catalog_id="gitea", hostname=hostname)).operation
    return op.id


def _expected(agent: Agent, op_id: str) -> list[tuple[int, str]]:
    return [(e.seq, e.message) for e in agent.px.store.operations.events(op_id, limit=100_000)]


async def _watch(stub: Any, token: str, op_id: str, after: int = 0) -> list[tuple[int, str]]:
    call = stub.WatchOperation(
        operations_pb2.WatchOperationRequest(operation_id=op_id, after_seq=after), metadata=_metadata(token), timeout=60
    )
    return [(m.event.seq, m.event.message) async for m in call]


def test_a_hundred_watchers_of_one_deploy_get_every_event_in_order(agent: Agent, standin_state: StandinState) -> None:
    op_id = _live_deploy(agent, standin_state, "git-w")
    threads_before = threading.active_count()
    peak: dict[str, int] = {"threads": 0, "feeds": 0}

    async def run() -> list[list[tuple[int, str]]]:
        async with aio.insecure_channel(agent.target) as channel:
            stub = operations_pb2_grpc.OperationServiceStub(channel)
            watchers = [asyncio.create_task(_watch(stub, agent.member, op_id)) for _ in range(WATCHERS)]
            while not all(w.done() for w in watchers):
                peak["threads"] = max(peak["threads"], threading.active_count())
                peak["feeds"] = max(peak["feeds"], agent.server.server.backend.feeds.active)
                await asyncio.sleep(0.05)
            return [w.result() for w in watchers]

    results = asyncio.run(run())
    expected = _expected(agent, op_id)
    assert expected[-1][1] == "deploy succeeded" and len(expected) > 20
    assert all(result == expected for result in results)
    # one poller for all of them, and no thread per watcher
    assert peak["feeds"] == 1
    assert peak["threads"] - threads_before < 25, peak
    assert agent.server.server.backend.feeds.active == 0  # gone with its last watcher


def test_watchers_that_disconnect_and_resume_miss_nothing(agent: Agent, standin_state: StandinState) -> None:
    op_id = _live_deploy(agent, standin_state, "git-r")

    async def interrupted(stub: Any, cut: int) -> list[tuple[int, str]]:
        """Read ``cut`` events, hang up, come back with the last seq received."""
        call = stub.WatchOperation(
            operations_pb2.WatchOperationRequest(operation_id=op_id), metadata=_metadata(agent.member), timeout=60
        )
        first: list[tuple[int, str]] = []
        async for message in call:
            first.append((message.event.seq, message.event.message))
            if len(first) == cut:
                break
        call.cancel()
        await asyncio.sleep(0.3)  # away while the deploy goes on
        last = first[-1][0] if first else 0
        return first + await _watch(stub, agent.member, op_id, after=last)

    async def run() -> list[list[tuple[int, str]]]:
        async with aio.insecure_channel(agent.target) as channel:
            stub = operations_pb2_grpc.OperationServiceStub(channel)
            return await asyncio.gather(*(interrupted(stub, cut) for cut in (1, 3, 5, 8, 13, 21)))

    results = asyncio.run(run())
    expected = _expected(agent, op_id)
    for result in results:
        assert result == expected  # nothing missed, nothing twice, in order
    assert agent.server.server.backend.feeds.active == 0  # hung-up watchers left their feed at once
    # resuming after the end gives nothing more, and the stream still ends
    after_end = asyncio.run(_watch_once(agent, op_id, after=expected[-1][0]))
    assert after_end == []


async def _watch_once(agent: Agent, op_id: str, *, after: int) -> list[tuple[int, str]]:
    async with aio.insecure_channel(agent.target) as channel:
        return await _watch(operations_pb2_grpc.OperationServiceStub(channel), agent.member, op_id, after=after)


def test_watch_refusals(agent: Agent, standin_state: StandinState) -> None:
    op_id = _live_deploy(agent, standin_state, "git-x")
    ops_other = agent.stub(operations_pb2_grpc.OperationServiceStub, agent.other)
    ops_member = agent.stub(operations_pb2_grpc.OperationServiceStub, agent.member)
    cases = [
        (ops_other, operations_pb2.WatchOperationRequest(operation_id=op_id), grpc.StatusCode.NOT_FOUND),
        (
            ops_member,
            operations_pb2.WatchOperationRequest(operation_id=op_id, after_seq=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (ops_member, operations_pb2.WatchOperationRequest(operation_id="missing"), grpc.StatusCode.NOT_FOUND),
        (
            agent.stub(operations_pb2_grpc.OperationServiceStub, None),
            operations_pb2.WatchOperationRequest(operation_id=op_id),
            grpc.StatusCode.UNAUTHENTICATED,
        ),
    ]
    for stub, request, code in cases:
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.WatchOperation(request, timeout=30))
        assert refused.value.code() == code, (request, refused.value.details())
    # the admin sees anyone's operation
    ops_admin = agent.stub(operations_pb2_grpc.OperationServiceStub, agent.admin)
    events = [
        m.event for m in ops_admin.WatchOperation(operations_pb2.WatchOperationRequest(operation_id=op_id), timeout=60)
    ]
    assert events[-1].message == "deploy succeeded"
