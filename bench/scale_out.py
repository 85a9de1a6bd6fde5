"""Benchmark (issue 18, item 4, the part measured so far): reconcile of many hosts.

``--hosts`` fakepve servers (HarnessPve over HTTPS, time scale 0), each with ``--containers``
containers over three nodes, and one app record per container in one store (SQLite, or the
machine's PostgreSQL with ``--database postgresql``). Measured, ``--runs`` times each:

- ``reconcile``: ``px.maintenance.reconcile()`` as it is (every host's request at once): wall
  time, requests per host, and the slowest host's own time (``HostReconcile.elapsed_ms``);
- ``fetch only, sequential`` and ``fetch only, parallel``: just the one ``cluster/resources``
  request per host (what reconcile asks Proxmox), one host after another and all at once on a
  thread per host: the share of the wall time that parallel requests could save at best.

Goal (issue 18): reconcile of 10 hosts x 1,000 containers, one request per host in parallel,
under 1 s. Not measured here yet: 3 agents on one PostgreSQL taking 200 deploys (throughput,
collisions, kill -9).

Run from the repository root:  python bench/scale_out.py [--hosts 10] [--containers 1000] [--runs 3]
Writes bench/results/scale_out.json and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from proximity_sdk._client import Proximity  # noqa: E402
from proximity_sdk.models.app import AppStatus  # noqa: E402
from proximity_sdk.store.tables import AppRow  # noqa: E402
from tests.harness.db import create_pg_database, drop_pg_database  # noqa: E402
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve, make_pki, serve_pve  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "scale_out.json")
    args = parser.parse_args()
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
        "not_measured_yet": "3 agents on one PostgreSQL: 200 deploys, throughput vs one agent, VMID/address "
        "collisions, kill -9 of an agent mid-run",
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
