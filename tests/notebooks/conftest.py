"""Notebook tests: the harness Proximity (`lab`) and an in-process IPython shell whose displays are captured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from tests.apps.conftest import lab

__all__ = ["lab", "shell"]


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """A real IPython shell in this process (as in a kernel), removed afterwards so later tests
    run outside one again. Its profile lives in tmp_path and it keeps no history."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    config = Config()
    config.HistoryManager.enabled = False
    instance = InteractiveShell.instance(config=config)
    try:
        yield instance
    finally:
        InteractiveShell.clear_instance()
