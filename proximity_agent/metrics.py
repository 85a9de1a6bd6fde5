"""Prometheus metrics of one agent, served over HTTP (``/metrics``) by prometheus_client.

``AgentMetrics`` owns a registry of its own (several agents in one test process do not mix) with:

- ``proximity_operations_total{kind,outcome}``: operations this agent finished (succeeded,
  failed, cancelled), counted by a lifecycle-listener plugin (``metrics.plugin``) registered in
  the agent's Proximity; ``proximity_operations_running``: operations running in this process;
- ``proximity_rpc_duration_seconds{method,code}``: gRPC latency, by ``metrics.server_interceptor()``
  (a ``grpc.aio.ServerInterceptor``: install it first, so it sees the status other interceptors set);
- ``proximity_proxmox_requests_total{host_id}``: HTTP requests sent to each Proxmox host (logins
  included), read from the API clients at scrape time;
- ``proximity_janitor_stuck_leftovers``: ended operations whose failed rollback the janitor could
  not finish after several attempts (or will not finish alone), read from the store at scrape
  time: alert when it stays above 0 (see ``operations/janitor.py``);
- ``proximity_scheduler_leader``, ``proximity_scheduled_jobs_total{job,outcome}``,
  ``proximity_scheduled_job_duration_seconds{job}``: the periodic jobs.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from proximity_sdk.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from proximity_sdk.models.app import App
    from proximity_sdk.models.operation import Operation
    from proximity_sdk.proxmox.client import ProxmoxClient

__all__ = ["AgentMetrics", "ProxmoxRequestsCollector", "RpcMetricsInterceptor"]

# gRPC latency buckets: GetApp should answer in milliseconds, a deploy's Watch lasts minutes
_RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0)


class _OperationsListener:
    """A lifecycle-listener plugin: counts the outcome of every operation of this Proximity."""

    def __init__(self, finished: Counter) -> None:
        self._finished = finished

    @hookimpl
    def proximity_operation_after(self, operation: Operation, app: App | None) -> None:
        self._finished.labels(kind=operation.kind, outcome="succeeded").inc()

    @hookimpl
    def proximity_operation_error(self, operation: Operation, app: App | None, error: BaseException) -> None:
        self._finished.labels(kind=operation.kind, outcome=operation.status.value).inc()


class ProxmoxRequestsCollector(Collector):
    """``proximity_proxmox_requests_total{host_id}`` from the clients' own request counters.

    A client is replaced when its host changes; the counts it had are kept (as of the last
    scrape), so the series only grows, as a Prometheus counter must."""

    def __init__(self, clients: Callable[[], Mapping[str, ProxmoxClient]]) -> None:
        self._clients = clients
        self._seen: weakref.WeakKeyDictionary[ProxmoxClient, int] = weakref.WeakKeyDictionary()
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "proximity_proxmox_requests", "HTTP requests sent to Proxmox (logins included)", labels=["host_id"]
        )
        with self._lock:
            for host_id, client in dict(self._clients()).items():
                count = client.request_count
                self._totals[host_id] = self._totals.get(host_id, 0) + count - self._seen.get(client, 0)
                self._seen[client] = count
            for host_id, total in sorted(self._totals.items()):
                family.add_metric([host_id], total)
        yield family


class RpcMetricsInterceptor(aio.ServerInterceptor):
    """Times every RPC into ``proximity_rpc_duration_seconds{method,code}``. Streams are timed to
    their end. The code is the status the call ended with (OK unless set or aborted)."""

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: grpc answers UNIMPLEMENTED itself
            return handler
        method = str(handler_call_details.method)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(handler.stream_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _observe(self, method: str, context: Any, began: float, error: BaseException | None) -> None:
        code = _status_of(context, error)
        self._histogram.labels(method=method, code=code).observe(time.perf_counter() - began)

    def _unary(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        if not inspect.iscoroutinefunction(behaviour):  # a sync handler runs in grpc's thread pool

            def timed_sync(request: Any, context: Any) -> Any:
                began, error = time.perf_counter(), None
                try:
                    return behaviour(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    self._observe(method, context, began, error)

            return timed_sync

        async def timed(request: Any, context: Any) -> Any:
            began, error = time.perf_counter(), None
            try:
                return await behaviour(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._observe(method, context, began, error)

        return timed

    def _stream(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behaviour):

            async def timed_stream(request: Any, context: Any) -> AsyncIterator[Any]:
                began, error = time.perf_counter(), None
                try:
                    async for item in behaviour(request, context):
                        yield item
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    self._observe(method, context, began, error)

            return timed_stream
        if inspect.iscoroutinefunction(behaviour):  # writes with context.write()
            return self._unary(behaviour, method)

        def timed_iter(request: Any, context: Any) -> Iterator[Any]:
            began, error = time.perf_counter(), None
            try:
                yield from behaviour(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._observe(method, context, began, error)

        return timed_iter


def _status_of(context: Any, error: BaseException | None) -> str:
    code = None
    with contextlib.suppress(Exception):  # a context without code(): judge by the exception
        code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # grpc.aio may hand back the raw numeric code
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status.name
    if error is None:
        return "OK"
    if isinstance(error, GeneratorExit | StopAsyncIteration):  # the client went away mid-stream
        return "CANCELLED"
    return "UNKNOWN"


class AgentMetrics:
    """The metrics of one agent. ``serve(address, port)`` exposes them; ``close()`` stops that."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.operations = Counter(
            "proximity_operations", "Operations finished by this agent", ["kind", "outcome"], registry=self.registry
        )
        self.running = Gauge(
            "proximity_operations_running", "Operations running in this agent process", registry=self.registry
        )
        self.rpc_duration = Histogram(
            "proximity_rpc_duration_seconds",
            "gRPC call latency",
            ["method", "code"],
            buckets=_RPC_BUCKETS,
            registry=self.registry,
        )
        self.leader = Gauge(
            "proximity_scheduler_leader", "1 while this agent runs the periodic jobs", registry=self.registry
        )
        self.job_runs = Counter(
            "proximity_scheduled_jobs", "Periodic job runs", ["job", "outcome"], registry=self.registry
        )
        self.job_duration = Histogram(
            "proximity_scheduled_job_duration_seconds", "Periodic job duration", ["job"], registry=self.registry
        )
        self.stuck_leftovers = Gauge(
            "proximity_janitor_stuck_leftovers",
            "Failed operations whose leftovers the janitor keeps failing to clean up",
            registry=self.registry,
        )
        self.plugin = _OperationsListener(self.operations)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def server_interceptor(self) -> RpcMetricsInterceptor:
        return RpcMetricsInterceptor(self.rpc_duration)

    def watch_proxmox(self, clients: Callable[[], Mapping[str, ProxmoxClient]]) -> None:
        """Count Proxmox requests of these clients (host id -> client, read at each scrape)."""
        self.registry.register(ProxmoxRequestsCollector(clients))

    def watch_running(self, running: Callable[[], int]) -> None:
        self.running.set_function(lambda: float(running()))

    def watch_leftovers(self, stuck: Callable[[], int]) -> None:
        def read() -> float:
            try:
                return float(stuck())
            except Exception:  # the database blinks: no value rather than a failed scrape
                return float("nan")

        self.stuck_leftovers.set_function(read)

    def job_finished(self, job: str, *, ok: bool, seconds: float) -> None:
        self.job_runs.labels(job=job, outcome="ok" if ok else "error").inc()
        self.job_duration.labels(job=job).observe(seconds)

    def serve(self, address: str, port: int) -> int:
        """Serve ``/metrics`` on ``address:port`` (0: any free port); returns the port."""
        if self._server is not None:
            raise RuntimeError("the metrics endpoint is already served")
        self._server, self._thread = start_http_server(port, addr=address, registry=self.registry)
        return int(self._server.server_port)

    @property
    def port(self) -> int | None:
        return int(self._server.server_port) if self._server is not None else None

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
