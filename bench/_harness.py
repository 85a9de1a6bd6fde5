"""Shared by the benches: the test harness (fakepve over HTTPS + the real sshd with the `pct`
stand-in) set up from a plain script instead of pytest fixtures, and small statistics helpers.

``lab()`` does what the ``pve``/``sshd``/``standin_state``/``ssh_access`` fixtures do together:
a throwaway PKI, an sshd whose state link points at a fresh stand-in state directory, a
HarnessPve served on 127.0.0.1 and an :class:`SshAccess` for the sshd (nodes -> 127.0.0.1).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from proximity_sdk.models.ssh import SshAccess  # noqa: E402
from tests.harness.pve import HarnessPve, make_pki, serve_pve  # noqa: E402
from tests.harness.sshd import NODES, Sshd, StandinState, start_sshd  # noqa: E402

__all__ = ["Lab", "lab", "median", "percentile"]


@dataclass(frozen=True)
class Lab:
    """A running harness: the fake PVE, the CA that verifies it, the sshd and its stand-in state."""

    pve: HarnessPve
    ca_file: str
    sshd: Sshd
    state: StandinState
    ssh: SshAccess
    workdir: Path


def _point_state(sshd: Sshd, target: Path) -> None:
    # the same atomic re-pointing the standin_state fixture does: a new link renamed over the old
    fresh = sshd.workdir / f"state.{os.getpid()}.new"
    if fresh.is_symlink() or fresh.exists():
        fresh.unlink()
    fresh.symlink_to(target)
    os.replace(fresh, sshd.state_link)


@contextmanager
def lab(*, time_scale: float = 0.0) -> Iterator[Lab]:
    """Everything started for the block and stopped after it (temporary files removed)."""
    with tempfile.TemporaryDirectory(prefix="proximity-bench-") as tmp:
        workdir = Path(tmp)
        cert, key = make_pki(workdir)
        sshd = start_sshd(workdir / "sshd")
        try:
            state_dir = workdir / "standin-state"
            state_dir.mkdir()
            _point_state(sshd, state_dir)
            access = SshAccess(
                user=sshd.user,
                port=sshd.port,
                key_file=str(sshd.client_key),
                known_hosts=str(sshd.known_hosts),
                addresses=dict.fromkeys(NODES, sshd.host),
                connect_timeout=10,
            )
            with serve_pve(cert, key, time_scale=time_scale) as (pve, _served):
                yield Lab(pve=pve, ca_file=cert, sshd=sshd, state=StandinState(state_dir), ssh=access,
                          workdir=workdir)
        finally:
            sshd.stop()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p90 of 10 samples is the 9th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])
