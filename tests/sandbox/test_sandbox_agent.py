"""The sandbox's agent: extra catalog directories, and its store prepared before it starts for what
its API does not carry (a host's registry settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import ProximityError
from proximity_sdk.sandbox import Sandbox
from proximity_sdk.sandbox._agent import SandboxAgent

pytestmark = pytest.mark.timeout(180)

ENTRY = {
    "id": "sbx-page",
    "name": "A page",
    "version": "1.0",
    "description": "one page",
    "category": "Testing",
    "docker_compose": {"services": {"web": {"image": "10.0.3.1:5000/x/page:1", "ports": ["8080:8080"]}}},
    "ports": [8080],
    "main_service": "web",
    "main_port": 8080,
    "volumes": [],
}


def test_catalog_paths_and_a_store_prepared_before_the_agent_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a key in this process's environment must not become the key of the agent's store (the agent
    # starts without it and reads its key file)
    monkeypatch.setenv("PROXIMITY_SECRET_KEY", "x" * 43 + "=")
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "sbx-page.json").write_text(json.dumps(ENTRY))
    state = tmp_path / "agent"
    with Sandbox.start(directory=tmp_path / "sandbox") as sandbox:
        with pytest.raises(ProximityError, match="real-mode sandbox"):
            sandbox.trust_registry(None)
        with SandboxAgent.prepare(state) as store:
            sandbox.add_to(store, name="sandbox")
            store.hosts.set_registries("sandbox", insecure=["10.0.3.1:5000"])
        assert (state / "secret.key").stat().st_mode & 0o777 == 0o600
        with (
            SandboxAgent.start(state, catalog_paths=[catalog]) as agent,
            Proximity.connect(agent.target, token=agent.token) as px,
        ):
            assert px.catalog.get("sbx-page").main_port == 8080
            assert px.hosts.get("sandbox").url == sandbox.url  # what the prepared store holds
            app = px.apps.deploy("sbx-page", hostname="page").wait(timeout=120)  # the agent works on it
            assert app.status.value == "running"
        with SandboxAgent.prepare(state) as again:  # the same key file: the secrets still decrypt
            assert again.hosts.registries("sandbox").insecure == ["10.0.3.1:5000"]


def test_the_agent_keeps_working_when_another_process_opens_its_database(tmp_path: Path) -> None:
    """`proximity-agent token create` (or any local Proximity on the agent's data) while the agent
    serves: before the fix the agent's own second engine (its scheduler's, made when elected) had
    dropped the agent's POSIX locks on the SQLite file, so the other process, closing as if it were
    the last user, removed the WAL under the agent: its next deploy failed with ``disk I/O error``."""
    from proximity_sdk.store.crypto import read_key_file

    state = tmp_path / "agent"
    with (
        Sandbox.start(directory=tmp_path / "sandbox") as sandbox,
        SandboxAgent.start(state) as agent,
        Proximity.connect(agent.target, token=agent.token) as px,
    ):
        sandbox.add_to(px, name="sandbox")
        key = b"\n".join(read_key_file(state / "secret.key"))
        with Proximity.local(data_dir=state, secret_key=key, entry_points=False) as other:  # this process
            assert [h.name for h in other.hosts.list()] == ["sandbox"]
        app = px.apps.deploy("uptime-kuma", hostname="kuma").wait(timeout=120)
        assert app.status.value == "running"
