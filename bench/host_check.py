"""Benchmark: what the privilege check adds to ``px.hosts.test`` (and so to ``px.hosts.add``).

fakepve (HarnessPve over HTTPS, time scale 0) with ``--nodes`` nodes, all online, reporting PVE
9.1.2. Measured ``--runs`` times each, as wall time and requests (``HostCheck.requests``):

- ``test``: ``px.hosts.test`` as it is (version, nodes, each node's version, then one
  ``GET /access/permissions?path=...`` per distinct ACL path: /vms, the settings' storages, /,
  each node, the bridge's SDN zone path);
- ``floor``: the two requests ``hosts.test`` made before the check (``/version`` and ``/nodes``),
  timed with the same client, for comparison.

Run from the repository root:  python bench/host_check.py [--nodes 1,3,8] [--runs 20]
Writes bench/results/host_check.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from proximity_sdk._client import Proximity  # noqa: E402
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, make_pki, serve_pve  # noqa: E402


def measure(nodes: int, runs: int, cert: str, key: str) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_pve(cert, key) as (pve, _served),
        Proximity.local(data_dir=Path(tmp) / "px", secret_key=Fernet.generate_key(), entry_points=False) as px,
    ):
        pve.version = "9.1.2"
        for n in range(2, nodes + 1):
            pve.add_node(f"pve{n}")
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=cert)
        client = px._clients.get(px.hosts.get("lab").id)
        test_ms, floor_ms, requests = [], [], set()
        for _ in range(runs):
            started = time.perf_counter()
            check = px.hosts.test("lab")
            test_ms.append((time.perf_counter() - started) * 1000)
            assert check.ok, check.error
            requests.add(check.requests)
            started = time.perf_counter()
            client.version()
            client.nodes()
            floor_ms.append((time.perf_counter() - started) * 1000)
        return {
            "nodes": nodes,
            "runs": runs,
            "requests": sorted(requests),
            "test_ms_median": round(statistics.median(test_ms), 2),
            "floor_ms_median": round(statistics.median(floor_ms), 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1,3,8")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_pki(tmp)
        rows = [measure(int(n), args.runs, cert, key) for n in args.nodes.split(",")]
    print(f"{'nodes':>5} {'requests':>9} {'hosts.test ms':>14} {'version+nodes ms':>17}")
    for row in rows:
        print(
            f"{row['nodes']:>5} {','.join(map(str, row['requests'])):>9} {row['test_ms_median']:>14} "
            f"{row['floor_ms_median']:>17}"
        )
    out = {"machine": {"python": platform.python_version(), "platform": platform.platform()}, "results": rows}
    (ROOT / "bench" / "results" / "host_check.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
