"""Shared by the benches: the test harness (fakepve over HTTPS + the real sshd with the `pct`
stand-in) set up from a plain script instead of pytest fixtures, and small statistics helpers.

``lab()`` does what the ``pve``/``sshd``/``standin_state``/``ssh_access`` fixtures do together:
a throwaway PKI, an sshd whose state link points at a fresh stand-in state directory, a
HarnessPve served on 127.0.0.1 and an :class:`SshAccess` for the sshd (nodes -> 127.0.0.1).

Where our time goes: :class:`Clock` + ``instrument(px, clock)`` time our collaborators (store
repository methods, Proxmox HTTP, node shell, the operation worker) as exclusive sections, wall
and CPU; ``profile_workers`` runs cProfile in the operation worker threads; ``store_costs``
measures single store calls next to plain sqlite3.
"""

from __future__ import annotations

import cProfile
import io
import math
import os
import pstats
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from proximity_sdk._client import Proximity  # noqa: E402
from proximity_sdk.models.ssh import SshAccess  # noqa: E402
from proximity_sdk.proxmox.client import ProxmoxClient  # noqa: E402
from proximity_sdk.proxmox.shell import NodeShell  # noqa: E402
from proximity_sdk.store import Store  # noqa: E402
from tests.harness.pve import HarnessPve, make_pki, serve_pve  # noqa: E402
from tests.harness.sshd import NODES, Sshd, StandinState, start_sshd  # noqa: E402

__all__ = [
    "Clock",
    "Lab",
    "instrument",
    "lab",
    "median",
    "percentile",
    "profile_workers",
    "section_cost_us",
    "store_costs",
]

SHELL_METHODS = ("run", "pct_exec", "pct_push", "pct_pull")
REPOS = ("operations", "apps", "settings", "reservations", "hosts")


@dataclass(frozen=True)
class Lab:
    """A running harness: the fake PVE, the CA that verifies it, the sshd and its stand-in state."""

    pve: HarnessPve
    ca_file: str
    sshd: Sshd
    state: StandinState
    ssh: SshAccess
    workdir: Path


def _point_state(sshd: Sshd, target: Path) -> None:
    # the same atomic re-pointing the standin_state fixture does: a new link renamed over the old
    fresh = sshd.workdir / f"state.{os.getpid()}.new"
    if fresh.is_symlink() or fresh.exists():
        fresh.unlink()
    fresh.symlink_to(target)
    os.replace(fresh, sshd.state_link)


@contextmanager
def lab(*, time_scale: float = 0.0) -> Iterator[Lab]:
    """Everything started for the block and stopped after it (temporary files removed)."""
    with tempfile.TemporaryDirectory(prefix="proximity-bench-") as tmp:
        workdir = Path(tmp)
        cert, key = make_pki(workdir)
        sshd = start_sshd(workdir / "sshd")
        try:
            state_dir = workdir / "standin-state"
            state_dir.mkdir()
            _point_state(sshd, state_dir)
            access = sshd.access(NODES)
            with serve_pve(cert, key, time_scale=time_scale) as (pve, _served):
                yield Lab(pve=pve, ca_file=cert, sshd=sshd, state=StandinState(state_dir), ssh=access, workdir=workdir)
        finally:
            sshd.stop()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p90 of 10 samples is the 9th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])


# ------------------------------------------------------------------------ where our time goes


class Clock:
    """Exclusive time (and calls) per category, for the caller while it submits and for the
    operation workers. Nested sections pause their parent, so nothing is counted twice."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.caller_active = False
        self.times: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.cpu: dict[tuple[str, str], float] = defaultdict(float)
        self.worker_span: tuple[float, float] | None = None
        self.worker_cpu = 0.0  # CPU seconds of the operation worker thread (robust to a busy machine)

    def reset(self) -> None:
        with self._lock:
            self.times.clear()
            self.calls.clear()
            self.cpu.clear()
            self.worker_span = None
            self.worker_cpu = 0.0

    def _role(self) -> str | None:
        thread = threading.current_thread()
        if thread is threading.main_thread():
            return "caller" if self.caller_active else None
        return "worker" if thread.name.startswith("proximity-op") else None

    @contextmanager
    def section(self, category: str) -> Iterator[None]:
        # each frame: [wall, cpu] of the sections nested in this one
        stack: list[list[float]] = self._local.__dict__.setdefault("stack", [])
        start, cpu = time.perf_counter(), time.thread_time()
        stack.append([0.0, 0.0])
        try:
            yield
        finally:
            elapsed, used = time.perf_counter() - start, time.thread_time() - cpu
            nested = stack.pop()
            if stack:
                stack[-1][0] += elapsed
                stack[-1][1] += used
            role = self._role()
            if role is not None:
                with self._lock:
                    self.times[(role, category)] += elapsed - nested[0]
                    self.cpu[(role, category)] += used - nested[1]
                    self.calls[(role, category)] += 1

    def wrap(self, category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.section(category):
                return fn(*args, **kwargs)

        return timed


def instrument(px: Proximity, clock: Clock) -> Callable[[], None]:
    """Wrap our collaborators with timing sections; returns the undo. Instrumentation only: the
    wrapped functions run unchanged."""
    undo: list[Callable[[], None]] = []

    def patch(owner: Any, name: str, replacement: Any) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        setattr(owner, name, replacement)
        undo.append(lambda: setattr(owner, name, original))

    for name in SHELL_METHODS:
        original = getattr(NodeShell, name)

        def shell_call(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if kwargs.get("on_output") is not None:
                kwargs["on_output"] = clock.wrap("shell output callback", kwargs["on_output"])
            with clock.section("node shell"):
                return _original(*args, **kwargs)

        patch(NodeShell, name, shell_call)
    patch(ProxmoxClient, "request", clock.wrap("proxmox http", ProxmoxClient.request))
    for repo_name in REPOS:
        repo = getattr(px.store, repo_name)
        for attr in dir(type(repo)):
            if attr.startswith("_") or not callable(getattr(repo, attr)):
                continue
            patch(repo, attr, clock.wrap(f"store.{repo_name}.{attr}", getattr(repo, attr)))
    execute = px.engine._execute

    def worker(op_id: str, resume: bool, lost: threading.Event) -> None:
        began, cpu = time.perf_counter(), time.thread_time()
        try:
            with clock.section("engine and operation code"):
                execute(op_id, resume, lost)
        finally:
            clock.worker_span = (began, time.perf_counter())
            clock.worker_cpu = time.thread_time() - cpu

    patch(px.engine, "_execute", worker)

    def restore() -> None:
        for step in reversed(undo):
            step()

    return restore


def _per_call_ms(fn: Callable[[], object], count: int) -> float:
    fn()
    began = time.perf_counter()
    for _ in range(count):
        fn()
    return round((time.perf_counter() - began) / count * 1000, 3)


def store_costs(store: Store, op_id: str, workdir: Path, *, count: int = 200) -> dict[str, float]:
    """Per-call cost (ms, one thread, nothing else running) of the store calls an operation makes
    most, next to plain sqlite3 doing what append_event asks of the database (same pragmas).
    Appends ``count + 1`` events to ``op_id``: use a throwaway store."""
    costs = {
        "operations.append_event": _per_call_ms(lambda: store.operations.append_event(op_id, "x"), count),
        "operations.control": _per_call_ms(lambda: store.operations.control(op_id, "bench"), count),
        "operations.get": _per_call_ms(lambda: store.operations.get(op_id), count),
        "settings.get": _per_call_ms(store.settings.get, count),
    }
    db = sqlite3.connect(workdir / "raw-sqlite.db", isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE ops (id TEXT PRIMARY KEY)")
        db.execute("CREATE TABLE events (op TEXT, seq INTEGER, time TEXT, message TEXT, PRIMARY KEY (op, seq))")
        db.execute("INSERT INTO ops VALUES ('op')")

        def append() -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("SELECT id FROM ops WHERE id = 'op'").fetchone()
            last = db.execute("SELECT max(seq) FROM events WHERE op = 'op'").fetchone()[0] or 0
            db.execute("INSERT INTO events VALUES ('op', ?, ?, 'x')", (last + 1, time.time()))
            db.execute("COMMIT")

        costs["plain sqlite3: the same 3 statements in one transaction"] = _per_call_ms(append, count)
    finally:
        db.close()
    return costs


def profile_workers(px: Proximity, drive: Callable[[], None], *, per: int, what: str, top: int) -> dict[str, Any]:
    """cProfile of the operation worker threads while ``drive()`` runs operations; times are
    divided by ``per`` (e.g. ms per deploy). Profiling slows the code: measure before, not during."""
    profiler = cProfile.Profile()
    engine_execute = px.engine._execute

    def profiled(op_id: str, resume: bool, lost: threading.Event) -> None:
        profiler.enable()  # cProfile follows the thread that enabled it: the worker's own calls
        try:
            engine_execute(op_id, resume, lost)
        finally:
            profiler.disable()

    px.engine._execute = profiled  # type: ignore[method-assign]
    try:
        drive()
    finally:
        px.engine._execute = engine_execute  # type: ignore[method-assign]
    stats = pstats.Stats(profiler)
    rows = []
    for (path, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(path).name}:{line}({func})",
                "path": path,
                "calls": ncalls,
                "tottime_ms": round(tottime * 1000 / per, 2),
                "cumtime_ms": round(cumtime * 1000 / per, 2),
            }
        )
    ours_code = [r for r in rows if "proximity_sdk" in r["path"]]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return {
        "what": f"cProfile of the operation workers over {what}; times in ms divided by {per}",
        "top_tottime": sorted(rows, key=lambda r: -r["tottime_ms"])[:top],
        "top_cumtime_proximity_sdk": sorted(ours_code, key=lambda r: -r["cumtime_ms"])[:top],
        "pstats_text": text.getvalue().splitlines()[: top + 12],
    }


def section_cost_us(count: int = 20000) -> float:
    """What one timing section adds to a call (µs): the instrumentation's own share of our time."""
    clock = Clock()
    timed = clock.wrap("x", lambda: None)
    plain = _per_call_ms(lambda: None, count)
    return round((_per_call_ms(timed, count) - plain) * 1000, 2)
