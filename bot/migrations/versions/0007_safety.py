"""safety in the conversation, consent and sharing, deletion on request

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("erase_told_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("deletion_asked_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("deletion_due_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("reassured_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "impersonation_caution", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("given_by", sa.String(length=16), nullable=False),
        sa.Column("recipient_kind", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "basis IN ('consent', 'minor', 'threat_to_life')", name="ck_consents_basis"
        ),
        sa.CheckConstraint(
            "given_by IN ('person', 'guardian', 'none')", name="ck_consents_given_by"
        ),
        sa.CheckConstraint(
            "recipient_kind IN ('police', 'embassy', 'partner', 'other')",
            name="ck_consents_recipient_kind",
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consents_case_id", "consents", ["case_id"])
    op.create_table(
        "case_summaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("indicators", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("reporter", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.Column("office", sa.String(length=8), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_summaries_case_id", "case_summaries", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_summaries_case_id", table_name="case_summaries")
    op.drop_table("case_summaries")
    op.drop_index("ix_consents_case_id", table_name="consents")
    op.drop_table("consents")
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_column("erased_at")
        batch_op.drop_column("impersonation_caution")
        batch_op.drop_column("reassured_at")
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.drop_column("deletion_due_at")
        batch_op.drop_column("deletion_asked_at")
        batch_op.drop_column("erase_told_at")
        batch_op.drop_column("paused_at")
