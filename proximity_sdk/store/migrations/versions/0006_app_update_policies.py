"""Apps: automatic updates in a weekly maintenance window (one policy per app)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 00:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_update_policies",
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("days", sa.String(length=32), nullable=False),
        sa.Column("start", sa.String(length=5), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("last_window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_app_update_policies_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_app_update_policies")),
    )


def downgrade() -> None:
    op.drop_table("app_update_policies")
