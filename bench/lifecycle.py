"""Benchmark: our per-operation overhead next to a minimal hand-written proxmoxer script (the floor).

fakepve (HarnessPve) runs at time scale 0, so every Proxmox task ends inside its POST and what
is left is our own cost. The node shell is the real test sshd with the `pct` stand-in.

For deploy, stop, start, restart and delete (one cycle = the five in that order, repeated
``--cycles`` times after one warm-up cycle that downloads the template and opens the
connections) it measures:

- ours: ``px.apps.<op>(...)`` until ``.wait()`` returns; the API requests the fake received in
  that window (logins and polls included; ``client.request_count`` is checked against it); the
  node-shell time, i.e. the time inside ``NodeShell.run/pct_exec/pct_push/pct_pull`` minus the
  output callbacks they call (those write events to our store: that is our cost, not the shell's);
- the floor: the same Proxmox calls a careful human writes with proxmoxer (token auth,
  ``verify_ssl=<CA>``, one session reused), no node shell: deploy = ``cluster/resources``
  (placement) + ``nextid`` + template listing + create + poll + start + poll + interfaces;
  stop = shutdown + poll; start = start + poll + interfaces; restart = stop's + start's calls;
  delete = status + stop + poll + destroy (purge) + poll.

Overhead = our wall time - our node-shell time - the floor's wall time (medians). Requests ratio
= ours / floor. Where the time goes is attributed by wrapping our collaborators (exclusive time
per store method, HTTP, shell, the wait() wake-up); ``--profile`` adds cProfile of the operation
workers for extra deploys (after the measured cycles, so it does not skew them).

Run from the repository root:  python bench/lifecycle.py [--cycles 10] [--profile]
Writes bench/results/lifecycle.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _harness import (
    ROOT,
    Clock,
    Lab,
    instrument,
    lab,
    median,
    percentile,
    profile_workers,
    section_cost_us,
    store_costs,
)
from cryptography.fernet import Fernet
from proxmoxer import ProxmoxAPI

from proximity_sdk._client import Proximity
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET

OPS = ("deploy", "stop", "start", "restart", "delete")
GOALS = {"requests_ratio_max": 1.5, "deploy_overhead_ms_max": 50.0}
CATALOG_APP = "gitea"
LISTENING = "LISTEN 0 4096 0.0.0.0:3000 0.0.0.0:*\n"


# ------------------------------------------------------------------------------------------- ours


def _classify_requests(recorded: list[Any]) -> dict[str, int]:
    counts = {"total": len(recorded), "logins": 0, "task_status": 0, "task_log": 0}
    for r in recorded:
        if r.path.endswith("/access/ticket"):
            counts["logins"] += 1
        elif "/tasks/" in r.path and r.path.endswith("/status"):
            counts["task_status"] += 1
        elif "/tasks/" in r.path and r.path.endswith("/log"):
            counts["task_log"] += 1
    return counts


class Ours:
    """Proximity.local on SQLite (the default store) with one host: the lab's fake PVE and sshd."""

    def __init__(self, the_lab: Lab, clock: Clock) -> None:
        self.lab = the_lab
        self.clock = clock
        self.px = Proximity.local(data_dir=the_lab.workdir / "px", secret_key=Fernet.generate_key(), entry_points=False)
        host = self.px.hosts.add(
            "lab",
            url=the_lab.pve.url,
            token_id=TOKEN_ID,
            token_secret=TOKEN_SECRET,
            ca_file=the_lab.ca_file,
            ssh=the_lab.ssh,
        )
        self.host_id = host.id
        self.app_id: str | None = None
        self.last_op_id: str | None = None
        self.restore = instrument(self.px, clock)

    def close(self) -> None:
        self.restore()  # idempotent: every undo puts back the original
        self.px.close()

    def _call(self, op: str, hostname: str) -> Any:
        if op == "deploy":
            return self.px.apps.deploy(CATALOG_APP, hostname=hostname)
        assert self.app_id is not None
        return getattr(self.px.apps, op)(self.app_id)

    def run(self, op: str, hostname: str) -> dict[str, Any]:
        pve, clock = self.lab.pve, self.clock
        client = self.px._clients.get(self.host_id)
        first, counted = len(pve.recorded), client.request_count
        clock.reset()
        began, cpu = time.perf_counter(), time.thread_time()
        clock.caller_active = True
        try:
            with clock.section("caller (validation, rendering)"):
                handle = self._call(op, hostname)
        finally:
            clock.caller_active = False
        submitted, caller_cpu = time.perf_counter(), time.thread_time() - cpu
        result = handle.wait(timeout=120)
        ended = time.perf_counter()
        self.last_op_id = handle.id
        requests = _classify_requests(pve.recorded[first:])
        if op == "deploy":
            self.app_id = result.id
        span = clock.worker_span or (submitted, ended)
        times = {f"{role}: {cat}": round(sec * 1000, 3) for (role, cat), sec in sorted(clock.times.items())}
        calls = {f"{role}: {cat}": n for (role, cat), n in sorted(clock.calls.items())}
        cpu_times = {f"{role}: {cat}": round(sec * 1000, 3) for (role, cat), sec in sorted(clock.cpu.items())}
        shell = sum(sec for (_role, cat), sec in clock.times.items() if cat == "node shell")
        events = list(handle.events(follow=False))
        return {
            "op": op,
            "wall_ms": round((ended - began) * 1000, 3),
            "shell_ms": round(shell * 1000, 3),
            "shell_steps_ms": round(_shell_steps_ms(events), 3),
            "submit_ms": round((submitted - began) * 1000, 3),
            "cpu_ms": round((caller_cpu + clock.worker_cpu) * 1000, 3),
            "shell_cpu_ms": round(sum(sec for (_r, cat), sec in clock.cpu.items() if cat == "node shell") * 1000, 3),
            "worker_ms": round((span[1] - span[0]) * 1000, 3),
            "wait_lag_ms": round(max(0.0, ended - span[1]) * 1000, 3),
            "requests": requests,
            "client_request_count": client.request_count - counted,
            "events": len(events),
            "times_ms": times,
            "cpu_times_ms": cpu_times,
            "calls": calls,
        }


_SHELL_STEPS = ("docker", "project", "up", "health")


def _shell_steps_ms(events: list[Any]) -> float:
    """Cross-check of the shell time: the span of the node-shell steps by their event times
    (includes the event writes inside those steps, so it reads a little higher)."""
    started: dict[str, Any] = {}
    total = 0.0
    for e in events:
        if e.step in _SHELL_STEPS and e.message == f"{e.step}: started":
            started[e.step] = e.time
        elif e.step in started and e.message == f"{e.step}: done":
            total += (e.time - started.pop(e.step)).total_seconds() * 1000
    return total


# ------------------------------------------------------------------------------------------ floor


class Floor:
    """What a careful human writes with proxmoxer for the same operations (no node shell)."""

    def __init__(self, the_lab: Lab) -> None:
        url = urlsplit(the_lab.pve.url)
        user, token_name = TOKEN_ID.split("!")
        self.lab = the_lab
        self.api = ProxmoxAPI(
            url.hostname,
            port=url.port,
            user=user,
            token_name=token_name,
            token_value=TOKEN_SECRET,
            verify_ssl=the_lab.ca_file,
            timeout=30,
        )
        self.node: str | None = None
        self.vmid: int | None = None

    def _wait(self, node: str, upid: str) -> None:
        while True:
            status = self.api.nodes(node).tasks(upid).status.get()
            if status["status"] != "running":
                if status.get("exitstatus") != "OK":
                    raise RuntimeError(f"task {upid} failed: {status.get('exitstatus')}")
                return
            time.sleep(0.1)

    def _address(self, node: str, vmid: int) -> str:
        for _ in range(600):
            for iface in self.api.nodes(node).lxc(vmid).interfaces.get() or []:
                if iface.get("name") == "eth0" and iface.get("inet"):
                    return str(iface["inet"]).split("/")[0]
            time.sleep(0.2)
        raise RuntimeError(f"CT {vmid} got no address")

    def deploy(self, hostname: str) -> None:
        resources = self.api.cluster.resources.get()
        promised: dict[str, int] = defaultdict(int)
        for r in resources:
            if r.get("type") in ("lxc", "qemu"):
                promised[r["node"]] += int(r.get("maxmem") or 0)
        nodes = [r for r in resources if r.get("type") == "node" and r.get("status") == "online"]
        node = max(nodes, key=lambda n: 2 * int(n.get("maxmem") or 0) - promised[n["node"]])["node"]
        vmid = int(self.api.cluster.nextid.get())
        templates = self.api.nodes(node).storage("local").content.get(content="vztmpl")
        volid = next(t["volid"] for t in templates if "debian-12-standard" in t["volid"])
        upid = self.api.nodes(node).lxc.post(
            vmid=vmid,
            ostemplate=volid,
            hostname=hostname,
            cores=2,
            memory=2048,
            swap=512,
            rootfs="local-lvm:8",
            unprivileged=1,
            features="nesting=1",
            net0="name=eth0,bridge=vmbr0,ip=dhcp",
            tags="proximity",
            onboot=0,
            start=0,
            password=secrets.token_urlsafe(24),
            description=f"floor {hostname}",
        )
        self._wait(node, upid)
        self._wait(node, self.api.nodes(node).lxc(vmid).status.start.post())
        self._address(node, vmid)
        self.node, self.vmid = node, vmid

    def stop(self) -> None:
        assert self.node is not None and self.vmid is not None
        self._wait(self.node, self.api.nodes(self.node).lxc(self.vmid).status.shutdown.post(timeout=60))

    def start(self) -> None:
        assert self.node is not None and self.vmid is not None
        self._wait(self.node, self.api.nodes(self.node).lxc(self.vmid).status.start.post())
        self._address(self.node, self.vmid)

    def restart(self) -> None:
        self.stop()
        self.start()

    def delete(self) -> None:
        assert self.node is not None and self.vmid is not None
        ct = self.api.nodes(self.node).lxc(self.vmid)
        if ct.status.current.get()["status"] == "running":
            self._wait(self.node, ct.status.stop.post())
        self._wait(self.node, ct.delete(purge=1, **{"destroy-unreferenced-disks": 1}))
        self.vmid = None

    def run(self, op: str, hostname: str) -> dict[str, Any]:
        pve = self.lab.pve
        first = len(pve.recorded)
        began, cpu = time.perf_counter(), time.thread_time()
        if op == "deploy":
            self.deploy(hostname)
        else:
            getattr(self, op)()
        ended = time.perf_counter()
        return {
            "op": op,
            "wall_ms": round((ended - began) * 1000, 3),
            "cpu_ms": round((time.thread_time() - cpu) * 1000, 3),
            "requests": _classify_requests(pve.recorded[first:]),
        }


# ------------------------------------------------------------------------------------------ driver


def _cycle(runner: Ours | Floor, prefix: str, index: int) -> list[dict[str, Any]]:
    return [runner.run(op, f"{prefix}-{index}") for op in OPS]


def _profile(ours: Ours, pairs: int) -> dict[str, Any]:
    def drive() -> None:
        for i in range(pairs):
            ours.run("deploy", f"prof-{i}")
            ours.run("delete", f"prof-{i}")

    return profile_workers(ours.px, drive, per=pairs, what=f"{pairs} deploy+delete pairs", top=25)


def run(cycles: int, profile_deploys: int) -> dict[str, Any]:
    clock = Clock()
    with lab(time_scale=0.0) as the_lab:
        the_lab.state.script("ss", stdout=LISTENING)  # the health check finds port 3000 listening
        ours = Ours(the_lab, clock)
        try:
            floor = Floor(the_lab)
            warm_ours = _cycle(ours, "warm-ours", 0)  # downloads the template, opens SSH and HTTPS
            warm_floor = _cycle(floor, "warm-floor", 0)
            ours_runs: list[dict[str, Any]] = []
            floor_runs: list[dict[str, Any]] = []
            for i in range(1, cycles + 1):  # interleaved, so both see the same fake and machine state
                ours_runs += _cycle(ours, "ours", i)
                floor_runs += _cycle(floor, "floor", i)
            profile = _profile(ours, profile_deploys) if profile_deploys else None
            ours.restore()  # plain calls from here on
            assert ours.last_op_id is not None
            costs = store_costs(ours.px.store, ours.last_op_id, the_lab.workdir)
        finally:
            ours.close()
    return {
        "warmup": {"ours": warm_ours, "floor": warm_floor},
        "ours": ours_runs,
        "floor": floor_runs,
        "profile": profile,
        "store_costs_ms": costs,
    }


def _merge(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for r in runs:
        for name, value in r[key].items():
            total[name] += value
    return {name: round(value / len(runs), 3) for name, value in sorted(total.items(), key=lambda kv: -kv[1])}


def _attribute(mine: list[dict[str, Any]], overhead_ms: float, floor_wall_ms: float) -> dict[str, float]:
    """The mean overhead split into what our collaborators took (means of their exclusive times).
    ``proxmox http beyond the floor`` is our HTTP time minus the floor's whole wall time: extra
    requests and client-side cost per request."""
    times = _merge(mine, "times_ms")

    def total(pick: Callable[[str], bool]) -> float:
        return sum(ms for name, ms in times.items() if pick(name.split(": ", 1)[1]))

    events = ("store.operations.append_event", "store.operations.append_events")
    steps = ("store.operations.begin_step", "store.operations.set_step", "store.operations.control")
    parts = {
        "event log writes (operations.append_event[s])": total(lambda c: c in events),
        "step boundaries (operations.begin_step + control)": total(lambda c: c in steps),
        "app record (apps.*)": total(lambda c: c.startswith("store.apps.")),
        "operation record (other operations.*)": total(
            lambda c: c.startswith("store.operations.") and c not in events + steps
        ),
        "settings, hosts, reservations reads/writes": total(
            lambda c: c.startswith(("store.settings.", "store.hosts.", "store.reservations."))
        ),
        "proxmox http beyond the floor": total(lambda c: c == "proxmox http") - floor_wall_ms,
        "python: engine, steps, validation, rendering": total(
            lambda c: c in ("engine and operation code", "caller (validation, rendering)", "shell output callback")
        ),
        "wait() wake-up lag": statistics.mean(r["wait_lag_ms"] for r in mine),
    }
    parts["unattributed (threads, GIL, noise)"] = overhead_ms - sum(parts.values())
    return {name: round(ms, 1) for name, ms in parts.items()}


def summarise(ours_runs: list[dict[str, Any]], floor_runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for op in OPS:
        mine = [r for r in ours_runs if r["op"] == op]
        base = [r for r in floor_runs if r["op"] == op]
        net = [r["wall_ms"] - r["shell_ms"] for r in mine]
        floor_wall = [r["wall_ms"] for r in base]
        ours_requests = max(r["requests"]["total"] for r in mine)
        floor_requests = max(r["requests"]["total"] for r in base)
        rows.append(
            {
                "op": op,
                "runs": len(mine),
                "ours_wall_ms_median": round(median([r["wall_ms"] for r in mine]), 1),
                "ours_wall_ms_p90": round(percentile([r["wall_ms"] for r in mine], 90), 1),
                "ours_shell_ms_median": round(median([r["shell_ms"] for r in mine]), 1),
                "ours_net_ms_median": round(median(net), 1),
                "ours_net_ms_p90": round(percentile(net, 90), 1),
                "ours_cpu_ms_median": round(median([r["cpu_ms"] for r in mine]), 1),
                "ours_cpu_ms_without_shell_median": round(median([r["cpu_ms"] - r["shell_cpu_ms"] for r in mine]), 1),
                "floor_cpu_ms_median": round(median([r["cpu_ms"] for r in base]), 1),
                "floor_wall_ms_median": round(median(floor_wall), 1),
                "floor_wall_ms_p90": round(percentile(floor_wall, 90), 1),
                "overhead_ms_median": round(median(net) - median(floor_wall), 1),
                "overhead_ms_p90": round(percentile(net, 90) - percentile(floor_wall, 90), 1),
                "ours_requests": ours_requests,
                "ours_requests_min": min(r["requests"]["total"] for r in mine),
                "ours_requests_breakdown": mine[0]["requests"],
                "client_count_matches": all(r["client_request_count"] == r["requests"]["total"] for r in mine),
                "floor_requests": floor_requests,
                "requests_ratio": round(ours_requests / floor_requests, 2),
                "ours_events": max(r["events"] for r in mine),
                "ours_store_calls": max(sum(n for name, n in r["calls"].items() if ": store." in name) for r in mine),
                "wait_lag_ms_median": round(median([r["wait_lag_ms"] for r in mine]), 1),
                "wait_lag_ms_max": round(max(r["wait_lag_ms"] for r in mine), 1),
                "submit_ms_median": round(median([r["submit_ms"] for r in mine]), 1),
                "overhead_ms_mean": round(statistics.mean(net) - statistics.mean(floor_wall), 1),
                "overhead_attribution_ms": _attribute(
                    mine, statistics.mean(net) - statistics.mean(floor_wall), statistics.mean(floor_wall)
                ),
                "mean_time_by_category_ms": _merge(mine, "times_ms"),
                "mean_cpu_by_category_ms": _merge(mine, "cpu_times_ms"),
                "mean_calls_by_category": _merge(mine, "calls"),
            }
        )
    return rows


def check_goals(rows: list[dict[str, Any]]) -> dict[str, bool]:
    deploy = next(r for r in rows if r["op"] == "deploy")
    return {
        "requests_within_1.5x_floor": all(r["requests_ratio"] <= GOALS["requests_ratio_max"] for r in rows),
        "deploy_overhead_under_50ms": deploy["overhead_ms_median"] < GOALS["deploy_overhead_ms_max"],
    }


def _print(rows: list[dict[str, Any]], goals: dict[str, bool]) -> None:
    head = (
        f"{'op':<8} {'ours ms med/p90':>16} {'shell ms':>9} {'ours-shell':>11} {'floor ms med/p90':>17} "
        f"{'overhead ms':>12} {'cpu ms ours/floor':>18} {'req ours/floor':>15} {'ratio':>6} {'store calls':>12} "
        f"{'events':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['op']:<8} {r['ours_wall_ms_median']:>8.1f}/{r['ours_wall_ms_p90']:<7.1f} "
            f"{r['ours_shell_ms_median']:>9.1f} {r['ours_net_ms_median']:>11.1f} "
            f"{r['floor_wall_ms_median']:>8.1f}/{r['floor_wall_ms_p90']:<8.1f} {r['overhead_ms_median']:>12.1f} "
            f"{r['ours_cpu_ms_without_shell_median']:>9.1f}/{r['floor_cpu_ms_median']:<8.1f} "
            f"{r['ours_requests']:>7}/{r['floor_requests']:<7} {r['requests_ratio']:>6.2f} "
            f"{r['ours_store_calls']:>12} {r['ours_events']:>7}"
        )
    names = list(rows[0]["overhead_attribution_ms"])
    print("\nmean overhead split by where the time went (ms, mean exclusive times):")
    print(f"  {'overhead (mean)':<48}" + "".join(f"{r['overhead_ms_mean']:>9.1f}" for r in rows))
    print(f"  {'':<48}" + "".join(f"{r['op']:>9}" for r in rows))
    for name in names:
        print(f"  {name:<48}" + "".join(f"{r['overhead_attribution_ms'][name]:>9.1f}" for r in rows))
    deploy = next(r for r in rows if r["op"] == "deploy")
    print("\nwhere a deploy's time goes (mean ms per deploy, exclusive; top 12):")
    for name, ms in list(deploy["mean_time_by_category_ms"].items())[:12]:
        calls = deploy["mean_calls_by_category"].get(name, 0)
        cpu = deploy["mean_cpu_by_category_ms"].get(name, 0.0)
        print(f"  {ms:8.1f}  {name}  ({calls:g} calls, {cpu:.1f} ms CPU)")
    print("goals:", ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in goals.items()))


def _code_version() -> dict[str, Any]:
    """Which product code was measured (read-only git calls; other work may be in progress)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_sdk_changes": bool(git("status", "--porcelain", "--", "proximity_sdk")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10, help="measured cycles of deploy/stop/start/restart/delete")
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=5,
        default=0,
        metavar="DEPLOYS",
        help="also cProfile this many extra deploy+delete pairs (default 5 when given)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "lifecycle.json"))
    args = parser.parse_args()
    if args.cycles < 1:
        parser.error("--cycles must be at least 1")
    began = time.monotonic()
    load_before = os.getloadavg()
    raw = run(args.cycles, args.profile)
    rows = summarise(raw["ours"], raw["floor"])
    goals = check_goals(rows)
    report = {
        "bench": "lifecycle",
        "what": "per operation: wall time and Proxmox API requests of ours next to a minimal proxmoxer script "
        "doing the same Proxmox calls (the floor); our node-shell time reported apart and excluded",
        "setup": "fakepve (HarnessPve) at time_scale 0 over HTTPS on 127.0.0.1, in this process; the real sshd "
        "with the pct stand-in as node shell; Proximity.local on SQLite; catalog app gitea; API token auth",
        "method": {
            "overhead_ms": "median(our wall - our node-shell time) - median(floor wall)",
            "shell_ms": "time inside NodeShell.run/pct_exec/pct_push/pct_pull minus their output callbacks",
            "shell_steps_ms": "cross-check: span of steps docker/project/up/health from event times",
            "requests": "requests HarnessPve recorded in the operation's window (logins and polls included)",
            "wait_lag_ms": "from the operation worker's end to wait() returning",
            "cpu_ms": "CPU time of the calling thread (ours: while submitting) plus, for ours, the operation "
            "worker thread; the fake PVE runs in other threads of this process and is in neither; the table shows ours "
            "without the CPU spent inside node-shell calls (paramiko)",
            "times_ms": "exclusive time per category (caller while submitting, operation worker); each timed "
            "call costs instrumentation_us_per_section more (about 100 sections per deploy)",
        },
        "goals": GOALS,
        "goals_met": goals,
        "code": _code_version(),
        "cycles": args.cycles,
        "wall_seconds": round(time.monotonic() - began, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "note": "a shared 2-core machine: compare ours with the floor of the same run",
        },
        "store_costs_ms": raw["store_costs_ms"],
        "instrumentation_us_per_section": section_cost_us(),
        "summary": rows,
        "profile": raw["profile"],
        "runs": {"ours": raw["ours"], "floor": raw["floor"], "warmup": raw["warmup"]},
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    _print(rows, goals)
    print("\nstore calls, ms each (one thread, idle store):")
    for name, ms in raw["store_costs_ms"].items():
        print(f"  {ms:8.3f}  {name}")
    if raw["profile"]:
        print("\ncProfile, operation worker, per deploy+delete pair (top by own time):")
        for r in raw["profile"]["top_tottime"][:12]:
            print(f"  {r['tottime_ms']:8.2f} ms  {r['calls']:>6} calls  {r['function']}")
    print(f"written to {args.out} ({report['wall_seconds']} s)")


if __name__ == "__main__":
    main()
