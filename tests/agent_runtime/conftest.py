"""Agent replicas in this process, on the test's database (SQLite file or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from proximity_agent.replica import AgentReplica
from proximity_agent.scheduler import JobFunc
from proximity_agent.settings import AgentSettings

# fast enough for tests: jobs every second, leadership checked twice a second
FAST = {
    "reconcile_interval_seconds": 1,
    "janitor_interval_seconds": 1,
    "node_sync_interval_seconds": 1,
    "backup_schedules_interval_seconds": 1,
    "app_updates_interval_seconds": 1,
    "leader_check_interval_seconds": 0.3,
    "metrics_port": None,
    "entry_points": False,
    "lease_seconds": 1,
    "recover_interval_seconds": 0.5,
    "shutdown_grace_seconds": 10,
}

OpenReplica = Callable[..., AgentReplica]


@pytest.fixture
def agent_settings(database_url: str, tmp_path: Path) -> Callable[..., AgentSettings]:
    """Settings for an agent on the test's database: ``agent_settings(**overrides)``."""
    key = Fernet.generate_key().decode()

    def make(**overrides: Any) -> AgentSettings:
        return AgentSettings.checked(
            {"database_url": database_url, "data_dir": str(tmp_path / "data"), "secret_key": key, **FAST, **overrides}
        )

    return make


@pytest.fixture
def open_replica(agent_settings: Callable[..., AgentSettings]) -> Iterator[OpenReplica]:
    """``open_replica(jobs=None, start=True, **settings)``: a replica, closed at the end of the test."""
    opened: list[AgentReplica] = []

    def make(
        *, jobs: Mapping[str, tuple[JobFunc, float]] | None = None, start: bool = True, **overrides: Any
    ) -> AgentReplica:
        replica = AgentReplica.open(agent_settings(**overrides), jobs=jobs)
        opened.append(replica)
        if start:
            replica.start()
        return replica

    yield make
    for replica in reversed(opened):
        replica.close(grace=5)
