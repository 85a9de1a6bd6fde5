"""The apps' harness (fakepve, the sshd stand-in, ``lab``) and the in-process agent for the hardening tests."""

from tests.agent.conftest import agent, agent_px
from tests.apps.conftest import lab

__all__ = ["agent", "agent_px", "lab"]
