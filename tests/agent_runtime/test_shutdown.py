"""Graceful shutdown: running operations end within the grace period; one that does not is stopped at
its next checkpoint, keeps its journal, and another replica finishes it once its lease expired."""

from __future__ import annotations

import threading
import time

from proximity_sdk.models.operation import OperationStatus
from tests.agent_runtime.conftest import OpenReplica
from tests.operations._toys import GATE, Steps


def _closing(replica: object, grace: float) -> threading.Thread:
    closer = threading.Thread(target=replica.close, kwargs={"grace": grace}, daemon=True)  # type: ignore[attr-defined]
    closer.start()
    return closer


def test_an_operation_that_ends_within_the_grace_period_completes(open_replica: OpenReplica) -> None:
    replica = open_replica(jobs={})
    toy = Steps()
    replica.px.engine.register(toy)
    op = replica.px.engine.submit("toy", params={"hold": True})
    assert toy.entered.wait(GATE)
    closer = _closing(replica, 20)
    time.sleep(0.5)
    assert closer.is_alive()  # waiting for the operation
    toy.release.set()
    closer.join(30)
    assert not closer.is_alive()
    second = open_replica(jobs={})  # the first one's store is closed: read through a fresh replica
    assert second.px.store.operations.get(op.id).status == OperationStatus.SUCCEEDED


def test_an_operation_past_the_grace_period_is_stopped_and_another_replica_finishes_it(
    open_replica: OpenReplica,
) -> None:
    first = open_replica(jobs={})
    toy = Steps()
    first.px.engine.register(toy)
    op = first.px.engine.submit("toy", params={"hold": True})
    assert toy.entered.wait(GATE)
    closer = _closing(first, 0.3)
    time.sleep(1.0)  # the grace period is over: the engine told its runner to stop
    toy.release.set()  # the step ends; the runner stops at its next checkpoint instead of going on
    closer.join(30)
    assert not closer.is_alive()

    second = open_replica(jobs={})
    second.px.engine.register(Steps())
    store = second.px.store
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not store.operations.get(op.id).finished:
        time.sleep(0.1)
    done = store.operations.get(op.id)
    assert done.status == OperationStatus.FAILED  # the toy's recovery rolls back
    messages = [e.message for e in store.operations.events(op.id)]
    assert f"taken over by {second.identity}" in messages
    assert "finish: started" not in messages  # the first runner never went past its checkpoint
