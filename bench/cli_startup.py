"""CLI startup: `proximity --help`, `python -c "import proximity_sdk"`, and commands locally and
through an agent, in fresh processes.

Run: python bench/cli_startup.py [--runs 15] [--top 12]
Writes bench/results/cli_startup.json and prints a table. Goals (wall time of the whole process,
median of N runs): `proximity --help` < 300 ms, `import proximity_sdk` < 150 ms, `proximity
catalog list` < 400 ms locally and < 300 ms through an agent (a real `proximity-agent serve`
process on loopback, started here, state in SQLite). Also shown, without goals: Python's own
startup, `proximity config show` (the CLI without the SDK stack), `proximity apps list` through
the agent, and the `-X importtime` top offenders of the measured commands (agent mode included).

Measured as installed: the plugins of the `proximity` entry-point group are loaded by every
catalog command, so they are listed in the results (`plugins`); and the packages are
byte-compiled first (`compileall`, as pip does when it installs a wheel, and as Python does on a
first run), so that an environment with PYTHONDONTWRITEBYTECODE set (this repository's CI and
helpers' machines) does not measure compiling the SDK's sources on every run. `--source`
measures without that step (the sources are then compiled on each run when
PYTHONDONTWRITEBYTECODE is set).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cli_startup.json"
GOALS_MS = {
    "proximity_help": 300.0,
    "import_proximity_sdk": 150.0,
    "proximity_catalog_list": 400.0,
    "agent_catalog_list": 300.0,
}


def _proximity() -> list[str]:
    """The installed console script next to this Python (what users run), else `python -m`."""
    script = Path(sys.executable).with_name("proximity")
    if script.exists():
        return [str(script)]
    found = shutil.which("proximity")
    return [found] if found else [sys.executable, "-m", "proximity_sdk.cli"]


def _env(tmp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
    env.update(PROXIMITY_DATA_DIR=str(Path(tmp) / "data"), XDG_CONFIG_HOME=str(Path(tmp) / "config"))
    return env


def _plugins() -> list[str]:
    """The installed plugins (entry points of group ``proximity``): ``name = module``."""
    from importlib.metadata import entry_points

    return sorted(f"{ep.name} = {ep.value}" for ep in entry_points(group="proximity"))


def _compile_bytecode() -> list[str]:
    """Byte-compile the SDK, the agent and the installed plugins' packages; returns their directories."""
    import compileall
    import importlib.util
    from importlib.metadata import entry_points

    tops = {"proximity_sdk", "proximity_agent"} | {
        ep.value.split(":")[0].split(".")[0] for ep in entry_points(group="proximity")
    }
    compiled = []
    for top in sorted(tops):
        spec = importlib.util.find_spec(top)
        for directory in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(directory, quiet=1)
            compiled.append(str(directory))
    return compiled


def _wall(argv: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, cwd=ROOT, env=env)
        samples.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": statistics.median(samples), "min_ms": min(samples), "max_ms": max(samples), "runs": runs}


def _importtime(argv: list[str], env: dict[str, str], top: int) -> dict[str, Any]:
    """`python -X importtime`: the modules with the largest cumulative and self times (microseconds)."""
    if argv[0] != sys.executable:  # the console script: run its code under -X importtime
        argv = [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; from proximity_sdk.cli import main; sys.argv[0] = 'proximity'; sys.exit(main())",
            *argv[1:],
        ]
    else:
        argv = [sys.executable, "-X", "importtime", *argv[1:]]
    err = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT, env=env).stderr
    rows: list[dict[str, Any]] = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = (part.strip() for part in line[len("import time:") :].split("|"))
        rows.append(
            {
                "module": name.strip(),
                "self_us": int(self_us),
                "cumulative_us": int(cumulative_us),
                "top_level": not name.startswith(" "),
            }
        )
    total = sum(r["self_us"] for r in rows)
    by_cumulative = sorted((r for r in rows if r["top_level"]), key=lambda r: -r["cumulative_us"])
    by_self = sorted(rows, key=lambda r: -r["self_us"])
    return {
        "modules": len(rows),
        "total_import_ms": total / 1e3,
        "top_cumulative": [{k: r[k] for k in ("module", "cumulative_us")} for r in by_cumulative[:top]],
        "top_self": [{k: r[k] for k in ("module", "self_us")} for r in by_self[:top]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--source", action="store_true", help="do not byte-compile the packages first (see above)")
    args = parser.parse_args()
    compiled = [] if args.source else _compile_bytecode()
    plugins = _plugins()

    proximity = _proximity()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="proximity-cli-bench-") as tmp:
        env = _env(tmp)
        measured = {
            "python_startup": _wall([sys.executable, "-c", "pass"], env, args.runs),
            "proximity_help": _wall([*proximity, "--help"], env, args.runs),
            "import_proximity_sdk": _wall([sys.executable, "-c", "import proximity_sdk"], env, args.runs),
            "proximity_config_show": _wall([*proximity, "--json", "config", "show"], env, max(3, args.runs // 3)),
        }
        subprocess.run([*proximity, "catalog", "list"], capture_output=True, check=True, env=env)  # migrations
        measured["proximity_catalog_list"] = _wall([*proximity, "catalog", "list"], env, max(3, args.runs // 3))
        offenders = {
            "proximity_help": _importtime([*proximity, "--help"], env, args.top),
            "import_proximity_sdk": _importtime([sys.executable, "-c", "import proximity_sdk"], env, args.top),
        }
        from proximity_sdk.sandbox._agent import SandboxAgent  # a real agent process; no fakepve needed

        with SandboxAgent.start(Path(tmp) / "agent") as agent:
            remote = {**env, "PROXIMITY_AGENT": agent.target, "PROXIMITY_TOKEN": agent.token}
            subprocess.run([*proximity, "catalog", "list"], capture_output=True, check=True, env=remote)  # warm
            measured["agent_catalog_list"] = _wall([*proximity, "catalog", "list"], remote, args.runs)
            measured["agent_apps_list"] = _wall([*proximity, "apps", "list"], remote, max(3, args.runs // 3))
            offenders["agent_catalog_list"] = _importtime([*proximity, "catalog", "list"], remote, args.top)
    baseline = measured["python_startup"]["median_ms"]
    for entry in measured.values():
        entry["over_python_startup_ms"] = entry["median_ms"] - baseline
    met = {name: measured[name]["median_ms"] < goal for name, goal in GOALS_MS.items()}
    results = {
        "what": "CLI startup: wall time of fresh processes (median of N), and -X importtime top offenders",
        "command": "python bench/cli_startup.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": {"before": load_before, "after": os.getloadavg()},
        },
        "proximity": proximity,
        "plugins": plugins,
        "bytecode": "compiled first (compileall)" if compiled else "as found (--source)",
        "python_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "goals_ms": GOALS_MS,
        "met": met,
        "wall": measured,
        "importtime": offenders,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")

    print(f"{'measure (median wall, fresh process)':<40} {'ms':>9} {'-python':>9} {'goal':>7}")
    for name, entry in measured.items():
        goal = GOALS_MS.get(name)
        mark = "" if goal is None else ("  ok" if entry["median_ms"] < goal else "  OVER")
        print(
            f"{name:<40} {entry['median_ms']:>9.1f} {entry['over_python_startup_ms']:>9.1f} "
            f"{'' if goal is None else f'{goal:>7.0f}'}{mark}"
        )
    for name, info in offenders.items():
        print(
            f"\n-X importtime, {name}: {info['modules']} modules, {info['total_import_ms']:.1f} ms of imports; "
            "top cumulative:"
        )
        for row in info["top_cumulative"][:6]:
            print(f"  {row['cumulative_us'] / 1e3:>8.1f} ms  {row['module']}")
    print(f"\nplugins: {', '.join(plugins) or 'none'}; bytecode: {results['bytecode']}")
    print(f"load average {os.getloadavg()[0]:.2f}; -> {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
