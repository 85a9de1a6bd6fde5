"""Backups run against the same lab as the app tests: fakepve (with the vzdump harness) and the real sshd.
Every archive the fake writes is known to the `pvesm path` stand-in."""

from __future__ import annotations

import pytest

from tests.apps.conftest import lab
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState

__all__ = ["lab"]


@pytest.fixture(autouse=True)
def _archives_have_paths(pve: HarnessPve, standin_state: StandinState) -> None:
    pve.on_archive = standin_state.set_volume_path
