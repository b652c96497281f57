"""retention: cases on hold, the purge log

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(
            sa.Column("on_hold", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "purges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rasa_sender", sa.String(length=32), nullable=True),
        sa.Column("tracker_cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_purges_case_id", "purges", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_purges_case_id", table_name="purges")
    op.drop_table("purges")
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_column("on_hold")
