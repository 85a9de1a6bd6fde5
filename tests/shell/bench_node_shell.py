"""Cost of node-shell calls on a cold vs a warm (cached) SSH connection, against the test sshd.

Run: ``python -m tests.shell.bench_node_shell [rounds]`` (not collected by pytest). The `pct`
stand-in's own cost (a Python start, a mount namespace, a chroot) is part of every pct number;
``run true`` shows the SSH round trip alone.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.proxmox.shell import NodeShell
from tests.harness.sshd import start_sshd


def _measure(rounds: int, call: Callable[[], object]) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_sshd(Path(tmp) / "sshd")
        state = Path(tmp) / "state"
        state.mkdir()
        server.state_link.unlink()
        server.state_link.symlink_to(state)
        access = SshAccess(
            user=server.user,
            port=server.port,
            key_file=str(server.client_key),
            known_hosts=str(server.known_hosts),
            addresses={"pve1": server.host},
        )
        try:

            def cold() -> None:
                with NodeShell(access) as shell:
                    shell.pct_exec("pve1", 105, "true", timeout=30)

            with NodeShell(access) as warm:
                warm.pct_exec("pve1", 105, "true", timeout=30)  # connect, lay out the container
                rows = {
                    "pct_exec, cold (new connection each)": _measure(rounds, cold),
                    "pct_exec, warm": _measure(rounds, lambda: warm.pct_exec("pve1", 105, "true", timeout=30)),
                    "run true, warm (SSH round trip)": _measure(rounds, lambda: warm.run("pve1", ["true"], timeout=30)),
                    "pct_push 4 KiB, warm": _measure(
                        rounds, lambda: warm.pct_push("pve1", 105, b"x" * 4096, "/root/f", timeout=30)
                    ),
                }
        finally:
            server.stop()
    print(f"{'call':40} {'median ms':>10} {'max ms':>8}   ({rounds} rounds)")
    for name, (median, worst) in rows.items():
        print(f"{name:40} {median:10.1f} {worst:8.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
