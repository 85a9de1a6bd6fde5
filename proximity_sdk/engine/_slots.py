"""This process's mutation slots on each Proxmox node, and the operations headed to each node.

A node takes at most ``limit`` mutations (create, start, ...) at once from this process:
Proxmox's per-guest and storage locks punish unbounded parallelism. Placement also needs to know
where this process's operations are already headed (placed there and not finished), or it sends a
burst to the node with the most free memory, where all but ``limit`` then wait for a slot while
other nodes could take them. With several agents on one store this matters more: placement
spreads every agent's deploys over the nodes by the store's in-flight memory, so one agent's own
share of a node is uneven (bench/scale_out.py: 167 of 200 deploys waited for a slot with three
agents, 7 with one).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

__all__ = ["NodeSlots"]


class NodeSlots:
    """Per (host id, node): a semaphore of ``limit`` slots, and a count of the operations headed there."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, str], threading.BoundedSemaphore] = {}
        self._headed: Counter[tuple[str, str]] = Counter()

    def slot(self, host_id: str, node: str) -> threading.Semaphore:
        with self._lock:  # one semaphore per node, even when two threads ask first at once
            slot = self._slots.get((host_id, node))
            if slot is None:
                slot = self._slots[(host_id, node)] = threading.BoundedSemaphore(self.limit)
            return slot

    def head(self, host_id: str, node: str) -> Callable[[], None]:
        """Count one operation headed to ``node`` until the returned release is called (once is
        enough: later calls do nothing)."""
        key = (host_id, node)
        with self._lock:
            self._headed[key] += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self._headed[key] -= 1
                if self._headed[key] <= 0:
                    del self._headed[key]

        return release

    def crowded(self, host_id: str) -> frozenset[str]:
        """The nodes of ``host_id`` with ``limit`` or more of this process's operations headed there:
        one more would wait for a slot."""
        with self._lock:
            return frozenset(
                node for (host, node), count in self._headed.items() if host == host_id and count >= self.limit
            )
