"""Clones that copy the container's files, as a clone on a real Proxmox copies the root disk.

fakepve's clone copies the configuration and allocates new volumes, but the sandbox's containers
are directories (``<shell state>/ct/<vmid>``) that only the stand-ins know: without this, a clone
starts without the compose project its source had, and the clone's first ``cd`` fails.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CloneFilesMixin"]


class CloneFilesMixin:
    """Mixed into SandboxPve before FakePve; uses ``container_files`` (set by the sandbox and the harness)."""

    container_files: Callable[[int], Path] | None

    async def _lxc_clone(self, user: str, v: dict[str, Any]) -> Any:
        upid = await super()._lxc_clone(user, v)  # type: ignore[misc]
        if self.container_files is None:
            return upid
        source, target = self.container_files(int(v["vmid"])), self.container_files(int(v["newid"]))
        if source.is_dir():
            # the files are copied when the clone is accepted: the source is locked ('disk') meanwhile
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, symlinks=True)

        async def forget_if_failed() -> None:
            while self.tasks[upid]["status"] == "running":  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
            if self.tasks[upid].get("exitstatus") != "OK":  # type: ignore[attr-defined]
                shutil.rmtree(target, ignore_errors=True)

        # the loop keeps only weak references to tasks: hold each watcher until it is done
        watchers: set[asyncio.Future[None]] = self.__dict__.setdefault("_clone_watchers", set())
        watcher = asyncio.ensure_future(forget_if_failed())
        watchers.add(watcher)
        watcher.add_done_callback(watchers.discard)
        return upid
