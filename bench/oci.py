"""Benchmark: a native OCI deploy next to a compose deploy and a hand-written proxmoxer OCI deploy.

fakepve (HarnessPve, reporting PVE 9.1.2) with tasks ending at once, so our own overhead shows; the
node shell is the real test sshd with the stand-ins (used by compose only). Per deploy (median of
``--runs``, each a new app; the image and the template are pulled once, in a warm-up):

- ``oci``: ``px.apps.deploy("uptime-kuma", strategy="oci")`` until ``wait()`` returns;
- ``compose``: the same app with ``strategy="compose"`` (Docker in a system container, via SSH);
- ``floor``: the Proxmox calls a careful human writes with proxmoxer for an OCI container:
  ``nextid``, create from the pulled image, poll, ``PUT config`` (env, host-managed network),
  start, poll, interfaces.

For each: wall time, Proxmox API requests, node-shell commands. Run from the repository root:
python bench/oci.py [--runs 5]. Writes bench/results/oci.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from _harness import ROOT, lab
from cryptography.fernet import Fernet
from proxmoxer import ProxmoxAPI

from proximity_sdk._client import Proximity
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET

LISTENING = "LISTEN 0 4096 0.0.0.0:3001 0.0.0.0:*\n"


def _wait(api: Any, node: str, upid: str) -> None:
    while api.nodes(node).tasks(upid).status.get()["status"] == "running":
        time.sleep(0.05)


def _floor(env: Any, api: Any, volid: str, n: int) -> None:
    vmid = int(api.cluster.nextid.get())
    upid = api.nodes("pve1").lxc.post(
        vmid=vmid,
        ostemplate=volid,
        hostname=f"floor-{n}",
        memory=512,
        rootfs="local-lvm:4",
        net0="name=eth0,bridge=vmbr0,ip=dhcp",
        unprivileged=1,
    )
    _wait(api, "pve1", upid)
    api.nodes("pve1").lxc(vmid).config.put(env="TZ=UTC", net0="name=eth0,bridge=vmbr0,ip=dhcp,host-managed=1")
    _wait(api, "pve1", api.nodes("pve1").lxc(vmid).status.start.post())
    api.nodes("pve1").lxc(vmid).interfaces.get()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    samples: dict[str, list[dict[str, float]]] = {"oci": [], "compose": [], "floor": []}
    with lab() as env:
        env.pve.version = "9.1.2"
        env.state.script("ss", stdout=LISTENING)
        with Proximity.local(data_dir=env.workdir / "px", secret_key=Fernet.generate_key(), entry_points=False) as px:
            px.hosts.add(
                "bench", url=env.pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=env.ca_file, ssh=env.ssh
            )
            px.settings.update(memory_overcommit=20.0)  # a dozen apps on the one fake node
            warm = px.apps.deploy("uptime-kuma", hostname="warm-oci", strategy="oci").wait(timeout=120)
            px.apps.deploy("uptime-kuma", hostname="warm-compose", strategy="compose").wait(timeout=120)
            volid = str(warm.config["template"])
            host, port = env.pve.url.removeprefix("https://").split(":")
            api = ProxmoxAPI(
                host,
                port=int(port),
                user="root@pam",
                token_name=TOKEN_ID.split("!")[1],
                token_value=TOKEN_SECRET,
                verify_ssl=env.ca_file,
            )

            def measure(name: str, action: Any) -> None:
                requests, shell = len(env.pve.recorded), len(env.state.calls())
                started = time.perf_counter()
                action()
                samples[name].append(
                    {
                        "wall_ms": (time.perf_counter() - started) * 1000,
                        "requests": len(env.pve.recorded) - requests,
                        "shell_commands": len(env.state.calls()) - shell,
                    }
                )

            for n in range(args.runs):
                measure(
                    "oci",
                    lambda n=n: px.apps.deploy("uptime-kuma", hostname=f"oci-{n}", strategy="oci").wait(timeout=120),
                )
                measure(
                    "compose",
                    lambda n=n: px.apps.deploy("uptime-kuma", hostname=f"cmp-{n}", strategy="compose").wait(
                        timeout=120
                    ),
                )
                measure("floor", lambda n=n: _floor(env, api, volid, n))
    results: dict[str, Any] = {"runs": args.runs}
    for name, rows in samples.items():
        results[name] = {key: round(statistics.median(r[key] for r in rows), 1) for key in rows[0]}
    results["oci_overhead_ms"] = round(results["oci"]["wall_ms"] - results["floor"]["wall_ms"], 1)
    out = Path(ROOT) / "bench" / "results" / "oci.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
