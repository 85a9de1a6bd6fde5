"""The remote SDK against the agent in-process over the harness host (see tests/remote/_agent.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proximity_sdk._client import Proximity
from tests.agent.conftest import agent_px
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState
from tests.remote._agent import RunningAgent, running_agent, standins_follow_fakepve

__all__ = ["agent_px"]


@pytest.fixture
def running(agent_px: Proximity, pve: HarnessPve, standin_state: StandinState) -> Iterator[RunningAgent]:
    """The agent over the harness host, as admin (``running.connect()``)."""
    standins_follow_fakepve(pve, standin_state)
    with running_agent(agent_px) as agent:
        yield agent
