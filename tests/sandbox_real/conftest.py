"""The real-node fixtures (tests/harness/real_node.py) for the backend's own tests."""

from tests.harness.real_node import *  # noqa: F403
