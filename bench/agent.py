"""Benchmark: the agent's gRPC server: GetApp and ListApps latency and throughput over 10,000 apps,
WatchOperation fan-out to 100 and 500 watchers, and the server's memory.

The server runs in a process of its own (``bench/_agent_server.py``: built as ``proximity-agent
serve`` builds it, RPC metrics interceptor included), so client and server do not share a CPU
or a GIL and its memory is read from ``/proc/<pid>/status``. Its SQLite store is seeded first
with ``--apps`` app records (one host, registered without contacting it: nothing here needs
Proxmox) and an admin token; every call below carries that token. Measured:

- idle: VmRSS of the server after start-up and 2 s of idling, again after all the load;
- GetApp: ``--requests`` calls one after another on one channel, then the same number from
  ``--threads`` client threads with a channel each: p50/p90/p99 latency, calls/s, server CPU
  per call;
- ListApps: every app with ``page_size=100`` (``apps / 100`` pages), ``--list-runs`` times:
  per-page latency, time of a whole listing (each run: the first one fills the server's caches),
  pages/s; then the same at the service's largest page (1,000);
- WatchOperation: a recorded operation whose events the server process itself appends at a
  fixed rate (``--events`` at ``--event-interval``, as an operation worker would, then a last
  event finishing it), watched by 100 and 500 grpc.aio streams (one channel per 50 watchers):
  delivery latency from an event's own time to its receipt (every event at every watcher), the
  time until every watcher had the last event, server threads and RSS during the fan-out.
  Delivery is bounded below by the server's poll interval (``--watch-poll``, the default 0.1 s).
- where the server's time goes: cProfile of the server (event loop + pool threads) over extra
  GetApp and ListApps calls after the measurements (``--no-profile`` skips it).

Goals (from the issue): GetApp p99 under 10 ms on this machine (sequential, one client), idle
RSS under 120 MB. The clients run on the same 2 cores; the load average is recorded.

Run from the repository root:  python bench/agent.py [--apps 10000] [--requests 3000] [--threads 8] [--list-runs 2]
Writes bench/results/agent.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from _harness import ROOT, percentile
from cryptography.fernet import Fernet
from grpc import aio

from proximity_agent.auth import bootstrap_admin_token
from proximity_agent.servicers._base import MAX_PAGE_SIZE
from proximity_sdk._client import Proximity
from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc, operations_pb2, operations_pb2_grpc
from proximity_sdk.models.app import AppStatus, Port
from proximity_sdk.models.resources import Resources
from proximity_sdk.store.apps_repo import AppCreate
from proximity_sdk.store.tables import AppRow, PortRow

GOALS = {
    "get_app_p99_ms_max": 5.0,
    "get_app_8_clients_p99_ms_max": 15.0,
    "list_page_p99_ms_max": 15.0,
    "list_all_ms_max": 400.0,
    "idle_rss_mb_max": 120.0,
}  # issue 18 (GetApp p99 was 10 ms before)
NODES = ("pve1", "pve2", "pve3")
# a realistic record: deploy keeps the rendered compose file (~1.5 KB) in the app's config
COMPOSE = "services:\n" + "".join(
    f"  svc{i}:\n    image: example/app:{i}\n    restart: unless-stopped\n    environment:\n"
    f"      KEY_{i}: value-{i}-{'x' * 40}\n    ports:\n      - '{3000 + i}:{3000 + i}'\n"
    for i in range(8)
)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
        "mean": round(statistics.fmean(values), 3),
    }


class ServerProcess:
    """``bench/_agent_server.py`` as a child process: its JSON messages, its /proc figures."""

    def __init__(self, data_dir: Path, *, watch_poll: float, log: Path) -> None:
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "_agent_server.py"),
                "--data-dir",
                str(data_dir),
                "--watch-poll",
                str(watch_poll),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=ROOT,
        )
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.expect("ready", timeout=60)
        self.port, self.startup_rss_mb = int(ready["ready"]), ready["rss_mb"]
        self.target = f"127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._messages.put(json.loads(line))

    def expect(self, key: str, *, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"the agent process sent no {key!r} (log: {self._log.name})") from None
            if key in message:
                return message
            if "error" in message:
                raise RuntimeError(message["error"])

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def send_and_expect(self, command: dict[str, Any], key: str) -> dict[str, Any]:
        self.send(command)
        return self.expect(key)

    def status(self) -> dict[str, Any]:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return {
            "rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
            "hwm_mb": round(int(fields["VmHWM"].split()[0]) / 1024, 1),
            "threads": int(fields["Threads"]),
        }

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.send({"cmd": "quit"})
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            self._log.close()


async def _watch_once(
    server: ServerProcess,
    token: str,
    *,
    watchers: int,
    events: int,
    interval: float,
) -> dict[str, Any]:
    metadata = (("authorization", f"Bearer {token}"),)
    op_id = server.send_and_expect({"cmd": "operation"}, "operation")["operation"]
    channels = [aio.insecure_channel(server.target) for _ in range(max(1, watchers // 50))]
    connected, everyone_connected = 0, asyncio.Event()

    async def watch(n: int) -> list[tuple[int, float, float]]:
        nonlocal connected
        stub = operations_pb2_grpc.OperationServiceStub(channels[n % len(channels)])
        call = stub.WatchOperation(
            operations_pb2.WatchOperationRequest(operation_id=op_id), metadata=metadata, timeout=120
        )
        got = []
        async for message in call:
            now, when = time.time(), message.event.time
            got.append((message.event.seq, (now - when.seconds - when.nanos / 1e9) * 1000, now))
            if message.event.seq == 1:  # recorded with the operation: this watcher is in
                connected += 1
                if connected == watchers:
                    everyone_connected.set()
        return got

    threads = [server.status()["threads"]]
    rss = [server.status()["rss_mb"]]
    began = time.perf_counter()
    tasks = [asyncio.create_task(watch(n)) for n in range(watchers)]
    await asyncio.wait_for(everyone_connected.wait(), 120)
    connect_s = time.perf_counter() - began
    cpu, client_cpu = server.cpu_seconds(), time.process_time()
    server.send({"cmd": "events", "op": op_id, "count": events, "interval": interval})
    streaming = time.perf_counter()
    while not all(t.done() for t in tasks):
        status = server.status()
        threads.append(status["threads"])
        rss.append(status["rss_mb"])
        await asyncio.sleep(0.05)
    streamed_s = time.perf_counter() - streaming
    cpu, client_cpu = server.cpu_seconds() - cpu, time.process_time() - client_cpu
    received = [t.result() for t in tasks]
    for channel in channels:
        await channel.close()
    appended = server.expect("appended")
    expected = list(range(1, events + 3))  # the first event, the bench's, the finishing one
    broken = sum(1 for got in received if [seq for seq, _, _ in got] != expected)
    if broken:
        raise AssertionError(f"{broken} of {watchers} watchers did not get every event in order")
    delivery = [ms for got in received for seq, ms, _ in got if seq > 1]
    worst_per_event = [max(got[i][1] for got in received) for i in range(1, len(expected))]
    return {
        "watchers": watchers,
        "channels": len(channels),
        "events": len(expected) - 1,
        "event_interval_ms": interval * 1000,
        "connect_all_s": round(connect_s, 3),
        "delivery_ms": summary(delivery),
        "slowest_watcher_per_event_ms": summary(worst_per_event),
        "all_had_last_event_ms": round(worst_per_event[-1], 1),
        "stream_s": round(streamed_s, 3),
        "messages_per_s": round(len(delivery) / streamed_s, 1),
        "server_cpu_s": round(cpu, 3),
        "client_cpu_s": round(client_cpu, 3),
        "server_cpu_us_per_message": round(cpu * 1e6 / len(delivery), 1),
        "server_threads_before": threads[0],
        "server_threads_peak": max(threads),
        "server_rss_mb_before": rss[0],
        "server_rss_mb_peak": max(rss),
        "append_ms": summary(appended["append_ms"]),
    }


def watch_fanout(server: ServerProcess, token: str, *, watchers: int, events: int, interval: float) -> dict[str, Any]:
    return asyncio.run(_watch_once(server, token, watchers=watchers, events=events, interval=interval))


def seed(data_dir: Path, count: int) -> tuple[list[str], str]:
    """``count`` app records and an admin token in a new SQLite store; the apps' ids and the token.

    One transaction of validated rows (``AppCreate``, the repository's own request model) instead
    of ``count`` calls to ``store.apps.create`` (2.4 ms each here: 24 s for 10,000)."""
    with Proximity.local(data_dir=data_dir, entry_points=False) as px:
        host = px.hosts.add(
            "lab",
            url="https://pve.invalid:8006",
            token_id="root@pam!px",
            token_secret="00000000-0000-0000-0000-000000000000",
            check=False,
        )
        token = bootstrap_admin_token(px, "bench-admin")
        owner = px.store.users.get("bench-admin").id
        with px.store.session() as s:
            for i in range(count):
                vmid = 1000 + i
                req = AppCreate(
                    hostname=f"app-{vmid}",
                    host_id=host.id,
                    status=AppStatus.RUNNING,
                    catalog_id="gitea",
                    catalog_version="1.22.1",
                    owner_id=owner,
                    node=NODES[i % len(NODES)],
                    vmid=vmid,
                    address=f"10.20.{i // 250}.{i % 250 + 2}",
                    url=f"http://10.20.{i // 250}.{i % 250 + 2}:3000",
                    resources=Resources(cores=2, memory_mb=1024, swap_mb=512, disk_gb=8),
                    ports=(Port(service="svc0", port=3000), Port(service="svc0", port=22)),
                    config={
                        "compose_text": COMPOSE,
                        "main_service": "svc0",
                        "main_port": 3000,
                        "health_path": "/",
                        "os_template": "debian-12-standard",
                        "ports": [],
                    },
                )
                row = AppRow(
                    hostname=req.hostname,
                    host_id=req.host_id,
                    status=req.status,
                    catalog_id=req.catalog_id,
                    catalog_version=req.catalog_version,
                    owner_id=req.owner_id,
                    node=req.node,
                    vmid=req.vmid,
                    address=req.address,
                    url=req.url,
                    config=req.config,
                    adopted=False,
                    cores=req.resources.cores,
                    memory_mb=req.resources.memory_mb,
                    swap_mb=req.resources.swap_mb,
                    disk_gb=req.resources.disk_gb,
                )
                row.ports = [PortRow(service=p.service, port=p.port, protocol=p.protocol) for p in req.ports]
                s.add(row)
        ids = [a.id for offset in range(0, count, 1000) for a in px.store.apps.list(offset=offset, limit=1000)]
        assert len(ids) == count and px.store.apps.get(ids[-1]).ports, "the seeded apps do not read back"
    return ids, token


_IMPORTS = (
    "grpc, grpc.aio",
    "google.protobuf",
    "pydantic",
    "sqlalchemy, sqlalchemy.orm",
    "cryptography.fernet",
    "prometheus_client",
    "proximity_sdk._client",
    "proximity_sdk._pb.proximity.v1.apps_pb2",
    "proximity_agent.server, proximity_agent.metrics",
)


def import_rss() -> dict[str, float]:
    """VmRSS (MB) of a fresh interpreter after each import, in the server's order of need: who
    the idle memory belongs to."""
    script = (
        "import json, sys\n"
        "def rss():\n"
        "    line = next(l for l in open('/proc/self/status') if l.startswith('VmRSS:'))\n"
        "    return round(int(line.split()[1]) / 1024, 1)\n"
        "out = {'python': rss()}\n"
        f"for names in {_IMPORTS!r}:\n"
        "    for name in names.split(', '):\n"
        "        __import__(name)\n"
        "    out[names] = rss()\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    totals: dict[str, float] = json.loads(done.stdout)
    steps, before = {}, 0.0
    for name, total in totals.items():
        steps[f"+ {name}" if before else name] = round(total - before, 1)
        before = total
    return {**steps, "total": before}


def _get_app_loop(
    target: str,
    token: str,
    ids: list[str],
    count: int,
    seed_: int,
    out: list[float],
    start: threading.Barrier | None = None,
) -> None:
    rng = random.Random(seed_)
    metadata = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(target) as channel:
        stub = apps_pb2_grpc.AppServiceStub(channel)
        for app_id in rng.sample(ids, 50):  # warm-up: the connection, the server's first calls
            stub.GetApp(apps_pb2.GetAppRequest(app_id=app_id), metadata=metadata)
        if start is not None:
            start.wait()
        for _ in range(count):
            request = apps_pb2.GetAppRequest(app_id=rng.choice(ids))
            began = time.perf_counter()
            reply = stub.GetApp(request, metadata=metadata)
            out.append((time.perf_counter() - began) * 1000)
            if reply.app.id != request.app_id:
                raise AssertionError(f"GetApp({request.app_id}) answered {reply.app.id}")


def bench_get_app(server: ServerProcess, token: str, ids: list[str], *, requests: int, threads: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for label, clients in (("sequential", 1), (f"{threads} threads", threads)):
        latencies: list[list[float]] = [[] for _ in range(clients)]
        barrier = threading.Barrier(clients + 1)
        workers = [
            threading.Thread(
                target=_get_app_loop, args=(server.target, token, ids, requests // clients, n, latencies[n], barrier)
            )
            for n in range(clients)
        ]
        for worker in workers:
            worker.start()
        barrier.wait()
        cpu, began = server.cpu_seconds(), time.perf_counter()
        for worker in workers:
            worker.join()
        wall, cpu = time.perf_counter() - began, server.cpu_seconds() - cpu
        every = [ms for part in latencies for ms in part]
        if len(every) != requests // clients * clients:
            raise AssertionError(f"GetApp {label}: {len(every)} calls completed of {requests}")
        results[label] = {
            **summary(every),
            "requests": len(every),
            "clients": clients,
            "calls_per_s": round(len(every) / wall, 1),
            "server_cpu_ms_per_call": round(cpu * 1000 / len(every), 3),
        }
    return results


def bench_list_apps(
    server: ServerProcess,
    token: str,
    *,
    apps: int,
    runs: int,
    page_size: int = 100,
) -> dict[str, Any]:
    metadata = (("authorization", f"Bearer {token}"),)
    pages: list[float] = []
    listings: list[float] = []
    with grpc.insecure_channel(server.target) as channel:
        stub = apps_pb2_grpc.AppServiceStub(channel)
        stub.ListApps(apps_pb2.ListAppsRequest(page_size=page_size), metadata=metadata)  # warm-up
        cpu = server.cpu_seconds()
        cpu_per_run: list[float] = []
        for _ in range(runs):
            seen, token_ = 0, ""
            run_cpu = server.cpu_seconds()
            began = time.perf_counter()
            while True:
                start = time.perf_counter()
                reply = stub.ListApps(
                    apps_pb2.ListAppsRequest(page_size=page_size, page_token=token_), metadata=metadata
                )
                pages.append((time.perf_counter() - start) * 1000)
                seen += len(reply.apps)
                token_ = reply.next_page_token
                if not token_:
                    break
            listings.append((time.perf_counter() - began) * 1000)
            cpu_per_run.append(server.cpu_seconds() - run_cpu)
            if seen != apps:
                raise AssertionError(f"ListApps listed {seen} apps of {apps}")
        cpu = server.cpu_seconds() - cpu
    per_listing = len(pages) // runs
    first = [ms for n, ms in enumerate(pages) if n % per_listing < 10]
    last = [ms for n, ms in enumerate(pages) if n % per_listing >= per_listing - 10]
    return {
        "page_size": page_size,
        "pages_per_listing": per_listing,
        "listing_ms_per_run": [round(ms, 1) for ms in listings],
        "page_ms_per_run": [summary(pages[n * per_listing : (n + 1) * per_listing]) for n in range(runs)],
        "runs": runs,
        "page_ms": summary(pages),
        "first_10_pages_ms": summary(first),
        "last_10_pages_ms": summary(last),
        "listing_ms": summary(listings),
        "pages_per_s": round(len(pages) / (sum(listings) / 1000), 1),
        "apps_per_s": round(apps * runs / (sum(listings) / 1000)),
        "server_cpu_ms_per_page": round(cpu * 1000 / len(pages), 3),
        "server_cpu_ms_per_page_per_run": [round(c * 1000 / per_listing, 2) for c in cpu_per_run],
    }


def profile_server(server: ServerProcess, token: str, ids: list[str], *, apps: int) -> dict[str, Any]:
    """cProfile of the server over 1,000 GetApp and one whole listing (after the measurements:
    profiling slows the server down)."""
    server.send({"cmd": "profile", "on": True})
    time.sleep(0.2)
    _get_app_loop(server.target, token, ids, 1000, 7, [])
    get_app = server.send_and_expect({"cmd": "profile", "on": False}, "profile")["profile"]
    server.send({"cmd": "profile", "on": True})
    time.sleep(0.2)
    bench_list_apps(server, token, apps=apps, runs=1)
    list_apps = server.send_and_expect({"cmd": "profile", "on": False}, "profile")["profile"]
    parts = server.send_and_expect({"cmd": "parts", "token": token, "apps": ids}, "parts")["parts"]
    return {"get_app_parts_ms": parts, "get_app_1050_calls": get_app, "list_apps_one_listing": list_apps}


def _table(result: dict[str, Any]) -> str:
    def row(label: str, stats: dict[str, float], rate: float) -> str:
        return f"{label:40} " + " ".join(f"{stats[k]:9.2f}" for k in ("p50", "p90", "p99", "max")) + f" {rate:12.1f}"

    lines = [f"{'measure (ms)':40} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9} {'rate /s':>12}"]
    for label, stats in result["get_app"].items():
        lines.append(row(f"GetApp {label} (calls)", stats, stats["calls_per_s"]))
    listing = result["list_apps"]
    lines.append(row("ListApps one page of 100 (pages)", listing["page_ms"], listing["pages_per_s"]))
    lines.append(row(f"ListApps all {result['apps']} apps (apps)", listing["listing_ms"], listing["apps_per_s"]))
    big = result["list_apps_max_page"]
    lines.append(row(f"ListApps one page of {big['page_size']} (pages)", big["page_ms"], big["pages_per_s"]))
    lines.append(row(f"ListApps all, pages of {big['page_size']} (apps)", big["listing_ms"], big["apps_per_s"]))
    lines.append(
        f"  per listing (ms): pages of {listing['page_size']} {listing['listing_ms_per_run']}, "
        f"pages of {big['page_size']} {big['listing_ms_per_run']}; server CPU per page (ms), each listing: "
        f"{listing['server_cpu_ms_per_page_per_run']} / {big['server_cpu_ms_per_page_per_run']}; "
        f"page of {listing['page_size']} p99 each listing: {[run['p99'] for run in listing['page_ms_per_run']]}"
    )
    for label, stats in result["watch"].items():
        lines.append(row(f"Watch {label}: delivery (messages)", stats["delivery_ms"], stats["messages_per_s"]))
        lines.append(
            f"  every watcher had the last event {stats['all_had_last_event_ms']:.1f} ms after it; "
            f"server threads {stats['server_threads_before']} -> {stats['server_threads_peak']}, "
            f"RSS {stats['server_rss_mb_before']} -> {stats['server_rss_mb_peak']} MB"
        )
    mem = result["memory"]
    lines.append(
        f"server RSS: idle {mem['idle_rss_mb']} MB (goal < {GOALS['idle_rss_mb_max']:.0f}), "
        f"after the load {mem['after_load_rss_mb']} MB, peak (VmHWM) {mem['peak_rss_mb']} MB"
    )
    lines.append(f"goals met: {result['met']}   load average: {result['machine']['load_average']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--list-runs", type=int, default=2)
    parser.add_argument("--watchers", default="100,500")
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--event-interval", type=float, default=0.05)
    parser.add_argument("--watch-poll", type=float, default=0.1)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="proximity-bench-agent-") as tmp:
        data_dir = Path(tmp) / "px"
        os.environ["PROXIMITY_SECRET_KEY"] = Fernet.generate_key().decode()
        began = time.perf_counter()
        ids, token = seed(data_dir, args.apps)
        seed_s = time.perf_counter() - began
        with ServerProcess(data_dir, watch_poll=args.watch_poll, log=Path(tmp) / "server.log") as server:
            time.sleep(2)
            idle, startup = server.status(), server.startup_rss_mb
            get_app = bench_get_app(server, token, ids, requests=args.requests, threads=args.threads)
            list_apps = bench_list_apps(server, token, apps=args.apps, runs=args.list_runs)
            # the same listing at the service's largest page (the goal is set on pages of 100)
            list_apps_max_page = bench_list_apps(
                server, token, apps=args.apps, runs=args.list_runs, page_size=MAX_PAGE_SIZE
            )
            watch = {
                f"{n} watchers": watch_fanout(
                    server, token, watchers=n, events=args.events, interval=args.event_interval
                )
                for n in (int(w) for w in args.watchers.split(","))
            }
            time.sleep(2)
            after = server.status()
            profile = None if args.no_profile else profile_server(server, token, ids, apps=args.apps)
    p99 = get_app["sequential"]["p99"]
    result: dict[str, Any] = {
        "what": "agent gRPC server in its own process: GetApp/ListApps over N apps, WatchOperation fan-out, RSS",
        "command": "python bench/agent.py " + " ".join(sys.argv[1:]),
        "apps": args.apps,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": {
                "before": [round(v, 2) for v in load_before],
                "after": [round(v, 2) for v in os.getloadavg()],
            },
        },
        "server": {
            "watch_poll_seconds": args.watch_poll,
            "interceptors": ["metrics", "auth"],
            "tls": False,
            "database": "sqlite",
        },
        "goals": GOALS,
        "met": {
            "get_app_p99_ms": p99 < GOALS["get_app_p99_ms_max"],
            "get_app_8_clients_p99_ms": get_app[f"{args.threads} threads"]["p99"]
            < GOALS["get_app_8_clients_p99_ms_max"],
            "list_page_p99_ms": list_apps["page_ms"]["p99"] < GOALS["list_page_p99_ms_max"],
            "list_all_ms": list_apps["listing_ms"]["max"] < GOALS["list_all_ms_max"],
            "idle_rss_mb": idle["rss_mb"] < GOALS["idle_rss_mb_max"],
        },
        "seed_s": round(seed_s, 1),
        "memory": {
            "startup_rss_mb": startup,
            "imports_rss_mb": import_rss(),
            "idle_rss_mb": idle["rss_mb"],
            "idle_threads": idle["threads"],
            "after_load_rss_mb": after["rss_mb"],
            "after_load_threads": after["threads"],
            "peak_rss_mb": after["hwm_mb"],
        },
        "get_app": get_app,
        "list_apps": list_apps,
        "list_apps_max_page": list_apps_max_page,
        "watch": watch,
        "profile": profile,
    }
    out = ROOT / "bench" / "results" / "agent.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(_table(result))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
