"""``proximity-agent serve``: the agent replica with the gRPC server in front, until SIGTERM/SIGINT.

Shutdown order (graceful): stop accepting calls and give the ones in flight a few seconds
(``server.stop(grace)``), give up the scheduler leadership (another agent takes the periodic jobs
at once), let running operations end within ``shutdown_grace_seconds`` and stop the rest at
their next checkpoint, close Proximity. A second signal during shutdown exits at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal

from proximity_agent.logs import configure_logging
from proximity_agent.replica import AgentReplica
from proximity_agent.server import AgentServer, ServerOptions, build_server
from proximity_agent.settings import AgentSettings

__all__ = ["serve", "settle_heap"]

log = logging.getLogger("proximity_agent")

# how long calls in flight (a WatchOperation stream, a slow list) get before they are cut
_RPC_GRACE_SECONDS = 5.0


def _server_for(replica: AgentReplica) -> tuple[AgentServer, int]:
    settings = replica.settings
    options = ServerOptions(
        address=settings.bind_address,
        port=settings.port,
        tls_cert=str(settings.tls_cert_file) if settings.tls_cert_file else None,
        tls_key=str(settings.tls_key_file) if settings.tls_key_file else None,
        client_ca=str(settings.tls_client_ca_file) if settings.tls_client_ca_file else None,
        allow_plaintext=settings.allow_plaintext,
        long_workers=settings.rpc_long_workers,
        long_calls_per_user=settings.rpc_long_calls_per_user,
        backup_schedules_per_user=settings.backup_schedules_per_user,
    )
    # the RPC latency interceptor goes first, so it sees the status the auth interceptor sets
    return build_server(options, px=replica.px, interceptors=[replica.metrics.server_interceptor()])


def settle_heap() -> int:
    """Move everything alive now (modules, the store, the server: what lives as long as the
    process) out of the collector's sight; returns how many objects.

    A full collection walks every tracked object: with the ~130,000 of a started agent, one took
    80-150 ms in the middle of a listing, the worst latency of every call then in flight
    (bench/agent.py). Frozen objects are still freed by reference counting; only cycles among
    them would stay, and start-up garbage is collected first."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def serve(settings: AgentSettings) -> int:
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    log.info("starting proximity-agent", extra={"settings": settings.public(), "pid": os.getpid()})
    replica = AgentReplica.open(settings)
    try:
        replica.start()
        asyncio.run(_serve(replica))
    finally:
        replica.close()
    log.info("proximity-agent stopped")
    return 0


async def _serve(replica: AgentReplica) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def _signalled(signum: int) -> None:
        if stopping.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(130)
        log.info("%s: shutting down", signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _signalled, signum)
    server, port = _server_for(replica)
    await server.start()
    frozen = settle_heap()
    log.info(
        "serving gRPC on %s:%d",
        replica.settings.bind_address,
        port,
        extra={"port": port, "agent": replica.identity, "frozen_objects": frozen},
    )
    await stopping.wait()
    await server.stop(_RPC_GRACE_SECONDS)
