"""One agent replica without its gRPC front: Proximity, metrics, leader election, periodic jobs.

``AgentReplica.open(settings)`` opens ``Proximity.local`` (which migrates the database under a
lock and takes over operations whose runner died), ``start()`` serves the metrics, starts the
per-replica recovery job and competes for the scheduler leadership; ``close()`` shuts down
gracefully: gives up the leadership, lets running operations finish within the grace period and
stops the rest at their next checkpoint (their lease then lets another replica finish them).
``proximity-agent serve`` puts the gRPC server in front of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from proximity_agent.leader import LeaderElection
from proximity_agent.metrics import AgentMetrics
from proximity_agent.scheduler import AgentScheduler, JobFunc
from proximity_agent.settings import AgentSettings
from proximity_sdk._client import Proximity

if TYPE_CHECKING:
    from proximity_sdk.proxmox.client import ProxmoxClient

__all__ = ["AgentReplica", "periodic_jobs"]

log = logging.getLogger(__name__)


def periodic_jobs(px: Proximity, settings: AgentSettings) -> dict[str, tuple[JobFunc, float]]:
    """The leader's jobs: name -> (what it runs, interval in seconds)."""
    return {
        "reconcile": (px.maintenance.reconcile, settings.reconcile_interval_seconds),
        "janitor": (px.maintenance.janitor, settings.janitor_interval_seconds),
        "node-sync": (px.maintenance.sync_nodes, settings.node_sync_interval_seconds),
        "backup-schedules": (px.backups.run_due, settings.backup_schedules_interval_seconds),
        "app-updates": (px.apps.run_due_updates, settings.app_updates_interval_seconds),
    }


class AgentReplica:
    """An agent replica. Build with ``open``; ``start``; ``close`` (or use ``with``)."""

    def __init__(
        self,
        px: Proximity,
        settings: AgentSettings,
        *,
        metrics: AgentMetrics,
        jobs: Mapping[str, tuple[JobFunc, float]] | None = None,
    ) -> None:
        self.px = px
        self.settings = settings
        self.metrics = metrics
        self.identity = px.engine.runner_id
        lease = px.engine.lease.total_seconds()
        metrics.watch_running(lambda: len(px.engine.running()))
        metrics.watch_proxmox(self._proxmox_clients)
        metrics.watch_leftovers(px.maintenance.stuck_leftovers)
        self.scheduler = AgentScheduler(
            px.store.engine.url,
            jobs=periodic_jobs(px, settings) if jobs is None else jobs,
            local_jobs={"recover": (px.engine.recover, settings.effective_recover_interval(lease))},
            metrics=metrics,
        )
        self.leader = LeaderElection(
            px.store.engine.url,
            identity=self.identity,
            name="scheduler",
            check_interval=settings.leader_check_interval_seconds,
            on_elected=self._elected,
            on_lost=self._lost,
        )
        self.listeners: list[Callable[[bool], None]] = []  # told of every leadership change
        self._closed = threading.Event()
        self._started = False

    @classmethod
    def open(
        cls,
        settings: AgentSettings,
        *,
        plugins: Sequence[object] = (),
        jobs: Mapping[str, tuple[JobFunc, float]] | None = None,
    ) -> AgentReplica:
        """Open the agent's Proximity from ``settings``. ``plugins``: extra plugin objects;
        ``jobs``: the leader's jobs instead of ``periodic_jobs`` (tests)."""
        metrics = AgentMetrics()
        px = Proximity.local(
            database_url=settings.database_url,
            secret_key=settings.resolved_secret_key(),
            data_dir=settings.data_dir,
            catalog_paths=settings.catalog_paths,
            plugins=(metrics.plugin, *plugins),
            entry_points=settings.entry_points,
            lease_seconds=settings.lease_seconds,
            node_slots=settings.node_slots,
            catalog_trusted_sources=settings.catalog_trusted_sources,
        )
        try:
            # the agent's Apps only become messages, never changed in place: keep them between reads
            px.store.apps.keep_reads()
            return cls(px, settings, metrics=metrics, jobs=jobs)
        except BaseException:
            px.close()
            raise

    def _proxmox_clients(self) -> Mapping[str, ProxmoxClient]:
        # the pool's current clients; a public accessor on ClientPool would be nicer
        pool = self.px._clients
        with pool._lock:
            return dict(pool._clients)

    def _elected(self) -> None:
        self.scheduler.lead()
        self.metrics.leader.set(1)
        self._tell(True)

    def _lost(self) -> None:
        self.metrics.leader.set(0)
        self.scheduler.follow(timeout=self.settings.shutdown_grace_seconds)
        self._tell(False)

    def _tell(self, leading: bool) -> None:
        for listener in list(self.listeners):
            try:
                listener(leading)
            except Exception:
                log.exception("a leadership listener failed")

    @property
    def is_leader(self) -> bool:
        return self.leader.is_leader

    def start(self) -> None:
        """Serve the metrics (when a port is set), start recovery, compete for leadership."""
        if self._started:
            return
        self._started = True
        if self.settings.metrics_port is not None:
            port = self.metrics.serve(self.settings.metrics_address, self.settings.metrics_port)
            log.info(
                "metrics on http://%s:%d/metrics", self.settings.metrics_address, port, extra={"metrics_port": port}
            )
        self.scheduler.start_local()
        self.leader.start()

    def close(self, *, grace: float | None = None) -> None:
        """Shut down: give up the leadership, let running operations end within ``grace`` seconds
        (default: settings), stop the others at their next checkpoint, close Proximity."""
        if self._closed.is_set():
            return
        self._closed.set()
        budget = self.settings.shutdown_grace_seconds if grace is None else grace
        deadline = time.monotonic() + budget
        self.leader.stop()  # the next leader takes over the periodic jobs now, not after a lease
        self.scheduler.close(timeout=max(0.0, deadline - time.monotonic()))
        engine = self.px.engine
        running = engine.running()
        if running:
            log.info(
                "waiting up to %.0f s for %d running operation(s)", max(0.0, deadline - time.monotonic()), len(running)
            )
        while engine.running() and time.monotonic() < deadline:
            engine.drain(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
        left = engine.running()
        if left:
            log.warning(
                "stopping %d operation(s) at their next checkpoint; another agent finishes them once "
                "their lease expired",
                len(left),
                extra={"operations": left},
            )
        engine.close(wait=False)
        # Proximity.close() waits for the stopped runners to reach their checkpoint: bounded here
        closer = threading.Thread(target=self.px.close, name="proximity-close", daemon=True)
        closer.start()
        closer.join(timeout=max(5.0, deadline - time.monotonic()))
        if closer.is_alive():
            log.warning("an operation did not reach a checkpoint in time; exiting without it")
        self.metrics.close()

    def __enter__(self) -> AgentReplica:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
