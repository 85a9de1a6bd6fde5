"""Operations: every long action is a persisted record with ordered steps and an event log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from proximity_sdk.errors import OperationCancelled, OperationFailed
from proximity_sdk.models._html import HtmlRepr

__all__ = ["FINISHED_OPERATION_STATUSES", "Operation", "OperationEvent", "OperationStatus", "raise_unless_succeeded"]


class OperationStatus(StrEnum):
    """``pending -> running -> succeeded | failed | cancelled``."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_OPERATION_STATUSES = frozenset({OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELLED})


class Operation(HtmlRepr, BaseModel):
    """A long action (deploy, start, backup, ...) as recorded: status, steps, result or error."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    kind: str
    status: OperationStatus
    app_id: str | None = None
    host_id: str | None = None
    vmid: int | None = None
    owner_id: str | None = None
    steps: tuple[str, ...] = ()
    current_step: str | None = None
    error: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    deadline: datetime | None = None
    cancel_requested: bool = False
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_OPERATION_STATUSES

    def _repr_html_(self) -> str:
        # a progress card rather than the generic field table (the handle shows its events too)
        from proximity_sdk.models._html import operation_card

        return operation_card(self)


class OperationEvent(HtmlRepr, BaseModel):
    """One line of an operation's append-only log. ``seq`` counts from 1 per operation;
    ``progress`` is the fraction done (0.0 to 1.0) when known."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    operation_id: str
    seq: int = Field(ge=1)
    time: datetime
    step: str | None = None
    level: Literal["debug", "info", "warning", "error"] = "info"
    message: str
    progress: float | None = Field(default=None, ge=0.0, le=1.0)


def raise_unless_succeeded(op: Operation) -> None:
    """For a finished operation, what ``wait()`` raises unless it succeeded (local and remote handles alike)."""
    if op.status == OperationStatus.SUCCEEDED:
        return
    if op.status == OperationStatus.CANCELLED:
        raise OperationCancelled(f"{op.kind} operation {op.id} was cancelled", operation_id=op.id)
    raise OperationFailed(
        f"{op.kind} failed: {op.error}",
        operation_id=op.id,
        step=op.result.get("failed_step"),
        log_tail=op.result.get("log_tail") or (),
    )
