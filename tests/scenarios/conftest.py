"""The shared scenario suite: every scenario runs twice, on ``Proximity.local()`` over the harness
host (fakepve over HTTPS + the real sshd with the `pct` stand-ins) and on ``Proximity.connect()``
to an agent serving that same local Proximity in-process, over a real gRPC channel, as admin.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from proximity_sdk._client import Proximity
from tests.agent.conftest import agent_px
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState
from tests.remote._agent import running_agent, standins_follow_fakepve

__all__ = ["agent_px"]


@pytest.fixture(autouse=True)
def _standins(pve: HarnessPve, standin_state: StandinState) -> None:
    standins_follow_fakepve(pve, standin_state)


@pytest.fixture(params=["local", "remote"])
def px(request: pytest.FixtureRequest, agent_px: Proximity) -> Iterator[Any]:
    """The client under test: typed Any, as scenarios use only the API both share."""
    if request.param == "local":
        yield agent_px
        return
    with running_agent(agent_px) as agent, agent.connect() as remote:
        yield remote
