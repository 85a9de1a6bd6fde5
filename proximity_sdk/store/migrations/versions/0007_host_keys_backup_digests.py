"""Hosts: SSH host keys pinned in the database; backups: the archive's SHA-256 (issue 15)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 23:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "host_keys",
        sa.Column("host_id", sa.String(length=36), nullable=False),
        sa.Column("hostname", sa.String(length=300), nullable=False),
        sa.Column("key_type", sa.String(length=64), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_host_keys_host_id_hosts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("host_id", "hostname", "key_type", name=op.f("pk_host_keys")),
    )
    with op.batch_alter_table("backups") as batch:
        batch.add_column(sa.Column("digest", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backups") as batch:
        batch.drop_column("digest")
    op.drop_table("host_keys")
