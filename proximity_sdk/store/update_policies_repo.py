"""Automatic update policies: one maintenance window per app, and the claim of each window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from proximity_sdk.errors import NotFoundError
from proximity_sdk.models.update import UpdateWindow
from proximity_sdk.store._common import StoreContext
from proximity_sdk.store.tables import AppRow, AppUpdatePolicyRow

__all__ = ["UpdatePoliciesRepository"]


def _window(row: AppUpdatePolicyRow) -> UpdateWindow:
    return UpdateWindow.model_validate({"days": tuple(row.days.split(",")), "start": row.start, "minutes": row.minutes})


class UpdatePoliciesRepository:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def set(self, app_id: str, window: UpdateWindow | None) -> UpdateWindow | None:
        """Give the app this window (replacing its policy), or none (``None``: no automatic updates)."""
        with self._ctx.session(immediate=True) as s:
            if s.get(AppRow, app_id) is None:
                raise NotFoundError(f"no app {app_id!r}", hint="List the apps with px.apps.list()")
            row = s.get(AppUpdatePolicyRow, app_id)
            if window is None:
                if row is not None:
                    s.delete(row)
                return None
            if row is None:
                row = AppUpdatePolicyRow(app_id=app_id)
                s.add(row)
            row.days, row.start, row.minutes = ",".join(window.days), window.start, window.minutes
            return window

    def get(self, app_id: str) -> UpdateWindow | None:
        with self._ctx.session() as s:
            row = s.get(AppUpdatePolicyRow, app_id)
            return None if row is None else _window(row)

    def all(self) -> list[tuple[str, UpdateWindow]]:
        """Every app with automatic updates, and its window."""
        with self._ctx.session() as s:
            rows = s.scalars(select(AppUpdatePolicyRow).order_by(AppUpdatePolicyRow.app_id)).all()
            return [(row.app_id, _window(row)) for row in rows]

    def claim(self, app_id: str, opened: datetime) -> bool:
        """Take the window that opened at ``opened`` for this app; False when it was taken already
        (by this or another process: a compare-and-set)."""
        with self._ctx.session(immediate=True) as s:
            done = s.execute(
                update(AppUpdatePolicyRow)
                .where(
                    AppUpdatePolicyRow.app_id == app_id,
                    or_(AppUpdatePolicyRow.last_window_start.is_(None), AppUpdatePolicyRow.last_window_start < opened),
                )
                .values(last_window_start=opened)
            ).rowcount  # type: ignore[attr-defined]
            return bool(done)

    def release(self, app_id: str, opened: datetime) -> None:
        """Give a claimed window back (the app was busy): a later check in the same window may act."""
        with self._ctx.session(immediate=True) as s:
            s.execute(
                update(AppUpdatePolicyRow)
                .where(AppUpdatePolicyRow.app_id == app_id, AppUpdatePolicyRow.last_window_start == opened)
                .values(last_window_start=None)
            )
