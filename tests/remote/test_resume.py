"""events() survives a dropped WatchOperation stream: it reconnects and resumes after the last
event it yielded, so every event of the operation comes exactly once, in order."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc

from proximity_sdk.models.app import App
from tests.harness.sshd import StandinState
from tests.remote._agent import RunningAgent

WAIT = 60


def _all_events(agent: RunningAgent, op_id: str) -> list[tuple[int, str]]:
    return [(e.seq, e.message) for e in agent.px.store.operations.events(op_id)]


def test_the_agent_restarting_mid_operation_loses_and_repeats_nothing(
    running: RunningAgent, standin_state: StandinState
) -> None:
    # `docker compose pull` takes 2 s: the deploy is in its `up` step while the agent is away
    standin_state.script("docker", match="pull", times=1, sleep=2)
    with running.connect() as px:
        op = px.apps.deploy("gitea", hostname="web1")
        seen: list[tuple[int, str]] = []
        events = op.events(timeout=WAIT)
        for event in events:
            seen.append((event.seq, event.message))
            if event.message == "up: started":
                break
        port = running.port
        running.stop()  # every stream is cut; the deploy goes on in the agent's process
        restart = threading.Timer(0.8, running.start)
        restart.start()
        seen += [(e.seq, e.message) for e in events]  # blocks through the outage, then resumes
        restart.join()
        assert running.port == port
        assert seen == _all_events(running, op.id)
        assert [s for s, _ in seen] == list(range(1, len(seen) + 1))
        assert seen[-1][1] == "deploy succeeded"
        assert isinstance(op.wait(timeout=WAIT), App)


class _Cut(grpc.RpcError, grpc.Call):
    """What a stream broken by the network raises: UNAVAILABLE, no error kind from the agent."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "Socket closed"

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


class _CutAfter(grpc.UnaryStreamClientInterceptor):
    """Breaks every WatchOperation stream after ``n`` events (the calls go to the real agent)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.cuts = 0
        self.requests: list[int] = []

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        call = continuation(details, request)
        if not details.method.endswith("/WatchOperation"):
            return call
        self.requests.append(request.after_seq)
        return _Stream(call, self)


class _Stream:
    def __init__(self, call: Any, owner: _CutAfter) -> None:
        self._call = call
        self._owner = owner
        self._count = 0

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> Any:
        if self._count == self._owner.n:
            self._owner.cuts += 1
            self._call.cancel()
            raise _Cut()
        self._count += 1
        return next(self._call)

    def cancel(self) -> bool:
        return bool(self._call.cancel())


def test_a_stream_cut_every_few_events_is_resumed_each_time(running: RunningAgent) -> None:
    with running.connect() as px:
        cutter = _CutAfter(4)
        conn = px._conn  # the test breaks the client's own channel
        conn.channel = grpc.intercept_channel(conn.channel, cutter)
        op = px.apps.deploy("gitea", hostname="web2")
        started = time.monotonic()
        seen = [(e.seq, e.message) for e in op.events(timeout=WAIT)]
        assert time.monotonic() - started < WAIT
        assert seen == _all_events(running, op.id)
        assert [s for s, _ in seen] == list(range(1, len(seen) + 1))
        assert cutter.cuts >= len(seen) // 4 - 1
        # each reconnection asked from the last event it had
        assert cutter.requests[:3] == [0, 4, 8]
        # and so does follow=False from the middle: cut, resumed, still exactly once
        assert [e.seq for e in op.events(after=10, follow=False)] == list(range(11, len(seen) + 1))
