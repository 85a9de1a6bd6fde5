"""Prometheus metrics: RPC latency through a real grpc.aio server and channel, operations by kind and
outcome through the lifecycle hooks, Proxmox requests through a real client, all served over HTTP."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from prometheus_client.parser import text_string_to_metric_families

from proximity_agent.metrics import AgentMetrics
from proximity_sdk.errors import OperationFailed
from tests.agent_runtime.conftest import OpenReplica
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.operations._toys import Steps

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"


def _sample(metrics: AgentMetrics, name: str, labels: dict[str, str]) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def _health_calls(metrics: AgentMetrics) -> None:
    server = aio.server(interceptors=[metrics.server_interceptor()])
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await health.set("proximity.v1.AppService", health_pb2.HealthCheckResponse.SERVING)
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(3):
                answer = await stub.Check(health_pb2.HealthCheckRequest(service="proximity.v1.AppService"))
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(aio.AioRpcError) as missing:
                await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            # a server stream, ended by the client after its first message
            watch = stub.Watch(health_pb2.HealthCheckRequest(service="proximity.v1.AppService"))
            first = await watch.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
            await asyncio.sleep(0.2)
    finally:
        await server.stop(1)


def test_rpc_latency_is_recorded_per_method_and_status() -> None:
    metrics = AgentMetrics()
    asyncio.run(_health_calls(metrics))
    ok = {"method": HEALTH_CHECK, "code": "OK"}
    assert _sample(metrics, "proximity_rpc_duration_seconds_count", ok) == 3
    assert 0 < _sample(metrics, "proximity_rpc_duration_seconds_sum", ok) < 5
    assert _sample(metrics, "proximity_rpc_duration_seconds_count", {"method": HEALTH_CHECK, "code": "NOT_FOUND"}) == 1
    watched = [
        sample
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "proximity_rpc_duration_seconds_count" and sample.labels["method"] == HEALTH_WATCH
    ]
    assert len(watched) == 1 and watched[0].value == 1  # the stream was timed to its end, once


def test_operations_are_counted_by_kind_and_outcome(open_replica: OpenReplica) -> None:
    replica = open_replica(jobs={})
    replica.px.engine.register(Steps())
    replica.px.engine.submit("toy").wait(timeout=30)
    with pytest.raises(OperationFailed):
        replica.px.engine.submit("toy", params={"fail_at": "create"}).wait(timeout=30)
    metrics = replica.metrics
    deadline = time.monotonic() + 5  # the listener runs right after the operation's row is final
    while time.monotonic() < deadline and not _sample(
        metrics, "proximity_operations_total", {"kind": "toy", "outcome": "failed"}
    ):
        time.sleep(0.05)
    assert _sample(metrics, "proximity_operations_total", {"kind": "toy", "outcome": "succeeded"}) == 1
    assert _sample(metrics, "proximity_operations_total", {"kind": "toy", "outcome": "failed"}) == 1
    assert _sample(metrics, "proximity_operations_running", {}) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_endpoint_serves_proxmox_requests_and_leadership(
    open_replica: OpenReplica, pve: HarnessPve, pve_ca: str
) -> None:
    replica = open_replica(jobs={}, metrics_port=0, metrics_address="127.0.0.1")
    assert replica.leader.wait_until(True, 10)
    host = replica.px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca)
    report = replica.px.maintenance.sync_nodes()
    assert report.hosts[0].ok, report

    body = urllib.request.urlopen(f"http://127.0.0.1:{replica.metrics.port}/metrics", timeout=10).read().decode()
    families: dict[str, Any] = {f.name: f for f in text_string_to_metric_families(body)}
    [requests] = [s for s in families["proximity_proxmox_requests"].samples if s.name.endswith("_total")]
    assert requests.labels == {"host_id": host.id}
    assert 1 <= requests.value <= len(pve.recorded)  # what the fake received (hosts.add may use its own client)
    [leader] = families["proximity_scheduler_leader"].samples
    assert leader.value == 1
    # counts survive the client being replaced (the host changed): the counter never goes down
    before = requests.value
    replica.px._clients.forget(host.id)
    replica.px.maintenance.sync_nodes()
    again = urllib.request.urlopen(f"http://127.0.0.1:{replica.metrics.port}/metrics", timeout=10).read().decode()
    [after] = [
        s
        for f in text_string_to_metric_families(again)
        if f.name == "proximity_proxmox_requests"
        for s in f.samples
        if s.name.endswith("_total")
    ]
    assert after.value > before
