"""The release artefacts as a stranger gets them: build the sdist and the wheel, install the wheel
(not editable) with the sandbox extra into a fresh venv, and run the installed ``proximity``.

Packaging mistakes (package data left out, a missing entry point, a dependency only the repository's
venv has) pass every other test, since those run on the editable install; here they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = "proximity_sdk"  # the wheel/sdist file prefix of the distribution proximity-sdk

# Files that only package data brings along; without any of them the installed SDK breaks.
PACKAGE_DATA = [
    "proximity_sdk/py.typed",
    "proximity_sdk/catalog/builtin/gitea.json",
    "proximity_sdk/store/migrations/versions/0001_initial_schema.py",
    "proximity_sdk/store/migrations/env.py",
    "proximity_sdk/sandbox/standins/_pct.py",
    "proximity_sdk/sandbox/standins/node/pct",
    "proximity_sdk/sandbox/standins/ct/docker",
    "proximity_agent/py.typed",
]


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.timeout(900)  # a build with isolation and an install of every dependency (from pip's cache)
def test_the_wheel_installs_by_its_name_and_runs_the_sandbox(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=tmp_path)
    wheels = list(out.glob(f"{DIST}-*-py3-none-any.whl"))
    sdists = list(out.glob(f"{DIST}-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())

    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = wheel.read(metadata).decode()
        entry_points = wheel.read(metadata.replace("METADATA", "entry_points.txt")).decode()
    assert "Name: proximity-sdk\n" in meta
    assert "Provides-Extra: sandbox" in meta
    assert "proximity = proximity_sdk.cli:main" in entry_points
    assert "proximity-agent = proximity_agent.cli:main" in entry_points
    assert not [f for f in PACKAGE_DATA if f not in names], "package data missing from the wheel"
    assert not [n for n in names if n.startswith("tests/")], "the tests are not part of the wheel"
    with tarfile.open(sdists[0]) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert not [f for f in PACKAGE_DATA if f not in members], "package data missing from the sdist"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    pip_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheels[0]}[sandbox]"], cwd=tmp_path, env=pip_env
    )

    # Run from an empty directory: nothing of the repository is importable from there.
    home = tmp_path / "home"
    home.mkdir()
    env = {**pip_env, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "cfg")}
    env.pop("PROXIMITY_AGENT", None)
    env.pop("PROXIMITY_TOKEN", None)
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import proximity_sdk; print(proximity_sdk.__file__)"], cwd=home, env=env
    )
    assert where.strip().startswith(str(venv)), where

    sandbox = _run([str(venv / "bin" / "proximity"), "sandbox", "--once"], cwd=home, env=env, timeout=300)
    assert "deploy succeeded" in sandbox
    assert "uptime-kuma" in sandbox and "running" in sandbox
    # local mode: the store's migrations and the built-in catalog come from the installed package data
    catalog = _run([str(venv / "bin" / "proximity"), "catalog", "list"], cwd=home, env=env, timeout=120)
    assert "gitea" in catalog and "uptime-kuma" in catalog
