"""roles, account audit, blocklist

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("responders") as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="responder")
        )
        batch_op.create_check_constraint(
            "ck_responders_role", sa.text("role IN ('responder', 'supervisor', 'admin')")
        )
    op.create_table(
        "account_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_account_events_target", "account_events", ["target"])
    op.create_table(
        "blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("blocked_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "reason IN ('abuse', 'spam', 'testing', 'impersonation', 'other')",
            name="ck_blocks_reason",
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_blocks_channel_address_hash", "blocks", ["channel", "address_hash"])


def downgrade() -> None:
    op.drop_index("ix_blocks_channel_address_hash", table_name="blocks")
    op.drop_table("blocks")
    op.drop_index("ix_account_events_target", table_name="account_events")
    op.drop_table("account_events")
    with op.batch_alter_table("responders") as batch_op:
        batch_op.drop_constraint("ck_responders_role", type_="check")
        batch_op.drop_column("role")
