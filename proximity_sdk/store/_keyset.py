"""Keyset paging: a page starts after the last row of the previous one, found by the index.

Lists are ordered by ``(created_at, id)`` (ids break ties between rows created in the same
microsecond). Where OFFSET makes the database walk and drop every earlier row, the cursor
``(created_at, id)`` of the last row seen lets it seek straight to the next one, so page
1,000 costs what page 1 costs, and a row added or deleted meanwhile neither repeats nor
skips another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_

from proximity_sdk.errors import ValidationError

__all__ = ["Cursor", "after_condition", "after_cursor", "checked_cursor"]

Cursor = tuple[datetime, str]  # (created_at, id) of the last row of the previous page

_S = TypeVar("_S", bound=Select[Any])


def after_cursor(
    query: _S, created: Any, ident: Any, cursor: Cursor | None, *, newest_first: bool, id_descending: bool
) -> _S:
    """``query`` restricted to the rows after ``cursor`` in its order (time, then id)."""
    if cursor is None:
        return query
    at, row_id = checked_cursor(cursor)
    return query.where(
        after_condition(created, ident, at, row_id, newest_first=newest_first, id_descending=id_descending)
    )


def checked_cursor(cursor: Cursor) -> Cursor:
    at, row_id = cursor
    if not isinstance(at, datetime) or at.tzinfo is None or not isinstance(row_id, str):
        raise ValidationError("a page cursor is (timezone-aware created_at, id)", field="after")
    return at, row_id


def after_condition(
    created: Any, ident: Any, at: Any, row_id: Any, *, newest_first: bool, id_descending: bool
) -> ColumnElement[bool]:
    """The rows after ``(at, row_id)`` in the order (time, then id); values or bound parameters."""
    later_time = created < at if newest_first else created > at
    later_id = ident < row_id if id_descending else ident > row_id
    # The first bound says the same as the OR but alone can be seeked by an index on created_at:
    # without it SQLite walks the index from its start to the cursor (page 100 cost 8x page 1).
    not_earlier = created <= at if newest_first else created >= at
    return and_(not_earlier, or_(later_time, and_(created == at, later_id)))
