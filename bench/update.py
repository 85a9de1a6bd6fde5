"""Benchmark: what an app update with a safety net costs, next to a hand-written update without one.

fakepve (HarnessPve) with tasks ending at once (our own overhead shows) and the real sshd with the
stand-ins. One app (two services, one on a floating tag) is deployed from a bench catalog, then:

- ``check``: ``px.apps.updates()`` after a new digest was published (it pulls in the container);
- ``update``: ``px.apps.update()`` to a newer catalog version (safety backup, project, pull,
  recreate, health, record);
- ``failed_update``: an update whose health check fails, restored from the safety backup;
- ``baseline``: what a hand-written proxmoxer + paramiko script does for an update *without* a safety
  net: ``pct push`` the new compose file, ``pct exec`` pull and ``up -d`` (no backup, no health check,
  no rollback, no record).

For each: wall time, Proxmox API requests, node-shell commands (``pct`` calls). Repeated ``--runs``
times (median). Run from the repository root:  python bench/update.py
Writes bench/results/update.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time
from pathlib import Path
from typing import Any

import paramiko
from _harness import ROOT, lab
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationFailed
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET

LISTENING = "LISTEN 0 4096 0.0.0.0:3000 0.0.0.0:*\n"


def _entry(version: str) -> dict[str, Any]:
    return {
        "id": "notes",
        "name": "Notes",
        "version": version,
        "description": "bench",
        "category": "Bench",
        "docker_compose": {
            "services": {
                "web": {
                    "image": f"ghcr.io/example/notes-web:{version}",
                    "ports": ["3000:3000"],
                    "environment": {"DB_PASSWORD": "${DB_PASSWORD}"},
                },
                "db": {"image": "postgres:latest", "environment": {"POSTGRES_PASSWORD": "${DB_PASSWORD}"}},
            }
        },
        "ports": [3000],
        "main_service": "web",
        "main_port": 3000,
        "os_template": "debian-12-standard",
        "secrets": [{"name": "DB_PASSWORD"}],
    }


def _measure(env: Any, action: Any) -> dict[str, float]:
    requests, shell = len(env.pve.recorded), len(env.state.calls("pct"))
    started = time.perf_counter()
    action()
    return {
        "wall_ms": (time.perf_counter() - started) * 1000,
        "requests": len(env.pve.recorded) - requests,
        "shell_commands": len(env.state.calls("pct")) - shell,
    }


def _baseline(env: Any, vmid: int, compose: str) -> None:
    """A hand-written update: paramiko to the node, pct push + pct exec (what a script would do)."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(env.sshd.known_hosts))
    client.connect(
        env.sshd.host,
        port=env.sshd.port,
        username=env.sshd.user,
        key_filename=str(env.sshd.client_key),
        look_for_keys=False,
        allow_agent=False,
    )
    try:
        with client.open_sftp() as sftp, sftp.open("/tmp/bench-compose.yaml", "w") as fh:  # noqa: S108
            fh.write(compose)
        for command in (
            f"pct push {vmid} /tmp/bench-compose.yaml /opt/proximity/notes/compose.yaml",
            f"pct exec {vmid} -- sh -c "
            + shlex.quote("cd /opt/proximity/notes && docker compose pull && docker compose up -d"),
        ):
            _, out, _ = client.exec_command(command)
            if out.channel.recv_exit_status() != 0:
                raise RuntimeError(command)
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"check": [], "update": [], "failed_update": [], "baseline": []}
    with lab() as env:
        env.state.script("ss", stdout=LISTENING)
        env.pve.container_files = lambda vmid: env.state.path / "ct" / str(vmid)
        catalog = env.workdir / "catalog"
        catalog.mkdir()
        (catalog / "notes.json").write_text(json.dumps(_entry("1.0")))
        with Proximity.local(
            data_dir=env.workdir / "px", secret_key=Fernet.generate_key(), entry_points=False, catalog_paths=[catalog]
        ) as px:
            px.hosts.add(
                "bench", url=env.pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=env.ca_file, ssh=env.ssh
            )
            px.settings.update(health_timeout_seconds=1)
            app = px.apps.deploy("notes", hostname="notes").wait(timeout=120)
            for run in range(args.runs):
                (env.state.path / "registry.json").write_text(json.dumps({"postgres:latest": f"sha256:{run:064x}"}))
                runs["check"].append(_measure(env, lambda: px.apps.updates()))
                (catalog / "notes.json").write_text(json.dumps(_entry(f"1.{run + 1}")))
                px.catalog.reload()
                runs["update"].append(_measure(env, lambda: px.apps.update(app.id).wait(timeout=120)))
                # the next version never listens: one failed check, then the restored app listens again
                (catalog / "notes.json").write_text(json.dumps(_entry(f"9.{run}")))
                px.catalog.reload()
                rules = env.state.path / "rules" / "ss.json"  # first match wins: this one goes first
                rules.write_text(
                    json.dumps(
                        [
                            {"match": None, "times": 1, "stdout": "", "stderr": "", "exit_code": 0},
                            *json.loads(rules.read_text()),
                        ]
                    )
                )

                def failing() -> None:
                    try:
                        px.apps.update(app.id).wait(timeout=120)
                    except OperationFailed:
                        return
                    raise AssertionError("the update should have failed its health check")

                runs["failed_update"].append(_measure(env, failing))
                compose = json.dumps({"services": {"web": {"image": f"ghcr.io/example/notes-web:2.{run}"}}})
                runs["baseline"].append(_measure(env, lambda text=compose: _baseline(env, int(app.vmid or 0), text)))
    results: dict[str, Any] = {"runs": args.runs}
    for name, samples in runs.items():
        results[name] = {key: round(statistics.median(s[key] for s in samples), 1) for key in samples[0]}
    out = Path(ROOT) / "bench" / "results" / "update.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
