"""The agent's gRPC server in a process of its own, for ``bench/agent.py`` (not product code).

Opens ``Proximity.local`` on an existing SQLite data directory (seeded by the bench; the Fernet
key comes from ``$PROXIMITY_SECRET_KEY``), builds the server as ``proximity-agent serve`` does
(the RPC metrics interceptor first, the metrics endpoint served) on 127.0.0.1 port 0 and prints
one JSON line per message on stdout: ``{"ready": port}`` first. It then takes JSON commands, one a
line, on stdin:

- ``{"cmd": "operation"}``: record a pending operation with one first event; answers
  ``{"operation": id}``. No Proxmox needed: the bench plays the operation's worker itself;
- ``{"cmd": "events", "op": id, "count": n, "interval": s}``: append ``n`` events at a fixed rate
  from a thread of this process (as an operation worker would), then finish the operation with
  a last event; answers ``{"appended": n, "append_ms": [...]}`` when done;
- ``{"cmd": "profile", "on": true|false}``: cProfile of the event-loop thread and of the pool
  threads running the SDK's blocking calls (Python 3.11 has no all-threads profiler: the pool's
  calls are wrapped). Off answers ``{"profile": {...}}`` with the top functions;
- ``{"cmd": "parts", "token": t, "apps": [ids]}``: what one GetApp is made of, timed here
  without gRPC (ms per call): the token lookup, the app read, the conversion, the pool hop, an
  empty store transaction, and plain sqlite3 doing the same reads (the floor);
- ``{"cmd": "quit"}``: stop gracefully and exit.

Run by the bench:  python bench/_agent_server.py --data-dir DIR [--watch-poll 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import inspect
import io
import json
import pstats
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from proximity_agent._serve import settle_heap  # noqa: E402
from proximity_agent.metrics import AgentMetrics  # noqa: E402
from proximity_agent.server import AgentServer, ServerOptions, build_server  # noqa: E402
from proximity_agent.servicers._base import Backend  # noqa: E402
from proximity_sdk._client import Proximity  # noqa: E402
from proximity_sdk._pb.proximity.v1 import apps_pb2  # noqa: E402
from proximity_sdk._wire.apps import app_to_pb  # noqa: E402
from proximity_sdk.models.operation import OperationStatus  # noqa: E402
from proximity_sdk.store.users_repo import hash_token  # noqa: E402

_out_lock = threading.Lock()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS in /proc/self/status")


def emit(message: dict[str, Any]) -> None:
    with _out_lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


class Profiler:
    """One cProfile per thread (cProfile follows the thread that enabled it), merged on stop."""

    def __init__(self) -> None:
        self.on = False
        self._local = threading.local()
        self._all: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def mine(self) -> cProfile.Profile:
        profile: cProfile.Profile | None = getattr(self._local, "profile", None)
        if profile is None:
            profile = cProfile.Profile()
            self._local.profile = profile
            with self._lock:
                self._all.append(profile)
        return profile

    def report(self, top: int = 25) -> dict[str, Any]:
        with self._lock:
            profiles = [p for p in self._all if p.getstats()]
            self._all.clear()
        self._local = threading.local()
        if not profiles:
            return {"top_tottime": [], "text": []}
        stats = pstats.Stats(profiles[0])
        for extra in profiles[1:]:
            stats.add(extra)
        rows = []
        for (path, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            rows.append(
                {
                    "function": f"{Path(path).name}:{line}({func})",
                    "calls": ncalls,
                    "tottime_s": round(tottime, 4),
                    "cumtime_s": round(cumtime, 4),
                    "ours": "proximity_" in path,
                }
            )
        text = io.StringIO()
        stats.stream = text  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(top)
        by_cum = sorted((r for r in rows if r["ours"]), key=lambda r: -r["cumtime_s"])[:top]
        return {
            "top_tottime": sorted(rows, key=lambda r: -r["tottime_s"])[:top],
            "top_cumtime_ours": by_cum,
            "text": text.getvalue().splitlines()[: top + 10],
        }


class ProfiledExecutor(ThreadPoolExecutor):
    """The backend's pool, each call profiled in its own thread while profiling is on."""

    def __init__(self, profiler: Profiler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._profiler = profiler

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        profiler = self._profiler

        def call() -> Any:
            if not profiler.on:
                return fn(*args, **kwargs)
            profile = profiler.mine()
            profile.enable()
            try:
                return fn(*args, **kwargs)
            finally:
                profile.disable()

        return super().submit(call)


def append_events(px: Proximity, op_id: str, count: int, interval: float) -> None:
    """An operation worker's writes: ``count`` events at a fixed rate, then the finishing one."""
    ops = px.store.operations
    began = time.perf_counter()
    costs = []
    for i in range(count):
        delay = began + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        ops.append_event(op_id, f"bench event {i + 1} of {count}", step="bench", progress=(i + 1) / count)
        costs.append(round((time.perf_counter() - start) * 1000, 3))
    time.sleep(interval)
    ops.finish(op_id, None, OperationStatus.SUCCEEDED, message="bench operation finished")
    emit({"appended": count, "append_ms": costs})


def _per_call_ms(fn: Callable[[], object], count: int) -> float:
    for _ in range(20):
        fn()
    began = time.perf_counter()
    for _ in range(count):
        fn()
    return round((time.perf_counter() - began) / count * 1000, 3)


def _read(px: Proximity, app_id: str) -> Any:
    with px.store.reading():
        return px.apps.get(app_id)


async def parts(px: Proximity, backend: Backend, token: str, ids: list[str], count: int = 500) -> dict[str, Any]:
    """Per-call cost of the pieces of one GetApp, in this process, nothing else running."""
    rng = random.Random(3)
    app = px.apps.get(ids[0])
    reply = apps_pb2.GetAppResponse(app=app_to_pb(app))

    def empty_session() -> None:
        with px.store.session():
            pass

    costs: dict[str, Any] = {
        "store.users.authenticate (token lookup)": _per_call_ms(lambda: px.store.users.authenticate(token), count),
        "px.apps.get (app + its ports)": _per_call_ms(lambda: px.apps.get(rng.choice(ids)), count),
        "px.apps.get inside store.reading() (GetApp's read on the event loop)": _per_call_ms(
            lambda: _read(px, rng.choice(ids)), count
        ),
        "_wire.apps.app_to_pb": _per_call_ms(lambda: app_to_pb(app), count),
        "serialize GetAppResponse": _per_call_ms(reply.SerializeToString, count),
        "empty store session (BEGIN + COMMIT through SQLAlchemy)": _per_call_ms(empty_session, count),
    }
    began = time.perf_counter()
    for _ in range(count):
        await backend.run(lambda: None)
    costs["backend.run pool hop (no work)"] = round((time.perf_counter() - began) / count * 1000, 3)
    db = sqlite3.connect(str(px.store.engine.url.database), isolation_level=None, check_same_thread=False)
    try:
        hashed = hash_token(token)

        def plain_token() -> None:
            db.execute(
                "SELECT t.id, t.expires_at, t.revoked_at, t.last_used_at, u.* FROM api_tokens t "
                "JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
                (hashed,),
            ).fetchone()

        def plain_app() -> None:
            app_id = rng.choice(ids)
            db.execute("SELECT * FROM apps WHERE id = ?", (app_id,)).fetchone()
            db.execute("SELECT * FROM ports WHERE app_id = ? ORDER BY id", (app_id,)).fetchall()

        costs["plain sqlite3: token lookup"] = _per_call_ms(plain_token, count)
        costs["plain sqlite3: app + ports"] = _per_call_ms(plain_app, count)
        costs.update(_list_costs(px, db, len(ids)))
    finally:
        db.close()
    return costs


def _list_costs(px: Proximity, db: sqlite3.Connection, apps: int) -> dict[str, Any]:
    """ListApps' page query (OFFSET, ORDER BY created_at, id) at the first and the last page,
    through the store and in plain sqlite3; then on an in-memory copy of the database with an
    index on the sort key, by OFFSET and by keyset (WHERE (created_at, id) > last seen)."""
    last = max(0, apps - 100)
    page = "SELECT * FROM apps ORDER BY created_at, id LIMIT 100 OFFSET ?"
    before = px.store.apps.list(offset=max(0, last - 1), limit=1)[0]
    cursor = (before.created_at, before.id)
    costs: dict[str, Any] = {
        "store.apps.list page of 100 at offset 0": _per_call_ms(lambda: px.store.apps.list(offset=0, limit=100), 10),
        f"store.apps.list page of 100 at offset {last}": _per_call_ms(
            lambda: px.store.apps.list(offset=last, limit=100), 10
        ),
        "plain sqlite3: page at offset 0": _per_call_ms(lambda: db.execute(page, (0,)).fetchall(), 10),
        f"plain sqlite3: page at offset {last}": _per_call_ms(lambda: db.execute(page, (last,)).fetchall(), 10),
        "query plan": [row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + page, (last,))],
    }
    if "after" in inspect.signature(px.store.apps.list).parameters:  # keyset paging (issue 18)
        costs[f"store.apps.list page of 100 after app {last} (keyset)"] = _per_call_ms(
            lambda: px.store.apps.list(after=cursor, limit=100), 10
        )
    copy = sqlite3.connect(":memory:", isolation_level=None)
    try:
        db.backup(copy)
        copy.execute("CREATE INDEX bench_apps_created ON apps (created_at, id)")
        costs[f"indexed copy: page at offset {last}"] = _per_call_ms(lambda: copy.execute(page, (last,)).fetchall(), 10)
        created, app_id = copy.execute(
            "SELECT created_at, id FROM apps ORDER BY created_at, id LIMIT 1 OFFSET ?", (last - 1,)
        ).fetchone()
        keyset = "SELECT * FROM apps WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT 100"
        costs["indexed copy: keyset page after the same row"] = _per_call_ms(
            lambda: copy.execute(keyset, (created, app_id)).fetchall(), 10
        )
        costs["indexed copy: query plan"] = [row[-1] for row in copy.execute("EXPLAIN QUERY PLAN " + page, (last,))]
    finally:
        copy.close()
    return costs


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stages = {"imports done": rss_mb()}
    px = Proximity.local(data_dir=args.data_dir, entry_points=False)
    px.store.apps.keep_reads()  # as AgentReplica.open does
    stages["Proximity.local open"] = rss_mb()
    metrics = AgentMetrics()
    metrics.serve("127.0.0.1", 0)
    profiler = Profiler()
    options = ServerOptions(port=0, watch_poll_seconds=args.watch_poll, max_workers=args.max_workers)
    server: AgentServer
    server, port = build_server(options, px=px, interceptors=[metrics.server_interceptor()])
    server.backend.executor.shutdown(wait=False)
    server.backend.executor = ProfiledExecutor(profiler, max_workers=options.max_workers, thread_name_prefix="px-rpc")
    await server.start()
    settle_heap()  # as `proximity-agent serve` does once it serves
    stages["server started"] = rss_mb()
    stopping = asyncio.Event()

    def command(raw: str) -> None:  # on the loop
        request = json.loads(raw)
        match request["cmd"]:
            case "operation":
                op = px.store.operations.create("bench", steps=["bench"])
                px.store.operations.append_event(op.id, "bench operation recorded", step="bench")
                emit({"operation": op.id})
            case "events":
                threading.Thread(
                    target=append_events,
                    name="bench-events",
                    daemon=True,
                    args=(px, request["op"], int(request["count"]), float(request["interval"])),
                ).start()
            case "profile" if request["on"]:
                profiler.on = True
                profiler.mine().enable()  # the loop thread's own profile
            case "profile":
                profiler.mine().disable()
                profiler.on = False
                emit({"profile": profiler.report()})
            case "parts":
                task = asyncio.create_task(parts(px, server.backend, request["token"], request["apps"]))
                task.add_done_callback(lambda done: emit({"parts": done.result()}))
            case "quit":
                stopping.set()
            case other:
                emit({"error": f"unknown command {other!r}"})

    def read_commands() -> None:
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(command, line)
        loop.call_soon_threadsafe(stopping.set)  # the bench went away

    threading.Thread(target=read_commands, name="bench-commands", daemon=True).start()
    emit({"ready": port, "rss_mb": stages})
    await stopping.wait()
    await server.stop(1)
    metrics.close()
    px.close()
    emit({"stopped": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--watch-poll", type=float, default=ServerOptions().watch_poll_seconds)
    parser.add_argument("--max-workers", type=int, default=ServerOptions().max_workers)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
