"""``settle_heap``: what is alive when the agent starts serving is frozen out of the collector's
full passes; start-up garbage is collected first, and garbage made later still is."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from proximity_agent._serve import settle_heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test process collects as usual


@pytest.mark.usefixtures("unfrozen")
def test_settle_heap_freezes_the_living_and_collects_the_garbage() -> None:
    before_garbage = _cycle()
    kept = _Node()
    frozen = settle_heap()
    assert frozen == gc.get_freeze_count() > 1000
    assert before_garbage() is None, "garbage from before serving is collected, not frozen forever"
    assert kept.other is None  # still alive and usable
    later_garbage = _cycle()
    assert later_garbage() is not None
    gc.collect()
    assert later_garbage() is None, "cycles made while serving are still collected"
