"""What an operation kind implements: run, roll back, recover after a takeover, and its result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from proximity_sdk.engine.context import OperationContext
    from proximity_sdk.models.operation import Operation
    from proximity_sdk.store import Store

__all__ = ["OperationKind"]


class OperationKind:
    """One kind of long action (deploy, start, ...). Subclasses set ``name`` and ``steps`` and
    implement ``run``; every external side effect is recorded with ``ctx.record`` as soon as it
    happens, so that ``rollback`` (here, or in another process after a crash) can undo it."""

    name: ClassVar[str]
    steps: ClassVar[tuple[str, ...]]
    #: seconds after which the janitor fails and rolls back an operation still running
    deadline_seconds: ClassVar[float] = 3600.0

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        """Do the work; return the JSON result (e.g. ``{"app_id": ...}``)."""
        raise NotImplementedError

    def rollback(self, ctx: OperationContext) -> None:
        """Undo the recorded side effects, newest first. Must be safe to run twice."""

    def recover(self, ctx: OperationContext) -> dict[str, Any]:
        """Called in the process that took over an operation whose runner died. The default
        rolls back and reports the failure; kinds whose steps are idempotent may finish instead."""
        where = f"at step {ctx.current_step}" if ctx.current_step else "before its first step"
        raise RunnerLost(f"the process running this {self.name} stopped {where}")

    def result(self, store: Store, operation: Operation) -> Any:
        """What ``wait()`` returns for a succeeded operation."""
        return None

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        """After a rollback that followed a failure (e.g. mark the app ``error``)."""


class RunnerLost(Exception):
    """The previous runner died; the operation is rolled back."""
