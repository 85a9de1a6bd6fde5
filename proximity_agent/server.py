"""The agent's gRPC server: every service of ``proximity.v1``, health checking and reflection,
on grpc.aio (stream watchers cost no thread), TLS and optional client certificates.

::

    server, port = build_server(ServerOptions(port=0), px=Proximity.local(...))
    await server.start()
    ...
    await server.stop(grace=10)   # health says NOT_SERVING first, then calls drain

``build_server`` must be called inside the event loop that will run the server.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import BaseModel, ConfigDict, Field, model_validator

from proximity_agent.auth import AuthInterceptor
from proximity_agent.servicers import add_all
from proximity_agent.servicers._base import Backend
from proximity_sdk._client import Proximity
from proximity_sdk.errors import ValidationError

__all__ = ["AgentServer", "ServerOptions", "build_server"]

log = logging.getLogger("proximity_agent.server")

_PEM = "-----BEGIN "


class ServerOptions(BaseModel):
    """How the server listens. ``tls_cert``/``tls_key``/``client_ca`` are PEM text or paths to
    PEM files; with ``client_ca`` every client must present a certificate it signed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=50051, ge=0, le=65535, description="0: any free port (tests)")
    tls_cert: str | None = None
    tls_key: str | None = None
    client_ca: str | None = None
    max_workers: int = Field(default=16, ge=1, le=512, description="threads for the SDK's quick blocking calls")
    long_workers: int = Field(
        default=16, ge=1, le=512, description="threads for long calls (logs, update checks with pull, ...)"
    )
    long_calls_per_user: int = Field(
        default=4, ge=1, le=512, description="long calls one user may hold at once; more: RESOURCE_EXHAUSTED"
    )
    backup_schedules_per_user: int = Field(
        default=20, ge=0, le=100_000, description="backup schedules a member may have"
    )
    allow_plaintext: bool = Field(
        default=False, description="serve without TLS on an address other than loopback (logged)"
    )
    watch_poll_seconds: float = Field(default=0.1, gt=0, le=10, description="WatchOperation poll interval")
    max_message_mb: int = Field(default=16, ge=1, le=256)

    @model_validator(mode="after")
    def _tls_pairs(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give tls_cert and tls_key together")
        if self.client_ca is not None and self.tls_cert is None:
            raise ValueError("client_ca (client certificates) needs TLS: give tls_cert and tls_key too")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def _pem(value: str, field: str) -> bytes:
    if value.lstrip().startswith(_PEM):
        return value.encode()
    path = Path(value).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"{field}: cannot read {str(path)!r}: {exc.strerror or exc}", field=field) from None
    if _PEM.encode() not in data:
        raise ValidationError(f"{field}: {str(path)!r} holds no PEM data", field=field)
    return data


def _loopback(address: str) -> bool:
    """Whether only this machine can reach ``address`` (a Unix socket, localhost, 127/8, ::1)."""
    text = address.strip()
    if text.startswith(("unix:", "unix-abstract:")) or text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


class _Health(health.aio.HealthServicer):  # type: ignore[misc]
    """The stock health servicer, with our services SERVING from the start (its ``set`` is a
    coroutine, and the server is built before the loop runs it)."""

    def __init__(self, services: tuple[str, ...]) -> None:
        super().__init__()
        for name in services:
            self._server_status[name] = health_pb2.HealthCheckResponse.SERVING


class AgentServer:
    """A built server: ``start()``, ``stop(grace)``, ``wait_for_termination()``."""

    def __init__(
        self, server: aio.Server, backend: Backend, health_servicer: _Health, services: tuple[str, ...], port: int
    ) -> None:
        self.grpc_server = server
        self.backend = backend
        self.health = health_servicer
        self.services = services
        self.port = port

    async def start(self) -> None:
        await self.grpc_server.start()
        log.info("agent serving %d services on port %d", len(self.services), self.port)

    async def stop(self, grace: float | None = None) -> None:
        """Health answers NOT_SERVING, new calls are refused, running calls get ``grace`` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.grpc_server.stop(grace)
        self.backend.close()

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        return await self.grpc_server.wait_for_termination(timeout)


def build_server(
    options: ServerOptions, *, px: Proximity, interceptors: Sequence[aio.ServerInterceptor] = ()
) -> tuple[AgentServer, int]:
    """The agent's server bound to ``options.address:options.port`` (not started); returns it and
    the port actually bound (``port=0`` picks a free one). ``interceptors`` run before the auth
    interceptor (so a metrics interceptor sees the final status of every call)."""
    target = f"{options.address}:{options.port}"
    if not options.tls and not _loopback(options.address):
        if not options.allow_plaintext:
            raise ValidationError(
                f"refusing to serve plaintext gRPC on {target}: bearer tokens would cross the network unencrypted",
                field="tls_cert",
                hint="Give tls_cert_file and tls_key_file, bind to 127.0.0.1, or (behind a TLS-terminating proxy "
                "on a trusted network) set allow_plaintext = true",
            )
        log.warning(
            "serving PLAINTEXT gRPC on %s (allow_plaintext): tokens and secrets cross the network unencrypted",
            target,
            extra={"plaintext": True, "address": options.address},
        )
    backend = Backend(
        px,
        max_workers=options.max_workers,
        watch_poll_seconds=options.watch_poll_seconds,
        long_workers=options.long_workers,
        long_calls_per_user=options.long_calls_per_user,
        backup_schedules_per_user=options.backup_schedules_per_user,
    )
    limit = options.max_message_mb * 1024 * 1024
    server = aio.server(
        interceptors=[*interceptors, AuthInterceptor(backend.authenticate)],
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
    )
    services = add_all(server, backend)
    health_servicer = _Health(services)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*services, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    if options.tls:
        assert options.tls_cert is not None and options.tls_key is not None
        client_ca = _pem(options.client_ca, "client_ca") if options.client_ca is not None else None
        credentials: Any = grpc.ssl_server_credentials(
            [(_pem(options.tls_key, "tls_key"), _pem(options.tls_cert, "tls_cert"))],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )
        port = server.add_secure_port(target, credentials)
    else:
        port = server.add_insecure_port(target)
    if port == 0:
        backend.close()
        raise ValidationError(
            f"cannot listen on {target}",
            field="port",
            hint="Is another process using the port, or is the address not local?",
        )
    return AgentServer(server, backend, health_servicer, services, port), port
