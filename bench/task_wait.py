"""Benchmark: how late does wait_task notice a finished task, and how many polls does it cost?

A HarnessPve (fakepve) runs at time_scale 1 over HTTPS on loopback. Containers are started
with start tasks of known length (0.5, 2, 10 and 30 s); three waiters watch them at the same
time, each with its own client:

- ``wait_task``: ours (proximity_sdk.proxmox.tasks, default PollPolicy);
- ``fixed-1s``: the usual hand-written loop, poll then sleep 1 s;
- ``proxmoxer``: proxmoxer's ``Tasks.blocking_status`` (1 s interval, sleeps after the last poll too).

Added delay = when the waiter returned minus when the task's work ended in the fake. Polls =
status requests the fake saw for that task. Results go to bench/results/task_wait.json.

Run from the repository root:  python bench/task_wait.py [--trials N] [--lengths 0.5,2,10,30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proxmoxer.tools import Tasks  # noqa: E402

from proximity_sdk.proxmox.client import ProxmoxClient  # noqa: E402
from proximity_sdk.proxmox.tasks import PollPolicy, wait_task  # noqa: E402
from tests.harness.pve import HarnessPve, make_pki, serve_pve, token_client  # noqa: E402

STRATEGIES = ("wait_task", "fixed-1s", "proxmoxer")
GOALS = {
    "short_task_max_delay_ms": 250,  # tasks shorter than 5 s
    "long_task_max_delay_pct": 5.0,  # tasks of 5 s and more
    "polls_30s_max": 35,
}


def _fixed_interval(client: ProxmoxClient, upid: str) -> None:
    while True:
        if not client.task_status(upid).running:
            return
        time.sleep(1.0)


def _proxmoxer(client: ProxmoxClient, upid: str) -> None:
    api = client._connect()  # the proxmoxer object inside our client: same session, same TLS
    Tasks.blocking_status(api, upid, timeout=120, polling_interval=1)


def _one(
    pve: HarnessPve, ca: str, strategy: str, vmid: int, length: float, out: list[dict[str, Any]]
) -> None:
    with token_client(pve, ca) as client:
        upid = client.post(f"/nodes/pve1/lxc/{vmid}/status/start")
        if strategy == "wait_task":
            wait_task(client, upid, timeout=120)
        elif strategy == "fixed-1s":
            _fixed_interval(client, upid)
        else:
            _proxmoxer(client, upid)
        returned = time.monotonic()
    finished = pve.task_finished_at[upid]
    polls = sum(1 for r in pve.recorded if r.path.endswith("/status") and upid in r.path)
    delay = returned - finished
    out.append(
        {
            "strategy": strategy,
            "length_s": length,
            "delay_ms": round(delay * 1000, 1),
            "delay_pct": round(100 * delay / length, 2),
            "polls": polls,
        }
    )


def run(lengths: list[float], trials: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_pki(tmp)
        for _trial in range(trials):
            with serve_pve(cert, key, time_scale=1.0) as (pve, _served):
                threads = []
                vmid = 100
                for length in lengths:
                    for strategy in STRATEGIES:
                        pve.add_ct(vmid, name=f"ct{vmid}").start_secs = length
                        threads.append(
                            threading.Thread(target=_one, args=(pve, cert, strategy, vmid, length, results))
                        )
                        vmid += 1
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
    return results


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    keys = sorted(
        {(r["strategy"], r["length_s"]) for r in results}, key=lambda k: (STRATEGIES.index(k[0]), k[1])
    )
    for strategy, length in keys:
        mine = [r for r in results if r["strategy"] == strategy and r["length_s"] == length]
        rows.append(
            {
                "strategy": strategy,
                "length_s": length,
                "runs": len(mine),
                "delay_ms_mean": round(statistics.mean(r["delay_ms"] for r in mine), 1),
                "delay_ms_max": max(r["delay_ms"] for r in mine),
                "delay_pct_max": max(r["delay_pct"] for r in mine),
                "polls_max": max(r["polls"] for r in mine),
            }
        )
    return rows


def check_goals(rows: list[dict[str, Any]]) -> dict[str, bool]:
    ours = [r for r in rows if r["strategy"] == "wait_task"]
    return {
        "short_tasks_within_250ms": all(
            r["delay_ms_max"] <= GOALS["short_task_max_delay_ms"] for r in ours if r["length_s"] < 5
        ),
        "long_tasks_within_5pct": all(
            r["delay_pct_max"] <= GOALS["long_task_max_delay_pct"] for r in ours if r["length_s"] >= 5
        ),
        "polls_30s_within_35": all(
            r["polls_max"] <= GOALS["polls_30s_max"] for r in ours if r["length_s"] == 30
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--lengths", default="0.5,2,10,30")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "task_wait.json"))
    args = parser.parse_args()
    lengths = [float(x) for x in args.lengths.split(",")]
    began = time.monotonic()
    results = run(lengths, args.trials)
    rows = summarise(results)
    goals = check_goals(rows)
    report = {
        "bench": "task_wait",
        "what": "added delay between a task's end and the waiter returning, and status polls per task",
        "setup": "fakepve (HarnessPve) at time_scale 1 over HTTPS on 127.0.0.1; container start tasks of "
        "known length; the waiters run concurrently, one client each",
        "policy": asdict(PollPolicy()),
        "goals": GOALS,
        "goals_met": goals,
        "trials": args.trials,
        "wall_seconds": round(time.monotonic() - began, 1),
        "summary": rows,
        "runs": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'strategy':<10} {'task s':>7} {'delay ms (mean/max)':>20} {'delay %':>8} {'polls':>6}")
    for r in rows:
        print(
            f"{r['strategy']:<10} {r['length_s']:>7g} {r['delay_ms_mean']:>10.1f}/{r['delay_ms_max']:<9.1f} "
            f"{r['delay_pct_max']:>8.2f} {r['polls_max']:>6}"
        )
    print("goals:", ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in goals.items()))
    print(f"written to {args.out} ({report['wall_seconds']} s)")


if __name__ == "__main__":
    main()
