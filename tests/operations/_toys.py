"""Toy operation kinds for the engine tests: real kinds (same base class, same engine), whose side
effects are entries in the journal and, for the crash tests, files on disk."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from proximity_sdk.engine.context import OperationContext
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.errors import TaskFailedError
from proximity_sdk.models.operation import Operation
from proximity_sdk.store import Store

__all__ = ["UNDO_FILE", "Blocking", "Cancellable", "FileEffects", "FinishesOnRecover", "Slotted", "Steps"]

# how long a toy waits on a gate before the test is declared hung
GATE = 20.0
UNDO_FILE = "undone.txt"


class Steps(OperationKind):
    """Three steps, each journals a ``thing`` named after it. Params: ``fail_at`` (a step raises
    a TaskFailedError with a log tail there), ``hold`` (the ``create`` step waits for ``release``),
    ``break_rollback`` (the rollback undoes one entry, then raises), ``plain`` (fail with a
    RuntimeError instead, so the context's task log is the tail)."""

    name = "toy"
    steps = ("prepare", "create", "finish")

    def __init__(self) -> None:
        self.undone: list[str] = []
        self.failures: list[str] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        made = []
        for step in self.steps:
            with ctx.step(step):
                if step == "create" and ctx.params.get("hold"):
                    self.entered.set()
                    assert self.release.wait(GATE), "the test never released the toy"
                if ctx.params.get("fail_at") == step:
                    ctx.task_log([f"log line {i}" for i in range(25)])
                    if ctx.params.get("plain"):
                        raise RuntimeError("disk on fire")
                    raise TaskFailedError(
                        "task went wrong",
                        upid="UPID:pve1:1:2:3:vzcreate:105:root@pam:",
                        exitstatus="command failed",
                        log_tail=["TASK ERROR: no space left"],
                    )
                ctx.record("thing", name=step)
                made.append(step)
        return {"made": made}

    def rollback(self, ctx: OperationContext) -> None:
        for effect in reversed(ctx.effects):
            if ctx.params.get("break_rollback") and self.undone:
                raise RuntimeError(f"cannot undo {effect['name']}")
            self.undone.append(effect["name"])
            ctx.forget("thing", name=effect["name"])

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        self.failures.append(type(error).__name__)

    def result(self, store: Store, operation: Operation) -> Any:
        return list(operation.result["made"])


class Cancellable(OperationKind):
    """Journals one entry, then loops on ``ctx.checkpoint()`` (a long Proxmox wait would)."""

    name = "loop"
    steps = ("setup", "spin")

    def __init__(self) -> None:
        self.spinning = threading.Event()
        self.stopped = threading.Event()
        self.undone: list[str] = []
        self.finished = False

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        with ctx.step("setup"):
            ctx.record("thing", name="setup")
        with ctx.step("spin"):
            deadline = time.monotonic() + GATE
            try:
                while time.monotonic() < deadline:
                    self.spinning.set()
                    ctx.checkpoint()
                    time.sleep(0.02)
            finally:
                self.stopped.set()
        self.finished = True
        return {}

    def rollback(self, ctx: OperationContext) -> None:
        ctx.checkpoint()  # a cancel must not interrupt the rollback it caused
        for effect in reversed(ctx.effects):
            self.undone.append(effect["name"])
            ctx.forget("thing", name=effect["name"])


class Slotted(OperationKind):
    """Holds a node slot for a while and counts how many operations are inside one at once."""

    name = "slotted"
    steps = ("mutate",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside = 0
        self.most = 0

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        with ctx.step("mutate"), ctx.node_slot("host-1", str(ctx.params["node"])):
            with self._lock:
                self.inside += 1
                self.most = max(self.most, self.inside)
            time.sleep(0.15)
            with self._lock:
                self.inside -= 1
        return {}


class Blocking(OperationKind):
    """Never finishes until told: the gate of the listener and lease tests."""

    name = "blocking"
    steps = ("work",)

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        with ctx.step("work"):
            self.entered.set()
            assert self.release.wait(GATE)
            if ctx.params.get("fail"):
                raise RuntimeError("boom")
        return {"ok": True}


class FileEffects(OperationKind):
    """Crash tests: ``make`` creates a file under ``params["dir"]`` and journals it, then (with
    ``block``) waits forever; the rollback deletes the files and writes what it undid to
    ``undone.txt``; that file is how the parent process sees the rollback happen."""

    name = "files"
    steps = ("make", "block")

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        folder = Path(ctx.params["dir"])
        with ctx.step("make"):
            for name in ("a", "b"):
                (folder / name).write_text(ctx.id)
                ctx.record("file", name=name)
        with ctx.step("block"):
            # written whole then renamed: the parent polls for the name and must never read it half-written
            (folder / "started.part").write_text(ctx.id)
            (folder / "started.part").rename(folder / "started")
            while True:  # the parent SIGKILLs us here
                ctx.checkpoint()
                time.sleep(0.05)

    def rollback(self, ctx: OperationContext) -> None:
        folder = Path(ctx.params["dir"])
        for effect in reversed(ctx.effects):
            (folder / effect["name"]).unlink(missing_ok=True)
            with (folder / UNDO_FILE).open("a") as out:
                out.write(effect["name"] + "\n")
            ctx.forget("file", name=effect["name"])


class FinishesOnRecover(FileEffects):
    """Its steps are idempotent: a process that takes it over finishes the work."""

    name = "files-resumable"

    def recover(self, ctx: OperationContext) -> dict[str, Any]:
        folder = Path(ctx.params["dir"])
        with ctx.step("block"):
            names = sorted(e["name"] for e in ctx.effects)
            (folder / "finished").write_text(",".join(names))
        return {"files": names, "resumed_at": ctx.operation.current_step}

    def result(self, store: Store, operation: Operation) -> Any:
        return operation.result
