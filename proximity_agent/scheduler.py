"""The agent's periodic jobs, on APScheduler 3.x.

Two schedulers:

- the **shared** one (leader only): reconcile, janitor, node sync, the backup schedules and the
  automatic app updates, as
  interval jobs in APScheduler's ``SQLAlchemyJobStore`` (table ``proximity_agent_jobs`` in the
  agent's database). It runs only while this agent holds the leadership (``lead()`` /
  ``follow()``, called by ``LeaderElection``): APScheduler 3 must never share a job store
  between running schedulers. A new leader keeps the stored jobs whose interval is unchanged,
  with their next run time (a job the dead leader owed runs at once), and rewrites the others.
- the **local** one (every agent): jobs each replica runs for itself, in memory; the agent uses
  it to take over operations whose runner died (``engine.recover()``) on every replica.

The stored jobs are only triggers. What a job does is read from our own tables each time: the
backup-schedules job calls ``px.backups.run_due()``, which finds due schedules in the
``backup_schedules`` table and claims each run there, so our table stays the source of truth.

A stored job names a module-level function and plain arguments (APScheduler pickles them); the
function finds the scheduler that leads in this process through a registry keyed by database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import URL

from proximity_sdk.store._engine import create_store_engine

if TYPE_CHECKING:
    from proximity_agent.metrics import AgentMetrics

__all__ = ["JOBS_TABLE", "SHARED_JOBS", "AgentScheduler", "JobFunc", "JobRun", "StoredJob", "run_job"]

log = logging.getLogger(__name__)

JOBS_TABLE = "proximity_agent_jobs"
SHARED_JOBS = ("reconcile", "janitor", "node-sync", "backup-schedules", "app-updates")
_JOB_FUNC = f"{__name__}:run_job"
_JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}

JobFunc = Callable[[], object]

# database key -> the scheduler leading on it in this process (set by lead(), cleared by follow())
_LEADING: dict[str, AgentScheduler] = {}
_LEADING_LOCK = threading.Lock()


def run_job(database: str, job: str) -> None:
    """What every stored job calls: run ``job`` in the scheduler that leads on ``database`` here."""
    with _LEADING_LOCK:
        scheduler = _LEADING.get(database)
    if scheduler is None or not scheduler.leading:
        log.warning("periodic job %s fired in a process that does not lead; skipped", job)
        return
    scheduler.run(job)


@dataclass(frozen=True)
class JobRun:
    """The last run of a periodic job in this process."""

    job: str
    started_at: datetime
    seconds: float
    ok: bool
    error: str | None = None
    count: int = 1  # runs of this job in this process so far


@dataclass(frozen=True)
class StoredJob:
    """A job as the shared job store holds it."""

    id: str
    interval_seconds: float | None
    next_run_time: datetime | None


def _interval(trigger: object) -> float | None:
    return trigger.interval.total_seconds() if isinstance(trigger, IntervalTrigger) else None


class AgentScheduler:
    """The periodic jobs of one agent.

    ``url``: the agent's database (the job store lives there). ``jobs``: shared job name ->
    (callable, interval in seconds; 0 or less: off); names are those of ``SHARED_JOBS`` or any
    other. ``local_jobs``: the same, run by every replica. ``metrics``: where job runs are counted.
    """

    def __init__(
        self,
        url: URL,
        *,
        jobs: Mapping[str, tuple[JobFunc, float]],
        local_jobs: Mapping[str, tuple[JobFunc, float]] | None = None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self._url = url
        self.database = url.render_as_string(hide_password=True)
        self._jobs = dict(jobs)
        self._local_jobs = dict(local_jobs or {})
        self._metrics = metrics
        self._shared: BackgroundScheduler | None = None
        self._local: BackgroundScheduler | None = None
        self._guard = threading.Lock()
        self._idle = threading.Condition()
        self._active = 0
        self._runs: dict[str, JobRun] = {}

    # every replica ----------------------------------------------------------------------------------

    def start_local(self) -> None:
        """Start the jobs every replica runs for itself."""
        jobs = {name: spec for name, spec in self._local_jobs.items() if spec[1] > 0}
        if not jobs or self._local is not None:
            return
        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults=_JOB_DEFAULTS,
            executors={"default": ThreadPoolExecutor(len(jobs))},
            timezone=UTC,
        )
        for name, (_func, interval) in jobs.items():
            scheduler.add_job(
                self.run, IntervalTrigger(seconds=interval, timezone=UTC), args=(name,), id=name, name=name
            )
        scheduler.start()
        self._local = scheduler

    # the leader's jobs ------------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self._shared is not None

    def lead(self) -> None:
        """Start running the shared jobs (this agent was elected)."""
        with self._guard:
            if self._shared is not None:
                return
            with _LEADING_LOCK:
                other = _LEADING.get(self.database)
                if other is not None and other is not self and other.leading:
                    raise RuntimeError(f"another scheduler of this process already leads on {self.database}")
                _LEADING[self.database] = self
            store = SQLAlchemyJobStore(engine=create_store_engine(self._url), tablename=JOBS_TABLE)
            scheduler = BackgroundScheduler(
                jobstores={"default": store},
                job_defaults=_JOB_DEFAULTS,
                executors={"default": ThreadPoolExecutor(max(1, len(self._jobs)))},
                timezone=UTC,
            )
            try:
                scheduler.start(paused=True)
                self._shared = scheduler
                self._sync_stored_jobs(scheduler)
                scheduler.resume()
            except BaseException:
                self._shared = None
                self._unregister()
                scheduler.shutdown(wait=False)
                raise
        log.info("running the periodic jobs", extra={"jobs": sorted(self._wanted())})

    def _wanted(self) -> dict[str, float]:
        return {name: float(interval) for name, (_f, interval) in self._jobs.items() if interval > 0}

    def _sync_stored_jobs(self, scheduler: BackgroundScheduler) -> None:
        wanted = self._wanted()
        for job in scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        for name, interval in wanted.items():
            existing = scheduler.get_job(name)
            if (
                existing is not None
                and existing.func_ref == _JOB_FUNC
                and tuple(existing.args) == (self.database, name)
                and _interval(existing.trigger) == interval
            ):
                continue  # kept with its next run time: what a dead leader owed runs now
            scheduler.add_job(
                _JOB_FUNC,
                IntervalTrigger(seconds=interval, timezone=UTC),
                args=(self.database, name),
                id=name,
                name=name,
                replace_existing=True,
            )

    def follow(self, *, timeout: float = 30.0) -> None:
        """Stop running the shared jobs (leadership lost or given up); waits up to ``timeout`` for a
        job still running to end."""
        with self._guard:
            scheduler, self._shared = self._shared, None
            if scheduler is None:
                return
            self._unregister()
        scheduler.shutdown(wait=False)
        if not self.wait_idle(timeout):
            log.warning("a periodic job is still running after %.0f s; leaving it to finish", timeout)
        log.info("stopped running the periodic jobs")

    def _unregister(self) -> None:
        with _LEADING_LOCK:
            if _LEADING.get(self.database) is self:
                del _LEADING[self.database]

    def stored_jobs(self) -> list[StoredJob]:
        """The jobs in the shared job store (read through the running scheduler; empty when not leading)."""
        scheduler = self._shared
        if scheduler is None:
            return []
        return [StoredJob(job.id, _interval(job.trigger), job.next_run_time) for job in scheduler.get_jobs()]

    # running a job ----------------------------------------------------------------------------------

    def run(self, job: str) -> None:
        """Run one job now, in this thread, recording the outcome (never raises)."""
        spec = self._jobs.get(job) or self._local_jobs.get(job)
        if spec is None:
            log.warning("unknown periodic job %s; skipped", job)
            return
        with self._idle:
            self._active += 1
        started, began = datetime.now(UTC), time.perf_counter()
        error: str | None = None
        try:
            result = spec[0]()
        except Exception as exc:  # one failed run must not stop the schedule; the next run tries again
            error = f"{type(exc).__name__}: {exc}"
            log.exception("periodic job %s failed", job, extra={"job": job})
        else:
            log.log(
                logging.DEBUG if job == "recover" else logging.INFO,
                "periodic job %s done",
                job,
                extra={"job": job, "seconds": round(time.perf_counter() - began, 3), **_summary(result)},
            )
        finally:
            seconds = time.perf_counter() - began
            with self._idle:
                previous = self._runs.get(job)
                self._runs[job] = JobRun(
                    job, started, seconds, error is None, error, (previous.count if previous else 0) + 1
                )
                self._active -= 1
                self._idle.notify_all()
            if self._metrics is not None:
                self._metrics.job_finished(job, ok=error is None, seconds=seconds)

    def runs(self) -> dict[str, JobRun]:
        """The last run of each job in this process."""
        with self._idle:
            return dict(self._runs)

    def wait_runs(self, job: str, count: int, timeout: float) -> bool:
        """Wait until ``job`` has run ``count`` times in this process."""
        with self._idle:
            return self._idle.wait_for(lambda: (run := self._runs.get(job)) is not None and run.count >= count, timeout)

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def close(self, *, timeout: float = 30.0) -> None:
        """Stop both schedulers; wait up to ``timeout`` for running jobs."""
        deadline = time.monotonic() + timeout
        self.follow(timeout=timeout)
        local, self._local = self._local, None
        if local is not None:
            local.shutdown(wait=False)
        self.wait_idle(max(0.0, deadline - time.monotonic()))


def _summary(result: object) -> dict[str, Any]:
    """A few numbers about a job's report, for its log line (never the report itself)."""
    if isinstance(result, list):
        return {"items": len(result)}
    summary: dict[str, Any] = {}
    for name in ("changes", "failed", "resumed", "asked_to_stop", "retired_destroyed", "errors", "hosts"):
        value = getattr(result, name, None)
        if isinstance(value, list):
            summary[name] = len(value)
    return summary
