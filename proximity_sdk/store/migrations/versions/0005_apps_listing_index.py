"""Apps: an index on the listing order (created_at, id), so a page does not sort the whole table

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 23:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_apps_created_at_id", "apps", ["created_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_apps_created_at_id", table_name="apps")
