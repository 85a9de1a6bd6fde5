"""Benchmark (issue 18, item 4): reconcile of many hosts, and several agents taking deploys at once.

``--hosts`` fakepve servers (HarnessPve over HTTPS, time scale 0), each with ``--containers``
containers over three nodes, and one app record per container in one store (SQLite, or the
machine's PostgreSQL with ``--database postgresql``). Measured, ``--runs`` times each:

- ``reconcile``: ``px.maintenance.reconcile()`` as it is (every host's request at once): wall
  time, requests per host, and the slowest host's own time (``HostReconcile.elapsed_ms``);
- ``fetch only, sequential`` and ``fetch only, parallel``: just the one ``cluster/resources``
  request per host (what reconcile asks Proxmox), one host after another and all at once on a
  thread per host: the share of the wall time that parallel requests could save at best.

Goal (issue 18): reconcile of 10 hosts x 1,000 containers, one request per host in parallel,
under 1 s.

With ``--agents K`` (K >= 2) the bench measures the other half of item 4 instead: agents
(``proximity-agent serve``, each its own process) on one fresh PostgreSQL database of the machine,
in front of one time-scaled fakepve (HarnessPve, PVE 9.1.2, ``--nodes`` nodes; container create,
start and image pull take PVE seconds scaled by ``--time-scale``, some hundreds of ms). Every run
starts afresh (database, fake, agents); the image is pulled on every node first (a warm-up app per
node, kept). ``--deploys`` ``px.apps.deploy_image`` calls (API only: no node shell) are submitted at
once through ``Proximity.connect`` clients, round-robin over the agents; the operations' own
timestamps give each deploy's latency (queued to finished), and how many deploys ran at once (in
all, per agent, per node: a run held back by workers or node slots shows there). Runs:

- ``1 agent``: the baseline; ``K agents``: the same load; ``K agents, kill -9``: the same, with
  one agent killed (SIGKILL) ``--kill-after`` seconds in, then the survivors left to settle (the
  dead agent's leases expire, a survivor takes its operations over and finishes or rolls back each).

After every run the store and the fake are checked: no deploy operation left pending or running;
every app running with its container (running, its hostname) or without a VMID and without a
container; no container without an app; no VMID and no address held by two apps.

Goals (issue 18): K=3 agents, 200 deploys: throughput at least 2.5x one agent's, 0 VMID or address
collisions, kill -9 of an agent loses nothing.

Run from the repository root:
    python bench/scale_out.py [--hosts 10] [--containers 1000] [--runs 3]   (reconcile)
    python bench/scale_out.py --agents 3 [--deploys 200] [--nodes 4]         (agents)
Writes bench/results/scale_out.json (reconcile) or bench/results/scale_out_agents.json (agents)
and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from proximity_agent.auth import bootstrap_admin_token  # noqa: E402
from proximity_sdk._client import Proximity  # noqa: E402
from proximity_sdk.models.app import AppStatus  # noqa: E402
from proximity_sdk.models.operation import OperationStatus  # noqa: E402
from proximity_sdk.store import Store  # noqa: E402
from proximity_sdk.store.tables import (  # noqa: E402
    AddressReservationRow,
    AppRow,
    OperationEventRow,
    OperationRow,
    VmidReservationRow,
)
from tests.harness.agent_process import ServedAgent  # noqa: E402
from tests.harness.db import create_pg_database, drop_pg_database  # noqa: E402
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve, make_pki, serve_pve  # noqa: E402
from tests.harness.sshd import Sshd, start_sshd  # noqa: E402

NODES = ("pve1", "pve2", "pve3")
FIRST_VMID = 1000
GOALS = {"hosts": 10, "containers_per_host": 1000, "requests_per_host": 1, "wall_ms_max": 1000.0}


def _populate(px: Proximity, pve: HarnessPve, host_name: str, count: int) -> None:
    host_id = px.hosts.get(host_name).id
    with px.store.session() as s:  # one transaction: seeding is not what is measured
        for i in range(count):
            vmid = FIRST_VMID + i
            node = NODES[i % len(NODES)]
            running = i % 4 != 0
            pve.add_ct(
                vmid,
                f"app-{vmid}",
                node=node,
                status="running" if running else "stopped",
                config={"memory": 512 + 256 * (i % 4), "cores": 1 + i % 2},
            )
            s.add(
                AppRow(
                    hostname=f"app-{vmid}",
                    host_id=host_id,
                    node=node,
                    vmid=vmid,
                    status=AppStatus.RUNNING if running else AppStatus.STOPPED,
                    catalog_id="bench",
                    config={"main_port": 3000, "main_service": "svc0"},
                    adopted=False,
                    cores=1,
                    memory_mb=512,
                    swap_mb=512,
                    disk_gb=8,
                )
            )


def _reconcile(px: Proximity) -> dict[str, Any]:
    began = time.perf_counter()
    report = px.maintenance.reconcile()
    wall = (time.perf_counter() - began) * 1000
    return {
        "wall_ms": round(wall, 1),
        "requests_per_host_max": max(h.requests for h in report.hosts),
        "slowest_host_ms": round(max(h.elapsed_ms for h in report.hosts), 1),
        "containers": sum(h.containers for h in report.hosts),
        "unreachable": [h.host for h in report.unreachable],
        "changes": len(report.changes),
    }


def _fetch(px: Proximity, names: list[str], *, parallel: bool) -> dict[str, Any]:
    clients = [px._clients.get(px.hosts.get(name).id) for name in names]
    began = time.perf_counter()
    if parallel:
        threads = [threading.Thread(target=c.get, args=("/cluster/resources",), kwargs={"type": "vm"}) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for c in clients:
            c.get("/cluster/resources", type="vm")
    return {"wall_ms": round((time.perf_counter() - began) * 1000, 1)}


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [s["wall_ms"] for s in samples]
    return {
        "runs": len(samples),
        "wall_ms_median": round(statistics.median(walls), 1),
        "wall_ms_max": round(max(walls), 1),
        "samples": samples,
    }


# agents: several `proximity-agent serve` processes taking deploys at once ---------------------------

IMAGE = "ghcr.io/example/whoami:1.10"
IMAGE_PORT = 8080
# PVE seconds of the fake's tasks, made real by --time-scale (0.01: a create takes 300 ms)
TASK_SECS = {"create": 30.0, "start": 20.0, "destroy": 10.0, "pull": 20.0}
STATIC_POOL, STATIC_GATEWAY = "10.20.0.0/22", "10.20.0.1"
LEASE_SECONDS = 5  # the settings' minimum: a dead agent's operations wait this long for a survivor
AGENT_GOALS = {"agents": 3, "deploys": 200, "speedup_min": 2.5, "collisions": 0, "lost": 0}
ACTIVE = {OperationStatus.PENDING, OperationStatus.RUNNING}


class BenchAgent(ServedAgent):
    """A served agent whose CPU time is read just before it is killed or stopped."""

    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        super().__init__(name, env, logs)
        self.port = 0
        self.identity = ""
        self.cpu_s = 0.0

    def wait_serving(self) -> None:
        self.port, self.identity = self.serving()

    def kill(self) -> None:
        self.cpu_s = _process_cpu_s(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.cpu_s = _process_cpu_s(self.process.pid)
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, every core summed (/proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / tick, sum(ticks) / tick


def _slow_tasks(pve: HarnessPve) -> None:
    """Container tasks and image pulls that take PVE seconds (scaled by the fake's time_scale)."""
    pve.ct_secs["create"] = TASK_SECS["create"]
    pve.ct_secs["destroy"] = TASK_SECS["destroy"]
    pve.pull_secs = TASK_SECS["pull"]
    steps = pve._start_steps

    async def start_steps(ct: Any, user: str, skiplock: bool = False) -> Any:
        ct.start_secs = TASK_SECS["start"]  # a new container's start task lasts as long as any other
        return await steps(ct, user, skiplock)

    pve._start_steps = start_steps  # type: ignore[method-assign]


def _agent_env(url: str, data_dir: Path, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
    values: dict[str, object] = {
        "database_url": url,
        "data_dir": data_dir,
        "secret_key": key,
        "entry_points": "false",
        "port": 0,
        "metrics_port": "null",
        "lease_seconds": LEASE_SECONDS,
        "recover_interval_seconds": 0.5,
        "leader_check_interval_seconds": 1,
        # the periodic jobs stay off: the deploys are what is measured
        "reconcile_interval_seconds": 0,
        "janitor_interval_seconds": 0,
        "node_sync_interval_seconds": 0,
        "backup_schedules_interval_seconds": 0,
        "app_updates_interval_seconds": 0,
        "shutdown_grace_seconds": 5,
        "log_level": "INFO",  # the "serving gRPC on" line gives the port
    }
    return env | {f"PROXIMITY_AGENT_{k.upper()}": str(v) for k, v in values.items()}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _settle(store: Store, op_ids: list[str], *, timeout: float) -> float:
    """Seconds until every operation in ``op_ids`` finished (polled every 50 ms)."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        with store.session() as s:
            active = s.execute(
                select(func.count())
                .select_from(OperationRow)
                .where(OperationRow.id.in_(op_ids), OperationRow.status.in_(ACTIVE))
            ).scalar_one()
        if not active:
            return time.perf_counter() - began
        time.sleep(0.05)
    raise TimeoutError(f"operations still active after {timeout} s")


def _check(store: Store, pve: HarnessPve, op_ids: list[str]) -> dict[str, Any]:
    """What the run left behind, in the store and in the fake (see the module docstring)."""
    with store.session() as s:
        ops = s.execute(select(OperationRow).where(OperationRow.kind == "deploy")).scalars().all()
        apps = s.execute(select(AppRow)).scalars().all()
        by_status = Counter(str(op.status.value) for op in ops)
        failed = Counter((op.error or "")[:100] for op in ops if op.status == OperationStatus.FAILED)
        missing = sorted(set(op_ids) - {op.id for op in ops})
        takeovers = s.execute(
            select(func.count()).select_from(OperationEventRow).where(OperationEventRow.message.like("taken over by %"))
        ).scalar_one()
        app_rows = [(a.id, a.hostname, a.vmid, a.status, a.address) for a in apps]
        held_vmids = s.execute(select(VmidReservationRow.vmid)).scalars().all()
        held_addresses = s.execute(select(AddressReservationRow.address)).scalars().all()
    cts = {ct.vmid: ct for ct in pve.cts}
    problems: list[str] = []
    vmids = Counter(vmid for _id, _h, vmid, _st, _ad in app_rows if vmid is not None)
    addresses = Counter(ad for _id, _h, _v, st, ad in app_rows if ad and st == AppStatus.RUNNING)
    owned = set()
    for app_id, hostname, vmid, status, address in app_rows:
        ct = cts.get(vmid) if vmid is not None else None
        if status == AppStatus.RUNNING:
            owned.add(vmid)
            if ct is None or ct.status != "running" or ct.config.get("hostname") != hostname:
                problems.append(f"app {hostname} ({app_id}) is running without its running container (vmid {vmid})")
            if not address:
                problems.append(f"app {hostname} is running without an address")
        elif vmid is not None:
            owned.add(vmid)
            problems.append(f"app {hostname} is {status.value} and still holds vmid {vmid}")
        if status != AppStatus.RUNNING and any(c.config.get("hostname") == hostname for c in cts.values()):
            problems.append(f"app {hostname} is {status.value} but a container {hostname} exists")
    orphans = sorted(set(cts) - owned)
    problems += [f"container {v} ({cts[v].config.get('hostname')}) belongs to no app" for v in orphans]
    live_vmids = {row[2] for row in app_rows if row[3] == AppStatus.RUNNING}
    live_addresses = {row[4] for row in app_rows if row[3] == AppStatus.RUNNING}
    # a reservation no running app holds: an id or address nobody can use until the janitor frees it
    stale = [f"vmid {v}" for v in held_vmids if v not in live_vmids]
    stale += [f"address {a}" for a in held_addresses if a not in live_addresses]
    still = sum(by_status.get(str(st.value), 0) for st in ACTIVE)
    return {
        "operations": dict(by_status),
        "failed_errors": dict(failed),
        "operations_missing": len(missing),
        "operations_active": still,
        "takeovers": takeovers,
        "apps": len(app_rows),
        "apps_running": sum(1 for row in app_rows if row[3] == AppStatus.RUNNING),
        "containers": len(cts),
        "vmid_collisions": sum(n - 1 for n in vmids.values() if n > 1),
        "address_collisions": sum(n - 1 for n in addresses.values() if n > 1),
        "orphan_containers": len(orphans),
        "reservations": {"vmids": len(held_vmids), "addresses": len(held_addresses)},
        "stale_reservations": stale[:20],
        "stale_reservation_count": len(stale),
        "problems": problems[:20],
        "problem_count": len(problems),
        "lost": len(missing) + still + len(problems),
    }


def _requests_by_path(recorded: list[Any], deploys: int) -> dict[str, float]:
    """Requests per deploy by method and path (node names, VMIDs and UPIDs folded), most first."""
    counts: Counter[str] = Counter()
    for request in recorded:
        path = re.sub(r"UPID:[^/]+", "{upid}", request.method + " " + request.path)
        path = re.sub(r"/nodes/[^/]+", "/nodes/{node}", path)
        counts[re.sub(r"/\d+(?=/|$)", "/{vmid}", path)] += 1
    return {path: round(n / deploys, 2) for path, n in counts.most_common()}


_Event = tuple[str, str | None, str, Any]  # (operation id, step, message, time)


def _events(store: Store, op_ids: list[str]) -> list[_Event]:
    """The operations' events in order: (operation id, step, message, time)."""
    event = OperationEventRow
    with store.session() as s:
        rows = s.execute(
            select(event.operation_id, event.step, event.message, event.time)
            .where(event.operation_id.in_(op_ids))
            .order_by(event.operation_id, event.seq)
        ).all()
    return [(op_id, step, message, at) for op_id, step, message, at in rows]


def _span_s(times: list[Any]) -> float | None:
    """Seconds from the earliest of ``times`` to the latest (None for none)."""
    return round((max(times) - min(times)).total_seconds(), 2) if times else None


def _step_times(events: list[_Event]) -> dict[str, float]:
    """Median ms from each step's first event to the next step's (queued: until the first step)."""
    firsts: dict[str, list[tuple[str, Any]]] = {}
    for op_id, step, _message, at in events:
        seen = firsts.setdefault(op_id, [])
        if step and (not seen or seen[-1][0] != step):
            seen.append((step, at))
    spans: dict[str, list[float]] = {}
    for seen in firsts.values():
        for (step, at), (_next, then) in itertools.pairwise(seen):
            spans.setdefault(step, []).append((then - at).total_seconds() * 1000)
    return {step: round(statistics.median(v), 1) for step, v in spans.items()}


def _running_at_once(store: Store, op_ids: list[str], events: list[_Event]) -> dict[str, Any]:
    """How many deploys ran at once (from each one's first step event to its end), in all, per
    agent (runner) and per node: the peak, and the mean over the run (first start to last end).
    Tells a run held back by too few workers (or node slots) from one held back by the machine."""
    started: dict[str, Any] = {}
    for op_id, step, _message, at in events:
        if step is not None and step != "queued":  # "queued": the submission's event, not a step run
            started[op_id] = min(at, started.get(op_id, at))
    with store.session() as s:
        rows = s.execute(
            select(OperationRow.id, OperationRow.runner_id, OperationRow.finished_at, AppRow.node)
            .join(AppRow, AppRow.id == OperationRow.app_id, isouter=True)
            .where(OperationRow.id.in_(op_ids))
        ).all()
    spans = [
        (started[op_id], done, runner or "?", node or "?")
        for op_id, runner, done, node in rows
        if op_id in started and done is not None
    ]

    def profile(chosen: list[tuple[Any, Any, str, str]]) -> dict[str, float]:
        if not chosen:
            return {"peak": 0, "mean": 0.0}
        edges = sorted([(a, 1) for a, _b, _r, _n in chosen] + [(b, -1) for _a, b, _r, _n in chosen])
        now = peak = 0
        for _at, step in edges:
            now += step
            peak = max(peak, now)
        busy = sum((b - a).total_seconds() for a, b, _r, _n in chosen)
        length = (max(b for _a, b, _r, _n in chosen) - min(a for a, _b, _r, _n in chosen)).total_seconds()
        return {"peak": peak, "mean": round(busy / length, 1) if length > 0 else 0.0}

    return {
        "all": profile(spans),
        "per_agent": [profile([x for x in spans if x[2] == r]) for r in sorted({x[2] for x in spans})],
        "per_node": {n: profile([x for x in spans if x[3] == n]) for n in sorted({x[3] for x in spans})},
        "slot_waits": _slot_waits(events, deploys=len(op_ids)),
    }


def _slot_waits(events: list[_Event], *, deploys: int) -> dict[str, float]:
    """The deploys that waited for one of their agent's mutation slots on a node
    (``OperationContext.node_slot``: "waiting for a free slot on node ..."), and for how long: from
    that event to the operation's next one."""
    waits: list[float] = []
    for (op_id, _step, message, at), (next_op, _s, _m, then) in itertools.pairwise(events):
        if op_id == next_op and message.startswith("waiting for a free slot on node"):
            waits.append((then - at).total_seconds())
    return {
        "waits": len(waits),
        "deploys": deploys,
        "seconds_total": round(sum(waits), 1),
        "seconds_median": round(statistics.median(waits), 2) if waits else 0.0,
    }


def _agents_run(
    tmp: Path,
    pki: tuple[str, str],
    *,
    ip_mode: str,
    agents: int,
    deploys: int,
    nodes: int,
    time_scale: float,
    kill_after: float | None,
    sshd: Sshd | None = None,
) -> dict[str, Any]:
    """One run from scratch: database, fake, agents, the deploys, the checks. With ``sshd`` the
    host has SSH access (every node at that sshd on this machine) and the fake's tasks are real
    processes there, so the agents' waits are watched on the node (proxmox/task_watch.py)."""
    url = create_pg_database()
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=tmp))
    key = Fernet.generate_key().decode()
    served: list[ServedAgent] = []
    try:
        with serve_pve(*pki, time_scale=time_scale) as (pve, _served):
            pve.version = "9.1.2"
            for i in range(2, nodes + 1):
                pve.nodes[f"pve{i}"] = {"online": True}
            node_names = sorted(pve.nodes)
            pve.worker_processes = sshd is not None
            ssh = sshd.access(node_names) if sshd is not None else None
            with Proximity.local(database_url=url, data_dir=run_dir / "data", secret_key=key, entry_points=False) as px:
                px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pki[0], ssh=ssh)
                px.settings.update(memory_overcommit=100.0)  # hundreds of small apps on a few fake nodes
                if ip_mode == "static":  # addresses from the shared reservation table, as VMIDs are
                    px.settings.update(ip_mode="static", ip_pool=STATIC_POOL, gateway=STATIC_GATEWAY)
                for node in node_names:  # the image is pulled once per node, outside the measure
                    px.apps.deploy_image(IMAGE, hostname=f"warm-{node}", node=node, ports=[IMAGE_PORT]).wait(
                        timeout=120
                    )
                token = bootstrap_admin_token(px, "bench")
            _slow_tasks(pve)
            env = _agent_env(url, run_dir / "data", key)
            served = [BenchAgent(f"agent{i}", env, run_dir) for i in range(agents)]
            for agent in served:
                agent.wait_serving()
            remotes = [Proximity.connect(f"127.0.0.1:{a.port}", token=token, timeout=120) for a in served]
            submit_errors: list[str] = []

            submit_ms: list[float] = []

            def submit(i: int) -> str | None:
                try:
                    asked = time.perf_counter()
                    handle = remotes[i % agents].apps.deploy_image(IMAGE, hostname=f"d{i:04d}", ports=[IMAGE_PORT])
                    submit_ms.append((time.perf_counter() - asked) * 1000)
                    return str(handle.id)
                except Exception as exc:  # counted and reported
                    submit_errors.append(f"d{i:04d} via agent{i % agents}: {type(exc).__name__}: {exc}")
                    return None

            killed: dict[str, Any] = {}
            killer: threading.Timer | None = None
            if kill_after is not None:
                doomed = served[0]

                def kill() -> None:
                    killed.update(
                        agent=doomed.name, identity=doomed.identity, at_s=round(time.perf_counter() - began, 2)
                    )
                    doomed.kill()

            load_before = os.getloadavg()
            agents_cpu_before = sum(_process_cpu_s(a.process.pid) for a in served)
            bench_cpu_before = time.process_time()
            machine_before = _machine_busy_s()
            requests_before = len(pve.recorded)
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=min(32, deploys)) as pool:
                submitted = list(pool.map(submit, range(deploys)))
            submit_s = time.perf_counter() - began
            if kill_after is not None:  # once every deploy was accepted: a refused submission is not the point
                killer = threading.Timer(max(0.0, kill_after - submit_s), kill)
                killer.start()
            op_ids = [op for op in submitted if op is not None]
            with Store.open(url, data_dir=run_dir / "data", secret_key=key) as store:
                _settle(store, op_ids, timeout=300)
                wall = time.perf_counter() - began
                if killer is not None:
                    killer.join()
                load_after = os.getloadavg()
                machine_after = _machine_busy_s()
                requests = len(pve.recorded) - requests_before
                by_path = _requests_by_path(pve.recorded[requests_before:], deploys)
                bench_cpu = time.process_time() - bench_cpu_before
                for agent in served:
                    if agent.process.poll() is None:
                        agent.cpu_s = _process_cpu_s(agent.process.pid)
                agents_cpu = sum(a.cpu_s for a in served) - agents_cpu_before
                with store.session() as s:
                    rows = s.execute(
                        select(OperationRow.status, OperationRow.created_at, OperationRow.finished_at).where(
                            OperationRow.id.in_(op_ids)
                        )
                    ).all()
                check = _check(store, pve, op_ids)
                events = _events(store, op_ids)
                steps = _step_times(events)
                at_once = _running_at_once(store, op_ids, events)
            for remote in remotes:
                remote.close()
            latencies = [(done - made).total_seconds() * 1000 for _st, made, done in rows if done is not None]
            succeeded = sum(1 for st, _m, _d in rows if st == OperationStatus.SUCCEEDED)
            return {
                "agents": agents,
                "deploys": deploys,
                "nodes": nodes,
                "killed": killed or None,
                "load_average_before": [round(v, 2) for v in load_before],
                "load_average_after": [round(v, 2) for v in load_after],
                "submit_s": round(submit_s, 2),
                # one deploy_image call each, 32 at once: what the agents' answers took
                "submit_ms": {
                    "p50": round(statistics.median(submit_ms), 1) if submit_ms else None,
                    "max": round(max(submit_ms), 1) if submit_ms else None,
                },
                # the operations' own rows: from the first written to the last
                "created_span_s": _span_s([made for _st, made, _d in rows]),
                "cpu_s": {
                    "agents": round(agents_cpu, 2),
                    "bench_process (fake, clients, checks)": round(bench_cpu, 2),
                    "agents_per_deploy_ms": round(agents_cpu / deploys * 1000, 1),
                    # every core of the machine, every process (other helpers' benches included)
                    "machine_busy_share": round(
                        (machine_after[0] - machine_before[0]) / (machine_after[1] - machine_before[1]), 2
                    ),
                },
                "submit_errors": submit_errors[:10],
                "submit_error_count": len(submit_errors),
                "wall_s": round(wall, 2),
                "deploys_per_s": round(deploys / wall, 2),
                "succeeded": succeeded,
                "pve_requests_per_deploy": round(requests / deploys, 1),
                "pve_requests_per_deploy_by_path": by_path,
                "latency_ms_p50": round(_percentile(latencies, 0.5), 1) if latencies else None,
                "latency_ms_p99": round(_percentile(latencies, 0.99), 1) if latencies else None,
                "latency_ms_max": round(max(latencies), 1) if latencies else None,
                "step_ms_median": steps,
                "running_at_once": at_once,
                "check": check,
            }
    finally:
        for agent in served:
            agent.stop()
        drop_pg_database(url)


def agents_main(args: argparse.Namespace) -> None:
    logging.getLogger("proximity_sdk").setLevel(logging.ERROR)
    load_start = os.getloadavg()
    options: dict[str, Any] = {
        "deploys": args.deploys,
        "nodes": args.nodes,
        "time_scale": args.time_scale,
        "ip_mode": args.ip_mode,
    }
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="proximity-bench-agents-") as tmp, contextlib.ExitStack() as stack:
        pki = make_pki(tmp)
        if args.node_shell:
            sshd = start_sshd(Path(tmp) / "sshd")
            stack.callback(sshd.stop)
            options["sshd"] = sshd
        plan = [
            ("1 agent", 1, None),
            (f"{args.agents} agents", args.agents, None),
            (f"{args.agents} agents, kill -9", args.agents, args.kill_after),
        ]
        for name, count, kill_after in plan:
            if kill_after is not None:  # inside the run, however short: before 40% of the same run unkilled
                kill_after = min(kill_after, round(0.4 * runs[plan[1][0]]["wall_s"], 2))
            runs[name] = _agents_run(Path(tmp), pki, agents=count, kill_after=kill_after, **options)
            r = runs[name]
            print(
                f"{name:<22} wall {r['wall_s']:>6} s  {r['deploys_per_s']:>6}/s  p50 {r['latency_ms_p50']} ms  "
                f"p99 {r['latency_ms_p99']} ms  succeeded {r['succeeded']}/{r['deploys']}  lost {r['check']['lost']}  "
                f"load {r['load_average_before'][0]}\n    cpu {r['cpu_s']}  "
                f"pve requests/deploy {r['pve_requests_per_deploy']}\n"
                f"    submitted in {r['submit_s']} s (each call {r['submit_ms']} ms; rows written over "
                f"{r['created_span_s']} s)\n"
                f"    steps (median ms) {r['step_ms_median']}\n    running at once {r['running_at_once']}\n"
                f"    failed {r['check']['failed_errors']}\n"
                f"    reservations {r['check']['reservations']}, stale {r['check']['stale_reservations'][:5]}",
                flush=True,
            )
    one, many, killed = (runs[name] for name, _c, _k in plan)
    speedup = many["deploys_per_s"] / one["deploys_per_s"]
    output = {
        "what": "deploy_image submitted at once through Proximity.connect, round-robin over agents on one PostgreSQL",
        "command": "python bench/scale_out.py " + " ".join(sys.argv[1:]),
        "image": IMAGE,
        "time_scale": args.time_scale,
        "ip_mode": args.ip_mode,
        "node_shell": args.node_shell,
        "task_pve_seconds": TASK_SECS,
        "task_real_ms": {k: round(v * args.time_scale * 1000) for k, v in TASK_SECS.items()},
        "lease_seconds": LEASE_SECONDS,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_start": [round(v, 2) for v in load_start],
            "load_average_end": [round(v, 2) for v in os.getloadavg()],
        },
        "goals": AGENT_GOALS,
        "speedup": round(speedup, 2),
        "met": {
            "at_goal_scale": args.agents >= AGENT_GOALS["agents"] and args.deploys >= AGENT_GOALS["deploys"],
            "speedup": speedup >= AGENT_GOALS["speedup_min"],
            "no_collisions": all(
                r["check"]["vmid_collisions"] == 0 and r["check"]["address_collisions"] == 0 for r in runs.values()
            ),
            "kill_9_loses_nothing": killed["check"]["lost"] == 0 and killed["submit_error_count"] == 0,
            "all_runs_clean": all(r["check"]["lost"] == 0 for r in runs.values()),
        },
        "runs": runs,
    }
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print(f"speedup {speedup:.2f}x (goal {AGENT_GOALS['speedup_min']}x); met: {output['met']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--agents", type=int, default=0, help="K >= 2: the agents bench instead of reconcile")
    parser.add_argument("--deploys", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--ip-mode", choices=("static", "dhcp"), default="static")
    parser.add_argument(
        "--kill-after", type=float, default=3.0, help="seconds into the kill -9 run (at most 40%% of the unkilled run)"
    )
    parser.add_argument(
        "--node-shell",
        action="store_true",
        help="the host has SSH access (a test sshd on this machine): task waits are watched on the node",
    )
    args = parser.parse_args()
    if args.agents:
        if args.agents < 2:
            parser.error("--agents takes 2 or more (the run with one agent is always made)")
        args.output = args.output or ROOT / "bench" / "results" / "scale_out_agents.json"
        agents_main(args)
        return
    args.output = args.output or ROOT / "bench" / "results" / "scale_out.json"
    logging.getLogger("proximity_sdk.operations.reconcile").setLevel(logging.ERROR)
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    database_url = create_pg_database() if args.database == "postgresql" else None
    try:
        with tempfile.TemporaryDirectory(prefix="proximity-bench-") as tmp, contextlib.ExitStack() as stack:
            cert, key = make_pki(tmp)
            px = stack.enter_context(
                Proximity.local(
                    database_url=database_url,
                    data_dir=Path(tmp) / "px",
                    secret_key=Fernet.generate_key(),
                    entry_points=False,
                )
            )
            names = [f"h{i:02d}" for i in range(args.hosts)]
            began = time.perf_counter()
            for name in names:
                pve, _served = stack.enter_context(serve_pve(cert, key))
                px.hosts.add(name, url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=cert)
                _populate(px, pve, name, args.containers)
            results["setup_s"] = round(time.perf_counter() - began, 1)
            _reconcile(px)  # first pass writes every app's usage once; then the steady state is measured
            results["reconcile"] = _summary([_reconcile(px) for _ in range(args.runs)])
            results["fetch only, sequential"] = _summary([_fetch(px, names, parallel=False) for _ in range(args.runs)])
            results["fetch only, parallel"] = _summary([_fetch(px, names, parallel=True) for _ in range(args.runs)])
    finally:
        if database_url is not None:
            drop_pg_database(database_url)
    rec = results["reconcile"]
    output = {
        "what": "px.maintenance.reconcile() over several hosts, and the Proxmox fetch alone",
        "command": "python bench/scale_out.py " + " ".join(sys.argv[1:]),
        "hosts": args.hosts,
        "containers_per_host": args.containers,
        "database": args.database,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        },
        "goals": GOALS,
        "met": {
            "at_goal_scale": args.hosts >= GOALS["hosts"] and args.containers >= GOALS["containers_per_host"],
            "requests_per_host": max(s["requests_per_host_max"] for s in rec["samples"]) <= 1,
            "wall_ms": rec["wall_ms_max"] <= GOALS["wall_ms_max"],
        },
        "see_also": "python bench/scale_out.py --agents 3: 3 agents on one PostgreSQL taking 200 deploys",
        "results": results,
    }
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print(f"{args.hosts} hosts x {args.containers} containers, {args.database}; setup {results['setup_s']} s")
    print(f"{'scenario':<26}{'runs':>5}{'median ms':>11}{'max ms':>9}")
    for name, r in results.items():
        if isinstance(r, dict):
            print(f"{name:<26}{r['runs']:>5}{r['wall_ms_median']:>11}{r['wall_ms_max']:>9}")
    print(f"slowest single host inside reconcile: {max(s['slowest_host_ms'] for s in rec['samples'])} ms")
    print(f"goals: {GOALS} -> met: {output['met']}; load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
