"""Benchmark: 20 concurrent backups of apps on one node, queued per node by Proximity.

fakepve (HarnessPve) runs at ``--time-scale`` (default 0.01) with each vzdump taking
``--vzdump-secs`` PVE seconds (default 30, so 0.3 s of wall time) once it holds the node's global
vzdump lock. Three ways are measured:

- ours: ``px.backups.create(...)`` for every app at once, then ``wait()`` on all: wall time,
  API requests the fake received (polls included), vzdumps that ever ran at once on the node,
  how many backups waited for their turn;
- naive, no queue (what the original did): 20 ``POST /vzdump`` at once with ``lockwait=0``
  (PVE gives up at once when another vzdump holds the lock): how many fail;
- naive, PVE queues: the same with the default ``lockwait`` (180 min): all succeed, each task
  waiting inside PVE (a real PVE keeps a worker process per waiting vzdump).

The floor is 20 x vzdump_secs x time_scale (vzdump runs one at a time per node).
Run from the repository root:  python bench/backup.py [--apps 20]
Writes bench/results/backup.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from _harness import ROOT, lab
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.errors import TaskFailedError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.proxmox.tasks import wait_task
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--vzdump-secs", type=float, default=30.0)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "apps": args.apps,
        "time_scale": args.time_scale,
        "vzdump_secs": args.vzdump_secs,
        "floor_seconds": round(args.apps * args.vzdump_secs * args.time_scale, 2),
    }
    with lab(time_scale=args.time_scale) as env:
        pve = env.pve
        pve.on_archive = env.state.set_volume_path
        with Proximity.local(
            data_dir=env.workdir / "px", secret_key=Fernet.generate_key(), entry_points=False, node_slots=4
        ) as px:
            host = px.hosts.add(
                "bench", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=env.ca_file, ssh=env.ssh
            )
            client = px._clients.get(host.id)
            apps = []
            for n in range(args.apps):
                upid = client.post(
                    "/nodes/pve1/lxc",
                    vmid=300 + n,
                    ostemplate=TEMPLATE,
                    hostname=f"app-{n}",
                    rootfs="local-lvm:4",
                    net0="name=eth0,bridge=vmbr0,ip=dhcp",
                )
                wait_task(client, str(upid))
                apps.append(
                    px.store.apps.create(
                        hostname=f"app-{n}", host_id=host.id, status=AppStatus.STOPPED, node="pve1", vmid=300 + n
                    )
                )
            pve.vzdump_secs = args.vzdump_secs

            sent = len(pve.recorded)
            started = time.monotonic()
            ops = [px.backups.create(app.id) for app in apps]
            backups = [op.wait(timeout=600) for op in ops]
            wall = time.monotonic() - started
            results["ours"] = {
                "wall_seconds": round(wall, 2),
                "succeeded": sum(b.status == "completed" for b in backups),
                "requests": len(pve.recorded) - sent,
                "requests_per_backup": round((len(pve.recorded) - sent) / args.apps, 1),
                "max_parallel_vzdump_on_node": pve.vzdump_parallel["pve1"],
                "waited_for_their_turn": sum(any(e.message.startswith("waiting:") for e in op.events()) for op in ops),
                "waited_inside_pve": pve.vzdump_waited["pve1"],
            }

            for label, lockwait in (("naive_no_queue_lockwait_0", 0), ("naive_pve_queues_default_lockwait", None)):
                pve.vzdump_parallel["pve1"] = 0
                pve.vzdump_waited["pve1"] = 0
                sent = len(pve.recorded)
                started = time.monotonic()
                extra = {} if lockwait is None else {"lockwait": lockwait}
                upids = [
                    client.post(
                        "/nodes/pve1/vzdump",
                        vmid=str(app.vmid),
                        storage="local",
                        mode="snapshot",
                        compress="zstd",
                        remove=0,
                        **extra,
                    )
                    for app in apps
                ]
                failed = 0
                for upid in upids:
                    try:
                        wait_task(client, str(upid), timeout=600)
                    except TaskFailedError:
                        failed += 1
                results[label] = {
                    "wall_seconds": round(time.monotonic() - started, 2),
                    "succeeded": args.apps - failed,
                    "failed": failed,
                    "requests": len(pve.recorded) - sent,
                    "waited_inside_pve": pve.vzdump_waited["pve1"],
                }
    out = Path(ROOT) / "bench" / "results" / "backup.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
