"""The data model: contacts, cases, messages, responders and the case audit trail.

A *contact* is one person on one channel, known only by a keyed hash of their
address (plus the address encrypted, to reply). A *case* is a conversation of
that contact with Beacon; it starts with the bot and moves through the handoff
queue (``bot`` -> ``queued`` -> ``claimed`` -> ``resolved``). Every change of a
case is kept in ``case_events`` with who did it and when; every change of a
responder account in ``account_events``. A *block* silences a sender (by the
keyed hash of their address) for a while or for good.
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, declarative_base, relationship

from bot.db import crypto

Base: Any = declarative_base()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_public_id() -> str:
    return secrets.token_urlsafe(18)


class UTCDateTime(TypeDecorator):  # type: ignore[misc]
    """A timezone-aware timestamp, stored in UTC, returned aware on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class EncryptedText(TypeDecorator):  # type: ignore[misc]
    """Text encrypted at rest with the configured Fernet keys."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else crypto.encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else crypto.decrypt(value)


class CaseStatus(str, enum.Enum):
    BOT = "bot"
    QUEUED = "queued"
    CLAIMED = "claimed"
    RESOLVED = "resolved"


class Direction(str, enum.Enum):
    IN = "in"
    OUT = "out"


class MessageStatus(str, enum.Enum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"
    SENT = "sent"
    PENDING = "pending"
    DELIVERED = "delivered"
    #: Handed to a push channel's API, answer not recorded yet (a crash here is
    #: never re-sent: the message becomes ``failed``, error ``interrupted``).
    SENDING = "sending"


URGENCY_VALUES = ("low", "medium", "high", "critical")
REPORTER_VALUES = ("self", "other", "unknown")
#: Console roles, least to most access (see bot/handoff/casework.py).
ROLES = ("responder", "supervisor", "admin")
#: Why a sender was blocked.
BLOCK_REASONS = ("abuse", "spam", "testing", "impersonation", "other")
#: Why a case's details may go outside the hotline.
CONSENT_BASES = ("consent", "minor", "threat_to_life")
#: Who gave the consent (``none``: shared without consent, on a minor's or a life's ground).
CONSENT_GIVERS = ("person", "guardian", "none")
RECIPIENT_KINDS = ("police", "embassy", "partner", "other")


def _check(table: str, column: str, values: Any) -> CheckConstraint:
    listed = ", ".join(f"'{getattr(v, 'value', v)}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"ck_{table}_{column}")


class Contact(Base):  # type: ignore[misc]
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "address_hash", name="uq_contact_address"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    public_id: Mapped[str] = Column(String(32), nullable=False, unique=True, default=new_public_id)
    channel: Mapped[str] = Column(String(16), nullable=False)
    address_hash: Mapped[str] = Column(String(64), nullable=False)
    address: Mapped[str | None] = Column(EncryptedText, nullable=True)
    language: Mapped[str | None] = Column(String(8), nullable=True)
    #: The language the person asked for ("can you speak Thai?"): it wins over
    #: detection, across sessions, until they choose another.
    chosen_language: Mapped[str | None] = Column(String(8), nullable=True)
    #: A responder resolved the case: the assistant's dialogue state is reset
    #: before it reads the person's next message.
    dialogue_reset_pending: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    #: The channel refused to deliver to this person (they blocked the bot, the
    #: number is unreachable); cleared when they write again.
    unreachable_since: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    #: The person sent STOP by SMS: nothing is sent until they send START.
    opted_out: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    #: The person wrote "later" or "busy", or erased the chat: nothing is sent,
    #: not even a responder's reply, until they write again.
    paused_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    #: When the person was told, once, how to erase the chat from their phone.
    erase_told_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    #: The person asked to delete their data; Beacon waits for them to confirm.
    deletion_asked_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    #: The person confirmed: everything is deleted once the confirmation went out.
    deletion_due_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)

    cases = relationship("Case", back_populates="contact")


class Responder(Base):  # type: ignore[misc]
    __tablename__ = "responders"
    __table_args__ = (_check("responders", "role", ROLES),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    username: Mapped[str] = Column(String(64), nullable=False, unique=True)
    display_name: Mapped[str] = Column(String(128), nullable=False, default="")
    password_hash: Mapped[str] = Column(String(255), nullable=False)
    languages: Mapped[list[str]] = Column(JSON, nullable=False, default=list)
    offices: Mapped[list[str]] = Column(JSON, nullable=False, default=list)
    #: ``responder``, ``supervisor`` or ``admin``: what the account may see and do.
    role: Mapped[str] = Column(String(16), nullable=False, default="responder")
    is_active: Mapped[bool] = Column(Boolean, nullable=False, default=True)
    ui_language: Mapped[str] = Column(String(8), nullable=False, default="en")
    failed_logins: Mapped[int] = Column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    last_login_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)


class ResponderSession(Base):  # type: ignore[misc]
    """A logged-in console session; the cookie holds a token, the table its hash."""

    __tablename__ = "responder_sessions"

    id: Mapped[int] = Column(Integer, primary_key=True)
    token_hash: Mapped[str] = Column(String(64), nullable=False, unique=True)
    responder_id: Mapped[int] = Column(
        Integer, ForeignKey("responders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    csrf_token: Mapped[str] = Column(String(64), nullable=False)
    created_at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = Column(UTCDateTime, nullable=False)
    last_seen_at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)


class Case(Base):  # type: ignore[misc]
    __tablename__ = "cases"
    __table_args__ = (
        _check("cases", "status", CaseStatus),
        _check("cases", "urgency", URGENCY_VALUES),
        _check("cases", "reporter", REPORTER_VALUES),
        # At most one case per contact is not resolved: concurrent first messages share it.
        Index(
            "uq_cases_one_active_per_contact",
            "contact_id",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        # "Take next" reads queued cases in queue order.
        Index("ix_cases_status_queue_key", "status", "queue_key", "id"),
    )

    id: Mapped[int] = Column(Integer, primary_key=True)
    contact_id: Mapped[int] = Column(
        Integer, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status: Mapped[str] = Column(String(16), nullable=False, default=CaseStatus.BOT.value)
    urgency: Mapped[str] = Column(String(16), nullable=False, default="low")
    language: Mapped[str | None] = Column(String(8), nullable=True)
    indicators: Mapped[list[str]] = Column(JSON, nullable=False, default=list)
    reporter: Mapped[str] = Column(String(16), nullable=False, default="unknown")
    channel: Mapped[str] = Column(String(16), nullable=False)
    country: Mapped[str | None] = Column(String(64), nullable=True)
    location: Mapped[str | None] = Column(EncryptedText, nullable=True)
    created_at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = Column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    waiting_since: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    claimed_by: Mapped[int | None] = Column(
        Integer, ForeignKey("responders.id", ondelete="SET NULL"), nullable=True
    )
    resolved_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    #: Queue order: ``waiting_since`` moved earlier by the urgency's head start (aging).
    queue_key: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    #: The country office that serves the case (ISO 3166 alpha-2), if routed to one.
    office: Mapped[str | None] = Column(String(8), nullable=True)
    #: A responder the case was transferred to: offered to them only (unless critical).
    assigned_to: Mapped[int | None] = Column(
        Integer, ForeignKey("responders.id", ondelete="SET NULL"), nullable=True
    )
    claimed_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    #: When the person last got the holding message (or the handoff reply).
    holding_sent_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    #: The bot is still asking its safety questions while the case waits.
    bot_form_open: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    #: Kept beyond retention (and deletion requests keep an anonymised summary):
    #: a responder put the case on hold for an open investigation.
    on_hold: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    pages_sent: Mapped[int] = Column(Integer, nullable=False, default=0)
    #: When the person was told they are not in trouble for what they were forced to do.
    reassured_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    #: Someone asked where a named person is: they may be looking for an escapee.
    impersonation_caution: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    #: When the person last erased the chat from their phone.
    erased_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    next_page_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)

    contact = relationship("Contact", back_populates="cases")
    messages = relationship("Message", back_populates="case", order_by="Message.id")
    events = relationship("CaseEvent", back_populates="case", order_by="CaseEvent.id")


class Message(Base):  # type: ignore[misc]
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_message_external_id"),
        _check("messages", "direction", Direction),
        _check("messages", "status", MessageStatus),
    )

    id: Mapped[int] = Column(Integer, primary_key=True)
    case_id: Mapped[int] = Column(
        Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True
    )
    direction: Mapped[str] = Column(String(8), nullable=False)
    channel: Mapped[str] = Column(String(16), nullable=False)
    external_id: Mapped[str | None] = Column(String(128), nullable=True)
    reply_to_id: Mapped[int | None] = Column(
        Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=True, index=True
    )
    #: The responder who wrote an outbound message (None: the bot).
    author_id: Mapped[int | None] = Column(
        Integer, ForeignKey("responders.id", ondelete="SET NULL"), nullable=True
    )
    body: Mapped[str] = Column(EncryptedText, nullable=False)
    payload: Mapped[dict[str, Any] | None] = Column(JSON, nullable=True)
    status: Mapped[str] = Column(String(16), nullable=False)
    error: Mapped[str | None] = Column(String(255), nullable=True)
    created_at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)
    processed_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    #: The channel's id of a message Beacon sent (Telegram message ids, Twilio
    #: MessageSids): not unique across chats, so kept apart from ``external_id``.
    provider_id: Mapped[str | None] = Column(String(128), nullable=True, index=True)
    #: Sending attempts so far, and when the next one is due (transient errors).
    attempts: Mapped[int] = Column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)

    case = relationship("Case", back_populates="messages")


class CaseEvent(Base):  # type: ignore[misc]
    __tablename__ = "case_events"

    id: Mapped[int] = Column(Integer, primary_key=True)
    case_id: Mapped[int] = Column(
        Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True
    )
    actor: Mapped[str] = Column(String(64), nullable=False)
    action: Mapped[str] = Column(String(32), nullable=False)
    from_status: Mapped[str | None] = Column(String(16), nullable=True)
    to_status: Mapped[str | None] = Column(String(16), nullable=True)
    detail: Mapped[dict[str, Any] | None] = Column(JSON, nullable=True)
    at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)

    case = relationship("Case", back_populates="events")


class CaseNote(Base):  # type: ignore[misc]
    """A responder's private note on a case: never sent to the person."""

    __tablename__ = "case_notes"

    id: Mapped[int] = Column(Integer, primary_key=True)
    case_id: Mapped[int] = Column(
        Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True
    )
    author_id: Mapped[int | None] = Column(
        Integer, ForeignKey("responders.id", ondelete="SET NULL"), nullable=True
    )
    body: Mapped[str] = Column(EncryptedText, nullable=False)
    created_at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)


class Purge(Base):  # type: ignore[misc]
    """A record that a case's personal data was deleted (retention or a request).

    Holds no personal data: the case id (the case row is gone), why, who, when,
    and the contact's pseudonymous Rasa id until the assistant's own copy of the
    conversation (its tracker) has been cleared too.
    """

    __tablename__ = "purges"

    id: Mapped[int] = Column(Integer, primary_key=True)
    case_id: Mapped[int] = Column(Integer, nullable=False, index=True)
    reason: Mapped[str] = Column(String(32), nullable=False)
    actor: Mapped[str] = Column(String(64), nullable=False)
    at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)
    #: Cleared (set to None) once Rasa's tracker for this sender was emptied.
    rasa_sender: Mapped[str | None] = Column(String(32), nullable=True)
    tracker_cleared_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)


class AccountEvent(Base):  # type: ignore[misc]
    """A change of a responder account: who changed it, what, when (admins read these)."""

    __tablename__ = "account_events"

    id: Mapped[int] = Column(Integer, primary_key=True)
    actor: Mapped[str] = Column(String(64), nullable=False)
    action: Mapped[str] = Column(String(32), nullable=False)
    #: The username of the account changed.
    target: Mapped[str] = Column(String(64), nullable=False, index=True)
    detail: Mapped[dict[str, Any] | None] = Column(JSON, nullable=True)
    at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)


class Block(Base):  # type: ignore[misc]
    """A sender blocked until ``until`` (None: for good) or until a responder lifts it.

    Keyed by the contact's channel and keyed address hash, never the address,
    and not tied to the contact row: deleting a person's data does not lift it.
    """

    __tablename__ = "blocks"
    __table_args__ = (
        _check("blocks", "reason", BLOCK_REASONS),
        Index("ix_blocks_channel_address_hash", "channel", "address_hash"),
    )

    id: Mapped[int] = Column(Integer, primary_key=True)
    channel: Mapped[str] = Column(String(16), nullable=False)
    address_hash: Mapped[str] = Column(String(64), nullable=False)
    reason: Mapped[str] = Column(String(16), nullable=False)
    #: The case the block was set from (None once that case is purged).
    case_id: Mapped[int | None] = Column(
        Integer, ForeignKey("cases.id", ondelete="SET NULL"), nullable=True
    )
    blocked_by: Mapped[str] = Column(String(64), nullable=False)
    created_at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)
    until: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    lifted_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    lifted_by: Mapped[str | None] = Column(String(64), nullable=True)


class Consent(Base):  # type: ignore[misc]
    """Permission to share a case's details with one recipient outside the hotline.

    ``basis`` is ``consent`` (given by the person or a guardian), or ``minor``
    or ``threat_to_life`` (shared without consent; ``reason`` says why).
    ``data`` lists what may be shared (see :mod:`bot.privacy.consent`).
    """

    __tablename__ = "consents"
    __table_args__ = (
        _check("consents", "basis", CONSENT_BASES),
        _check("consents", "given_by", CONSENT_GIVERS),
        _check("consents", "recipient_kind", RECIPIENT_KINDS),
    )

    id: Mapped[int] = Column(Integer, primary_key=True)
    case_id: Mapped[int] = Column(
        Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True
    )
    basis: Mapped[str] = Column(String(16), nullable=False)
    given_by: Mapped[str] = Column(String(16), nullable=False)
    recipient_kind: Mapped[str] = Column(String(16), nullable=False)
    recipient: Mapped[str] = Column(EncryptedText, nullable=False)
    data: Mapped[list[str]] = Column(JSON, nullable=False, default=list)
    reason: Mapped[str | None] = Column(EncryptedText, nullable=True)
    recorded_by: Mapped[str] = Column(String(64), nullable=False)
    recorded_at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = Column(UTCDateTime, nullable=True)
    withdrawn_by: Mapped[str | None] = Column(String(64), nullable=True)


class CaseSummary(Base):  # type: ignore[misc]
    """What survives of a case on hold when the person asks for their data to be deleted.

    No personal data: no text, no address, no place finer than the country.
    """

    __tablename__ = "case_summaries"

    id: Mapped[int] = Column(Integer, primary_key=True)
    case_id: Mapped[int] = Column(Integer, nullable=False, index=True)
    opened_at: Mapped[datetime] = Column(UTCDateTime, nullable=False)
    urgency: Mapped[str] = Column(String(16), nullable=False)
    indicators: Mapped[list[str]] = Column(JSON, nullable=False, default=list)
    language: Mapped[str | None] = Column(String(8), nullable=True)
    reporter: Mapped[str] = Column(String(16), nullable=False)
    channel: Mapped[str] = Column(String(16), nullable=False)
    country: Mapped[str | None] = Column(String(64), nullable=True)
    office: Mapped[str | None] = Column(String(8), nullable=True)
    reason: Mapped[str] = Column(String(32), nullable=False)
    created_at: Mapped[datetime] = Column(UTCDateTime, nullable=False, default=utcnow)
