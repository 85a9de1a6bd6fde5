"""API tokens: revoking keeps the record (revoked_at) instead of deleting the row

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # a revoked token must not come back to life when its column goes away
    op.execute(sa.text("DELETE FROM api_tokens WHERE revoked_at IS NOT NULL"))
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("revoked_at")
