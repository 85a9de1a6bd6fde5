"""The real_node tier: Proximity's whole app lifecycle on real LXC containers with Docker inside.

Fixtures: the real node (tests/harness/real_node.py), the local registry with the test images
(tests/harness/images.py), and ``real_lab``: a Proximity on SQLite with that node as its host, the
registry trusted through the host's registry settings, and the test catalog.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.models.ssh import SshAccess
from tests.harness.images import *  # noqa: F403
from tests.harness.images import LocalRegistry, catalog_entries
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET
from tests.harness.real_node import *  # noqa: F403
from tests.harness.real_node import RealHarnessPve


class RealLab:
    def __init__(
        self, px: Proximity, pve: RealHarnessPve, registry: LocalRegistry, catalog: Path, *, data_dir: Path, key: str
    ) -> None:
        self.px, self.pve, self.registry, self.catalog = px, pve, registry, catalog
        self.data_dir, self.key = data_dir, key
        self.database_url = f"sqlite:///{data_dir}/proximity.db"

    def publish(self, name: str, entry: dict[str, Any]) -> None:
        (self.catalog / name).write_text(json.dumps(entry))
        self.px.catalog.reload()


def fetch(url: str, *, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of a GET from this process (the node's side of the bridge)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - http to a test container
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def refused(url: str) -> bool:
    """True when nothing answers at ``url`` (connection refused, reset or timed out)."""
    try:
        fetch(url, timeout=3)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return True
    return False


def answers(url: str, *, within: float = 30.0) -> tuple[int, str]:
    """The first answer at ``url`` within ``within`` seconds (DHCP and port mapping may lag a moment)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return fetch(url)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def real_lab(
    tmp_path: Path,
    real_pve: RealHarnessPve,
    pve_ca: str,
    real_ssh_access: SshAccess,
    local_registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RealLab]:
    # the product's settling period: a crash loop must be seen (tests/conftest.py sets 0 for stand-ins)
    monkeypatch.setenv("PROXIMITY_HEALTH_SETTLE_SECONDS", "5")
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for name, entry in catalog_entries(local_registry).items():
        (catalog / name).write_text(json.dumps(entry))
    key = Fernet.generate_key().decode()
    with Proximity.local(
        data_dir=tmp_path / "px", secret_key=key, entry_points=False, catalog_paths=[catalog], lease_seconds=10
    ) as px:
        px.hosts.add(
            "real", url=real_pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=real_ssh_access
        )
        px.hosts.set_registries("real", insecure=[local_registry.address])
        px.settings.update(health_timeout_seconds=60, default_memory_mb=1024)
        yield RealLab(px, real_pve, local_registry, catalog, data_dir=tmp_path / "px", key=key)
