"""handoff queue: queue order, routing, paging, console sessions, notes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('received', 'processed', 'failed', 'sent')"
NEW_STATUSES = "status IN ('received', 'processed', 'failed', 'sent', 'pending', 'delivered')"


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.add_column(
            sa.Column(
                "dialogue_reset_pending", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("responders") as batch_op:
        batch_op.add_column(
            sa.Column("ui_language", sa.String(length=8), nullable=False, server_default="en")
        )
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "responder_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("responder_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["responder_id"], ["responders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_responder_sessions_responder_id", "responder_sessions", ["responder_id"])

    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("queue_key", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("office", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("assigned_to", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("holding_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("bot_form_open", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("pages_sent", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("next_page_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_cases_assigned_to", "responders", ["assigned_to"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_cases_status_queue_key", ["status", "queue_key", "id"])
    op.execute("UPDATE cases SET queue_key = waiting_since WHERE waiting_since IS NOT NULL")

    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("author_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_messages_author_id", "responders", ["author_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.drop_constraint("ck_messages_status", type_="check")
        batch_op.create_check_constraint("ck_messages_status", sa.text(NEW_STATUSES))

    op.create_table(
        "case_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["responders.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_notes_case_id", "case_notes", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_notes_case_id", table_name="case_notes")
    op.drop_table("case_notes")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_constraint("ck_messages_status", type_="check")
        batch_op.create_check_constraint("ck_messages_status", sa.text(OLD_STATUSES))
        batch_op.drop_constraint("fk_messages_author_id", type_="foreignkey")
        batch_op.drop_column("author_id")
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_index("ix_cases_status_queue_key")
        batch_op.drop_constraint("fk_cases_assigned_to", type_="foreignkey")
        for column in (
            "next_page_at",
            "pages_sent",
            "bot_form_open",
            "holding_sent_at",
            "claimed_at",
            "assigned_to",
            "office",
            "queue_key",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_responder_sessions_responder_id", table_name="responder_sessions")
    op.drop_table("responder_sessions")
    with op.batch_alter_table("responders") as batch_op:
        for column in ("last_login_at", "locked_until", "failed_logins", "ui_language"):
            batch_op.drop_column(column)
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.drop_column("dialogue_reset_pending")
