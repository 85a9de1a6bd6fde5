"""Benchmark: what each container operation costs on the real node (the sandbox in real mode).

``Sandbox.start(real=True)`` (root, LXC, lxc-net: ``scripts/real-node``), driven through its PVE
API and its nodes' shell as Proximity drives a node. Per run, one new Debian 12 container:

- ``create``: ``POST /nodes/pve1/lxc`` until the task ends (the template unpacked);
- ``start``: ``status/start`` until the task ends (``lxc-start``, RUNNING);
- ``lease``: from the start task's end until ``/interfaces`` reports the DHCP address;
- ``exec``: one ``pct exec ... true`` over SSH (``lxc-attach``);
- ``push``: ``pct push`` of 1 MiB (SFTP to the node, then into the container's mount namespace);
- ``vzdump``: a ``zstd`` backup of the running container; ``restore``: into a new VMID;
- ``clone``: a full clone of the (shut down) container; ``shutdown``: a clean shutdown;
- ``destroy``: ``DELETE`` until the task ends.

Median and max of ``--runs`` (seconds). Run from the repository root as root:
python bench/real_node.py [--runs 3]. Writes bench/results/real_node.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.shell import NodeShell
from proximity_sdk.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
NET = "name=eth0,bridge=vmbr0,ip=dhcp"


def _wait(client: ProxmoxClient, upid: str) -> None:
    while True:
        status = client.get(f"/nodes/pve1/tasks/{upid}/status")
        if status["status"] == "stopped":
            if status.get("exitstatus") != "OK":
                raise RuntimeError(f"task {upid} failed: {status.get('exitstatus')}")
            return
        time.sleep(0.05)


def _timed(call: Callable[[], Any]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def _lease(client: ProxmoxClient, vmid: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for item in client.get(f"/nodes/pve1/lxc/{vmid}/interfaces") or []:
            if item["name"] == "eth0" and item.get("inet"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"CT {vmid} got no lease within 60 s")


def _run(client: ProxmoxClient, shell: NodeShell, template: str, vmid: int) -> dict[str, float]:
    row: dict[str, float] = {}
    row["create"] = _timed(
        lambda: _wait(
            client,
            client.post(
                "/nodes/pve1/lxc",
                vmid=vmid,
                ostemplate=template,
                hostname=f"bench{vmid}",
                rootfs="local-lvm:8",
                net0=NET,
                memory=512,
            ),
        )
    )
    row["start"] = _timed(lambda: _wait(client, client.post(f"/nodes/pve1/lxc/{vmid}/status/start")))
    row["lease"] = _timed(lambda: _lease(client, vmid))
    row["exec"] = _timed(lambda: shell.pct_exec("pve1", vmid, "true", timeout=30))
    payload = os.urandom(1024 * 1024)
    row["push"] = _timed(lambda: shell.pct_push("pve1", vmid, payload, "/root/payload", timeout=60))
    row["vzdump"] = _timed(
        lambda: _wait(
            client, client.post("/nodes/pve1/vzdump", vmid=str(vmid), storage="local", compress="zstd", mode="snapshot")
        )
    )
    [volume] = [
        v
        for v in client.get("/nodes/pve1/storage/local/content", content="backup")
        if v["volid"].startswith(f"local:backup/vzdump-lxc-{vmid}-")
    ]
    row["restore"] = _timed(
        lambda: _wait(
            client,
            client.post(
                "/nodes/pve1/lxc", vmid=vmid + 1, ostemplate=volume["volid"], restore=1, storage="local-lvm", unique=1
            ),
        )
    )
    row["shutdown"] = _timed(lambda: _wait(client, client.post(f"/nodes/pve1/lxc/{vmid}/status/shutdown", timeout=60)))
    row["clone"] = _timed(lambda: _wait(client, client.post(f"/nodes/pve1/lxc/{vmid}/clone", newid=vmid + 2, full=1)))
    row["destroy"] = _timed(lambda: _wait(client, client.delete(f"/nodes/pve1/lxc/{vmid}")))
    for other in (vmid + 1, vmid + 2):
        _wait(client, client.delete(f"/nodes/pve1/lxc/{other}"))
    client.delete(f"/nodes/pve1/storage/local/content/{volume['volid']}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with Sandbox.start(real=True) as sandbox:
        template = f"local:vztmpl/{sandbox.pve.real_templates[0].name}"
        client = ProxmoxClient(
            url=sandbox.url,
            token_id=sandbox.token_id,
            token_secret=sandbox.token_secret,
            ca_file=sandbox.ca_file,
            timeout=(5.0, 120.0),
        )
        try:
            with NodeShell(sandbox.ssh) as shell:
                for run in range(args.runs):
                    rows.append(_run(client, shell, template, 200 + 10 * run))
        finally:
            client.close()
    result = {
        "benchmark": "real_node",
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "runs": args.runs,
        "template": template.split("/", 1)[1],
        "seconds": {
            key: {
                "median": round(statistics.median(r[key] for r in rows), 3),
                "max": round(max(r[key] for r in rows), 3),
            }
            for key in rows[0]
        },
    }
    out = ROOT / "bench" / "results" / "real_node.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
