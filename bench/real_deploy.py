"""Benchmark: a real deploy on a real node, split by step, and Proximity's own time beyond the node's.

The sandbox's Proxmox in real mode (every container a real LXC container, tasks at time scale 1),
the real sshd with ``pct`` acting on those containers, the test images in a local registry on the
LXC bridge (tests/harness/images.py), trusted through the host's registry settings. Each deploy
is a fresh container from the cached Debian 12 template: Proximity installs Docker in it (apt-get
from the Debian mirror), pulls the one-service web app and waits until it serves.

Per deploy it reports, from the operation's own events (their times):

- the steps: template, create, start, address, docker (Docker install), project, pull, up (from
  "images pulled" to the end of the step), health (including the 5 s settling period);
- where the wall time went, as exclusive sections (bench/_harness.py ``Clock``): the node shell
  (scripts running in the container), Proxmox HTTP, the store; Proximity's own time is the CPU
  time of the caller and the operation worker (what Proximity itself computed), and "waiting" is
  what is left (polling sleeps between task-status requests, DHCP, settling).

Needs root, LXC and lxc-net's bridge (scripts/real-node) and umoci, skopeo, docker-registry and
busybox-static. Run from the repository root:  python bench/real_deploy.py [--deploys 2]
Writes bench/results/real_deploy.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import ROOT, Clock, _point_state, instrument, median
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.sandbox._real import _lxc
from proximity_sdk.sandbox._real._templates import cached_templates, ensure_template
from tests.harness.images import LocalRegistry, build_images, catalog_entries, missing_tools
from tests.harness.pve import HOST, PASSWORD, TOKEN_ID, TOKEN_SECRET, USER, ServedPve, make_pki
from tests.harness.real_node import RealHarnessPve
from tests.harness.sshd import NODE_ADDRESSES, start_sshd

STEPS = ("place", "reserve", "template", "create", "start", "address", "docker", "project", "pull", "up", "health")


def _steps(events: list[Any]) -> dict[str, float]:
    """Seconds per step from the events; "up" split at the "images pulled" line into pull and up."""
    started: dict[str, Any] = {}
    out: dict[str, float] = {}
    for e in events:
        if e.message == f"{e.step}: started":
            started[e.step] = e.time
        elif e.message == "images pulled" and "up" in started:
            out["pull"] = (e.time - started["up"]).total_seconds()
            started["up"] = e.time
        elif e.step in started and e.message == f"{e.step}: done":
            out[e.step] = out.get(e.step, 0.0) + (e.time - started.pop(e.step)).total_seconds()
    return {s: round(out[s], 3) for s in STEPS if s in out}


def run(deploys: int) -> dict[str, Any]:
    problems = _lxc.missing() + missing_tools()
    if problems:
        raise SystemExit("cannot run a real node here: " + "; ".join(problems))
    template = ensure_template("bookworm")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="proximity-bench-real-") as tmp:
        workdir = Path(tmp)
        cert, key = make_pki(workdir)
        layout = Path(os.environ.get("PROXIMITY_IMAGE_CACHE", "/var/cache/proximity/images")) / "oci"
        tags = build_images(layout)
        registry = LocalRegistry(workdir / "registry")
        registry.start()
        sshd = start_sshd(workdir / "sshd")
        fake = None
        served = None
        try:
            for tag in tags:
                registry.push(layout, tag)
            state = workdir / "standin-state"
            state.mkdir()
            _point_state(sshd, state)
            others = [t for t in cached_templates() if t.major != template.major]
            fake = RealHarnessPve(user=USER, password=PASSWORD, host=HOST, port=0, templates=[template, *others])
            fake.time_scale = 1.0
            fake.apitokens[TOKEN_ID] = TOKEN_SECRET
            fake.node_table = state / "nodes.json"
            fake.node_addresses = {address: node for node, address in NODE_ADDRESSES.items()}
            fake.nodes.clear()
            for node in NODE_ADDRESSES:
                fake.add_node(node)
            fake.template_volid = fake.add_template("local", template)
            served = ServedPve(fake, cert, key)
            fake.serving = served
            catalog = workdir / "catalog"
            catalog.mkdir()
            for name, entry in catalog_entries(registry).items():
                (catalog / name).write_text(json.dumps(entry))
            access = SshAccess(
                user=sshd.user,
                port=sshd.port,
                key_file=str(sshd.client_key),
                known_hosts=str(sshd.known_hosts),
                addresses=dict(NODE_ADDRESSES),
                connect_timeout=10,
            )
            clock = Clock()
            with Proximity.local(
                data_dir=workdir / "px", secret_key=Fernet.generate_key(), entry_points=False, catalog_paths=[catalog]
            ) as px:
                px.hosts.add(
                    "real", url=fake.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=cert, ssh=access
                )
                px.hosts.set_registries("real", insecure=[registry.address])
                px.settings.update(default_memory_mb=1024)
                undo = instrument(px, clock)
                try:
                    for i in range(deploys):
                        clock.reset()
                        began, cpu = time.perf_counter(), time.thread_time()
                        handle = px.apps.deploy("rweb", hostname=f"bench-{i}")
                        caller_cpu = time.thread_time() - cpu
                        app = handle.wait(timeout=900)
                        wall = time.perf_counter() - began
                        events = list(handle.events(follow=False))
                        section = {cat: sec for (_role, cat), sec in clock.times.items()}
                        shell = sum(s for c, s in section.items() if c == "node shell")
                        http = sum(s for c, s in section.items() if c == "proxmox http")
                        store = sum(s for c, s in section.items() if c.startswith("store."))
                        own_cpu = caller_cpu + clock.worker_cpu
                        results.append(
                            {
                                "wall_s": round(wall, 3),
                                "steps_s": _steps(events),
                                "node_shell_s": round(shell, 3),
                                "proxmox_http_s": round(http, 3),
                                "store_s": round(store, 3),
                                "own_cpu_s": round(own_cpu, 3),
                                "waiting_s": round(wall - shell - http - store, 3),
                                "url": app.url,
                            }
                        )
                        print(f"deploy {i}: {wall:.1f} s  {results[-1]['steps_s']}", flush=True)
                        px.apps.delete(app.id).wait(timeout=300)
                finally:
                    undo()
        finally:
            if served is not None:
                served.stop()
            if fake is not None:
                fake.destroy_real_containers()
            sshd.stop()
            registry.stop()
    summary = {
        "wall_s_median": round(median([r["wall_s"] for r in results]), 3),
        "steps_s_median": {s: round(median([r["steps_s"].get(s, 0.0) for r in results]), 3) for s in STEPS},
        "own_cpu_s_median": round(median([r["own_cpu_s"] for r in results]), 3),
        "node_shell_s_median": round(median([r["node_shell_s"] for r in results]), 3),
        "proxmox_http_s_median": round(median([r["proxmox_http_s"] for r in results]), 3),
        "store_s_median": round(median([r["store_s"] for r in results]), 3),
        "waiting_s_median": round(median([r["waiting_s"] for r in results]), 3),
    }
    return {
        "bench": "real_deploy",
        "deploys": deploys,
        "template": template.name,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "summary": summary,
        "runs": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploys", type=int, default=2)
    args = parser.parse_args()
    report = run(args.deploys)
    out = ROOT / "bench" / "results" / "real_deploy.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    s = report["summary"]
    print(f"\nmedian of {args.deploys} real deploys: {s['wall_s_median']} s")
    for step, sec in s["steps_s_median"].items():
        print(f"  {step:<9} {sec:8.3f} s")
    print(
        f"  node shell {s['node_shell_s_median']} s, Proxmox HTTP {s['proxmox_http_s_median']} s, "
        f"store {s['store_s_median']} s, waiting {s['waiting_s_median']} s; "
        f"Proximity's own CPU {s['own_cpu_s_median']} s"
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
