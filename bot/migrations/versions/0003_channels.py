"""channels: outbound provider ids, send retries, unreachable and opted-out contacts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('received', 'processed', 'failed', 'sent', 'pending', 'delivered')"
NEW_STATUSES = (
    "status IN ('received', 'processed', 'failed', 'sent', 'pending', 'delivered', 'sending')"
)


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.add_column(
            sa.Column("unreachable_since", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("opted_out", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("provider_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_messages_provider_id", ["provider_id"])
        batch_op.drop_constraint("ck_messages_status", type_="check")
        batch_op.create_check_constraint("ck_messages_status", sa.text(NEW_STATUSES))
    # Outbound ids written by the relay so far move to provider_id.
    op.execute(
        "UPDATE messages SET provider_id = external_id, external_id = NULL "
        "WHERE direction = 'out' AND external_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("UPDATE messages SET status = 'failed' WHERE status = 'sending'")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_constraint("ck_messages_status", type_="check")
        batch_op.create_check_constraint("ck_messages_status", sa.text(OLD_STATUSES))
        batch_op.drop_index("ix_messages_provider_id")
        for column in ("next_attempt_at", "attempts", "provider_id"):
            batch_op.drop_column(column)
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.drop_column("opted_out")
        batch_op.drop_column("unreachable_since")
