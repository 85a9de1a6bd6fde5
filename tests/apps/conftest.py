"""A Proximity wired to the real harness: fakepve over HTTPS, the real sshd with the `pct` stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.models.ssh import SshAccess
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import StandinState

LISTENING = "LISTEN 0 4096 0.0.0.0:{port} 0.0.0.0:*\n"


@pytest.fixture
def lab(
    tmp_path: Path, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess, standin_state: StandinState
) -> Iterator[Proximity]:
    """Proximity on SQLite with one host (node pve1) whose node shell is the test sshd.
    Every container's `ss` reports ports 3000 and 80 listening unless a test scripts otherwise."""
    standin_state.script("ss", stdout=LISTENING.format(port=3000) + LISTENING.format(port=80))
    with Proximity.local(
        data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False, lease_seconds=5
    ) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access)
        yield px
