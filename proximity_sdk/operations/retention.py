"""Which backups a retention policy keeps: Proxmox's prune rules (keep-last, -daily, -weekly), pure.

The rules are applied in order, as ``proxmox-backup``'s ``compute_prune_info`` does: keep-last
keeps the newest N; keep-daily then keeps the newest backup of each of the N most recent days that
are not already covered by a kept backup, and keep-weekly the same per ISO week (UTC). Whatever no
rule keeps is pruned. With no rule at all nothing is pruned, and the newest backup is never pruned
(the only good backup is never deleted).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from proximity_sdk.errors import ValidationError

__all__ = ["Retention", "RetentionItem", "prune_plan"]


@dataclass(frozen=True)
class Retention:
    keep_last: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None

    def __post_init__(self) -> None:
        for name in ("keep_last", "keep_daily", "keep_weekly"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValidationError(f"{name} must be a whole number of at least 1, or None", field=name)

    @property
    def keeps_all(self) -> bool:
        return self.keep_last is None and self.keep_daily is None and self.keep_weekly is None


@dataclass(frozen=True)
class RetentionItem:
    """One good (completed) backup: its id and when it was made."""

    id: str
    created_at: datetime


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _mark(
    items: Sequence[RetentionItem],
    keep: dict[str, bool],
    count: int | None,
    period: Callable[[RetentionItem], Hashable],
) -> None:
    if not count:
        return
    covered = {period(item) for item in items if keep.get(item.id)}
    chosen: set[Hashable] = set()
    for item in items:  # newest first
        if item.id in keep:
            continue
        key = period(item)
        if key in covered:
            continue
        if key in chosen:
            keep[item.id] = False
            continue
        if len(chosen) >= count:
            break
        chosen.add(key)
        keep[item.id] = True


def _week(item: RetentionItem) -> str:
    year, week, _ = _utc(item.created_at).isocalendar()
    return f"{year}-W{week:02d}"


def prune_plan(items: Sequence[RetentionItem], policy: Retention) -> tuple[list[str], list[str]]:
    """(ids to keep, ids to prune), both newest first."""
    ordered = sorted(items, key=lambda i: (_utc(i.created_at), i.id), reverse=True)
    if policy.keeps_all:
        return [i.id for i in ordered], []
    keep: dict[str, bool] = {}
    _mark(ordered, keep, policy.keep_last, lambda i: i.id)
    _mark(ordered, keep, policy.keep_daily, lambda i: _utc(i.created_at).strftime("%Y-%m-%d"))
    _mark(ordered, keep, policy.keep_weekly, _week)
    if ordered:
        keep[ordered[0].id] = True  # never prune the newest good backup
    return ([i.id for i in ordered if keep.get(i.id)], [i.id for i in ordered if not keep.get(i.id)])
