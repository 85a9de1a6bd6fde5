"""The node table: each node's containers as the sandbox's Proxmox knows them, for the ``pct`` stand-in.

``pct`` on a real node answers from that node's own containers: an exec into a stopped container,
an absent one or one that lives on another node fails (pve-container's ``src/PVE/CLI/pct.pm``).
The stand-in runs in another process (under the sshd), so the sandbox's Proxmox writes its state
to a JSON file at every API request, whenever a task ends, a config changes or a container
appears or goes, and the stand-in reads it:

    {"real": false, "addresses": {"127.0.0.1": "pve1", "127.0.0.2": "pve2"},
     "nodes": {"pve1": {"100": {"status": "running", "lxc": "px-1a2b3c4d-100",
                                "config": {"hostname": "web", ...}}}, "pve2": {}}}

``addresses`` maps the address a node's shell answers on to the node (the stand-in reads the
server address of its SSH connection from ``SSH_CONNECTION``). Without a table (``node_table``
None) the stand-in keeps its old behaviour: every container it is asked about exists and runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["NodeTableMixin"]


class NodeTableMixin:
    """Mixed into the sandbox's Proxmox before FakePve: writes ``node_table`` when set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: where the table is written (None: nowhere, the stand-in treats every container as running)
        self.node_table: Path | None = None
        #: the address each node's shell answers on (address -> node)
        self.node_addresses: dict[str, str] = {}
        self._table_written: tuple[Path, str] | None = None  # what was last written where

    def lxc_name(self, vmid: int) -> str | None:
        """The real LXC container behind ``vmid`` (None: not real mode)."""
        return None

    def write_node_table(self) -> None:
        if self.node_table is None:
            return
        nodes: dict[str, dict[str, Any]] = {name: {} for name in self.nodes}  # type: ignore[attr-defined]
        for ct in self.cts:  # type: ignore[attr-defined]
            nodes.setdefault(ct.node, {})[str(ct.vmid)] = {
                "status": ct.status, "lxc": self.lxc_name(ct.vmid), "lock": ct.lock or "",
                "config": {k: str(v) for k, v in ct.config.items()},
            }
        table = {"real": self.lxc_name(0) is not None, "addresses": self.node_addresses, "nodes": nodes}
        text = json.dumps(table)
        if self._table_written == (self.node_table, text):
            return  # most requests change nothing: no file written and renamed for them
        partial = self.node_table.with_name(self.node_table.name + f".{os.getpid()}.tmp")
        partial.write_text(text)
        os.replace(partial, self.node_table)
        self._table_written = (self.node_table, text)

    async def task(self, node: str, ttype: str, tid: Any, user: str, body: Callable[[], Awaitable[Any]],
                   vm: Any = None, lock: bool = True, log: Any = ()) -> str:
        async def recorded() -> Any:
            try:
                return await body()
            finally:
                self.write_node_table()

        upid: str = await super().task(node, ttype, tid, user, recorded, vm=vm, lock=lock, log=log)  # type: ignore[misc]
        self.write_node_table()  # the container a create or clone added exists (locked) from now on
        return upid

    def _record(self, request: Any, body: bytes) -> None:
        # every API request refreshes the table: a test that set a container's state directly
        # (``pve.ct(150).status = "running"``) is seen by the next `pct` after its next request
        super()._record(request, body)  # type: ignore[misc]
        self.write_node_table()

    async def _update_config(self, ct: Any, user: str, values: Any, deletes: Any, reverts: Any) -> None:
        try:
            await super()._update_config(ct, user, values, deletes, reverts)  # type: ignore[misc]
        finally:
            self.write_node_table()

    def add_ct(self, *args: Any, **kwargs: Any) -> Any:
        ct = super().add_ct(*args, **kwargs)  # type: ignore[misc]
        self.write_node_table()
        return ct

    def _drop(self, ct: Any) -> None:
        super()._drop(ct)  # type: ignore[misc]
        self.write_node_table()
