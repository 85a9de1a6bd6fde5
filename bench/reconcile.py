"""Benchmark: ``px.maintenance.reconcile()`` over 1,000 containers and their 1,000 app records.

fakepve (HarnessPve over HTTPS, time scale 0) holds ``--containers`` containers spread over three
nodes; the store holds one app record per container (with a realistic ``config``: a compose file
of about 2 KB, so rewriting the usage is not free). Measured, each ``--runs`` times:

- ``first``: the first pass (every record gets its usage; no status changes);
- ``steady``: nothing changed in Proxmox (usage rewritten, no changes);
- ``churn``: before each pass 5 % of the containers stopped or started, 2 % moved to another
  node, 1 % destroyed (so apps vanish) and the previous pass's destroyed ones back again;
- ``with an unreachable host``: a second host whose port is closed is registered too.

For every pass: wall time of the whole call (Proxmox request, parsing, the one database
transaction), requests per host (``client.request_count`` and the fake's own request log), and
how many records changed, on SQLite and on the machine's PostgreSQL. Goal: 1 request per host,
under 1 s with the database update.

Run from the repository root:  python bench/reconcile.py [--containers 1000] [--runs 5] [--databases sqlite,postgresql]
Writes bench/results/reconcile.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from proximity_sdk._client import Proximity  # noqa: E402
from proximity_sdk.models.app import AppStatus  # noqa: E402
from proximity_sdk.models.maintenance import ReconcileReport  # noqa: E402
from tests.harness.db import create_pg_database, drop_pg_database  # noqa: E402
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve, make_pki, serve_pve  # noqa: E402

NODES = ("pve1", "pve2", "pve3")
FIRST_VMID = 1000
GOALS = {"requests_per_host": 1, "wall_ms_max": 1000.0}
COMPOSE = "services:\n" + "".join(
    f"  svc{i}:\n    image: example/app:{i}\n    environment:\n      KEY_{i}: value-{i}-{'x' * 40}\n"
    f"    ports:\n      - '{3000 + i}:{3000 + i}'\n"
    for i in range(12)
)


def _populate(px: Proximity, pve: HarnessPve, count: int) -> None:
    host_id = px.hosts.get("lab").id
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
        px.store.apps.create(
            hostname=f"app-{vmid}",
            host_id=host_id,
            node=node,
            vmid=vmid,
            status=AppStatus.RUNNING if running else AppStatus.STOPPED,
            catalog_id="bench",
            config={"compose_text": COMPOSE, "main_port": 3000, "main_service": "svc0"},
        )


def _churn(pve: HarnessPve, rng: random.Random, gone: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Change Proxmox behind Proximity's back; returns the containers destroyed this time."""
    for vmid, name in gone:
        pve.add_ct(vmid, name, node="pve1", status="stopped")
    cts = list(pve.cts)
    rng.shuffle(cts)
    n = len(cts)
    for ct in cts[: n * 5 // 100]:
        ct.status = "stopped" if ct.status == "running" else "running"
    for ct in cts[n * 5 // 100 : n * 7 // 100]:
        ct.node = NODES[(NODES.index(ct.node) + 1) % len(NODES)]
    destroyed = cts[n * 7 // 100 : n * 8 // 100]
    for ct in destroyed:
        pve.cts.remove(ct)
    return [(ct.vmid, ct.name) for ct in destroyed]


def _measure(px: Proximity, pve: HarnessPve, before: Callable[[], None] | None = None) -> dict[str, Any]:
    if before is not None:
        before()
    client = px._clients.get(px.hosts.get("lab").id)
    sent, logged = client.request_count, len(pve.recorded)
    began = time.perf_counter()
    report: ReconcileReport = px.maintenance.reconcile()
    wall = (time.perf_counter() - began) * 1000
    lab = next(h for h in report.hosts if h.host == "lab")
    return {
        "wall_ms": round(wall, 1),
        "requests_lab_client": client.request_count - sent,
        "requests_lab_fake": len(pve.recorded) - logged,
        "requests_by_host": {h.host: h.requests for h in report.hosts},
        "unreachable": [h.host for h in report.unreachable],
        "apps": lab.apps,
        "containers": lab.containers,
        "changes": len(report.changes),
        "vanished": len(report.vanished),
        "moved": len(report.moved),
    }


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [s["wall_ms"] for s in samples]
    return {
        "runs": len(samples),
        "wall_ms_median": round(statistics.median(walls), 1),
        "wall_ms_max": round(max(walls), 1),
        "requests_per_host_max": max(max(s["requests_by_host"].values()) for s in samples),
        "changes_median": statistics.median(s["changes"] for s in samples),
        "samples": samples,
    }


def _run(args: argparse.Namespace, database: str, tmp: Path, cert: str, key: str) -> dict[str, Any]:
    rng = random.Random(7)
    results: dict[str, Any] = {}
    database_url = create_pg_database() if database == "postgresql" else None
    try:
        with (
            serve_pve(cert, key) as (pve, _served),
            Proximity.local(
                database_url=database_url, data_dir=tmp / database, secret_key=Fernet.generate_key(), entry_points=False
            ) as px,
        ):
            px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=cert)
            began = time.perf_counter()
            _populate(px, pve, args.containers)
            results["setup_s"] = round(time.perf_counter() - began, 1)
            results["first"] = _summary([_measure(px, pve)])
            results["steady"] = _summary([_measure(px, pve) for _ in range(args.runs)])
            gone: list[tuple[int, str]] = []

            def churn() -> None:
                nonlocal gone
                gone = _churn(pve, rng, gone)

            results["churn"] = _summary([_measure(px, pve, churn) for _ in range(args.runs)])
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                closed = probe.getsockname()[1]
            px.hosts.add(
                "gone",
                url=f"https://127.0.0.1:{closed}",
                token_id=TOKEN_ID,
                token_secret=TOKEN_SECRET,
                ca_file=cert,
                check=False,
            )
            results["with an unreachable host"] = _summary([_measure(px, pve) for _ in range(args.runs)])
    finally:
        if database_url is not None:
            drop_pg_database(database_url)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (the machine's, 127.0.0.1:5432)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "reconcile.json")
    args = parser.parse_args()
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not databases or set(databases) - {"sqlite", "postgresql"}:
        parser.error("--databases takes sqlite and/or postgresql")
    logging.getLogger("proximity_sdk.operations.reconcile").setLevel(logging.ERROR)  # the unreachable host
    by_database: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="proximity-bench-") as tmp:
        cert, key = make_pki(tmp)
        for database in databases:
            by_database[database] = _run(args, database, Path(tmp), cert, key)
    scenarios = [r for results in by_database.values() for r in results.values() if isinstance(r, dict)]
    worst_wall = max(r["wall_ms_max"] for r in scenarios)
    worst_requests = max(r["requests_per_host_max"] for r in scenarios)
    output = {
        "what": "px.maintenance.reconcile() with N containers in fakepve and N app records",
        "command": "python bench/reconcile.py " + " ".join(sys.argv[1:]),
        "containers": args.containers,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "goals": GOALS,
        "met": {
            "requests_per_host": worst_requests <= GOALS["requests_per_host"],
            "wall_ms": worst_wall <= GOALS["wall_ms_max"],
        },
        "results": by_database,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print(f"reconcile: {args.containers} containers in fakepve, {args.containers} app records")
    print(f"{'database':<12}{'scenario':<26}{'runs':>5}{'median ms':>11}{'max ms':>9}{'req/host':>10}{'changes':>9}")
    for database, results in by_database.items():
        for name, r in results.items():
            if isinstance(r, dict):
                print(
                    f"{database:<12}{name:<26}{r['runs']:>5}{r['wall_ms_median']:>11}{r['wall_ms_max']:>9}"
                    f"{r['requests_per_host_max']:>10}{r['changes_median']:>9}"
                )
    print(f"goals: {GOALS} -> met: {output['met']}")
    print(f"written to {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")


if __name__ == "__main__":
    main()
