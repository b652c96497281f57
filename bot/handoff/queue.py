"""Queue operations on cases: record messages, open (escalate) cases, list the queue.

The gateway records every inbound message here *before* it is processed, and
every bot reply after. The action server opens a case when screening asks for
a person. Both go through these functions, so a case's urgency can only rise
and every status change leaves a ``case_events`` row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import crypto
from bot.db.models import (
    Case,
    CaseEvent,
    CaseStatus,
    Contact,
    Direction,
    Message,
    MessageStatus,
    utcnow,
)
from bot.screening.types import INDICATORS, ScreeningResult, max_urgency, urgency_rank
from bot.screening.urgency import classify

OPEN_STATUSES = (CaseStatus.QUEUED.value, CaseStatus.CLAIMED.value)
ACTIVE_STATUSES = (CaseStatus.BOT.value, *OPEN_STATUSES)


T = TypeVar("T")


def _insert_or_fetch(session: Session, row: T, fetch: Callable[[], T | None]) -> T:
    """Inserts ``row``, or returns the equal row a concurrent writer inserted first."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = fetch()
        if existing is None:
            raise
        return existing
    return row


def address_key(channel: str, address: str) -> str:
    """The keyed hash a contact is found by (the address itself is never stored in clear)."""
    return crypto.keyed_hash(f"{channel}:{address}")


def get_or_create_contact(session: Session, channel: str, address: str) -> Contact:
    """The contact for ``address`` on ``channel``, created on first contact."""
    key = address_key(channel, address)

    def fetch() -> Contact | None:
        found: Contact | None = session.execute(
            select(Contact).where(Contact.channel == channel, Contact.address_hash == key)
        ).scalar_one_or_none()
        return found

    contact = fetch()
    if contact is None:
        contact = _insert_or_fetch(
            session, Contact(channel=channel, address_hash=key, address=address), fetch
        )
    return contact


def current_case(session: Session, contact: Contact) -> Case:
    """The contact's active case, or a new one with the bot (a resolved case stays closed)."""

    def fetch() -> Case | None:
        found: Case | None = session.execute(
            select(Case).where(Case.contact_id == contact.id, Case.status.in_(ACTIVE_STATUSES))
        ).scalar_one_or_none()
        return found

    case = fetch()
    if case is None:
        new = Case(contact_id=contact.id, channel=contact.channel, status=CaseStatus.BOT.value)
        case = _insert_or_fetch(session, new, fetch)
        if case is new:
            _event(session, case, "bot", "opened", None, CaseStatus.BOT.value)
    return case


def _event(
    session: Session,
    case: Case,
    actor: str,
    action: str,
    from_status: str | None,
    to_status: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        CaseEvent(
            case_id=case.id,
            actor=actor,
            action=action,
            from_status=from_status,
            to_status=to_status,
            detail=detail,
        )
    )


@dataclass(frozen=True)
class Inbound:
    """An inbound message as recorded: ``duplicate`` when it had been received before."""

    contact: Contact
    case: Case
    message: Message
    duplicate: bool


def _find_message(session: Session, channel: str, external_id: str) -> Message | None:
    found: Message | None = session.execute(
        select(Message).where(Message.channel == channel, Message.external_id == external_id)
    ).scalar_one_or_none()
    return found


def _duplicate(session: Session, existing: Message) -> Inbound:
    case = session.get(Case, existing.case_id)
    return Inbound(case.contact, case, existing, duplicate=True)


def record_inbound(
    session: Session,
    *,
    channel: str,
    address: str,
    text: str,
    external_id: str | None,
    payload: dict[str, Any] | None = None,
) -> Inbound:
    """Stores an inbound message before anything else happens to it.

    A message whose ``(channel, external_id)`` was already stored is returned
    as a duplicate, so a redelivery is acknowledged but never handled twice.
    """
    if external_id is not None:
        existing = _find_message(session, channel, external_id)
        if existing is not None:
            return _duplicate(session, existing)
    contact = get_or_create_contact(session, channel, address)
    case = current_case(session, contact)
    message = Message(
        case_id=case.id,
        direction=Direction.IN.value,
        channel=channel,
        external_id=external_id,
        body=text,
        payload=payload,
        status=MessageStatus.RECEIVED.value,
    )
    stored = _insert_or_fetch(
        session,
        message,
        lambda: _find_message(session, channel, external_id) if external_id else None,
    )
    if stored is not message:
        # The same message arrived twice at once: the other delivery stored it first.
        return _duplicate(session, stored)
    return Inbound(contact, case, message, duplicate=False)


def record_replies(
    session: Session, inbound: Message, replies: list[dict[str, Any]], status: str
) -> list[Message]:
    """Stores the bot's replies to ``inbound`` and marks it processed."""
    stored = []
    for reply in replies:
        message = Message(
            case_id=inbound.case_id,
            direction=Direction.OUT.value,
            channel=inbound.channel,
            reply_to_id=inbound.id,
            body=str(reply.get("text") or ""),
            payload={"buttons": reply["buttons"]} if reply.get("buttons") else None,
            status=status,
        )
        session.add(message)
        stored.append(message)
    inbound.status = MessageStatus.PROCESSED.value
    inbound.processed_at = utcnow()
    session.flush()
    return stored


def replies_to(session: Session, inbound: Message) -> list[Message]:
    """The stored replies to an inbound message, in order."""
    return list(
        session.execute(
            select(Message).where(Message.reply_to_id == inbound.id).order_by(Message.id)
        ).scalars()
    )


def _contact_by_public_id(session: Session, public_id: str) -> Contact | None:
    found: Contact | None = session.execute(
        select(Contact).where(Contact.public_id == public_id)
    ).scalar_one_or_none()
    return found


def _contact_for_sender(session: Session, sender_id: str, channel: str) -> Contact:
    contact = _contact_by_public_id(session, sender_id)
    if contact is None:
        # A conversation that did not come through the gateway (rasa shell, a test):
        # still never lose the case.
        contact = get_or_create_contact(session, channel, f"rasa:{sender_id}")
    return contact


def merge_indicators(*groups: list[str] | tuple[str, ...] | None) -> list[str]:
    """Union of indicator lists, in the contract's order."""
    merged = {i for group in groups if group for i in group}
    return [i for i in INDICATORS if i in merged]


def escalate(
    session: Session,
    sender_id: str,
    *,
    urgency: str,
    indicators: list[str],
    language: str | None,
    reporter: str | None,
    channel: str = "unknown",
    country: str | None = None,
    location: str | None = None,
    actor: str = "bot",
) -> Case:
    """Puts the sender's case in front of a person, or raises an open case's urgency.

    Urgency never drops and indicators accumulate. A case that is with the bot
    becomes ``queued`` and starts waiting now; a queued or claimed case keeps its
    place and owner.
    """
    contact = _contact_for_sender(session, sender_id, channel)
    case = current_case(session, contact)
    previous_status = case.status
    case.indicators = merge_indicators(case.indicators, indicators)
    if language:
        case.language = language
        contact.language = language
    if reporter and reporter != "unknown":
        case.reporter = reporter
    case.country = country or case.country
    case.location = location or case.location
    if case.status == CaseStatus.BOT.value:
        case.urgency = max_urgency(case.urgency, urgency)
        case.status = CaseStatus.QUEUED.value
        case.waiting_since = utcnow()
        _event(
            session,
            case,
            actor,
            "escalated",
            previous_status,
            case.status,
            {"urgency": case.urgency},
        )
    else:
        _raise_urgency(session, case, urgency, actor)
    session.flush()
    return case


def _raise_urgency(session: Session, case: Case, urgency: str, actor: str) -> bool:
    if urgency_rank(urgency) <= urgency_rank(case.urgency):
        return False
    _event(
        session,
        case,
        actor,
        "urgency_raised",
        case.status,
        case.status,
        {"from": case.urgency, "to": urgency},
    )
    case.urgency = urgency
    return True


def rescreen(
    session: Session, case_id: int, result: ScreeningResult, actor: str = "gateway"
) -> bool:
    """Folds one more screened message into an open case; True if its urgency rose.

    Indicators accumulate and urgency is the highest of the case's, the
    message's and what the accumulated indicators imply: it never drops.
    """
    case = session.get(Case, case_id)
    if case is None or case.status not in OPEN_STATUSES:
        return False
    case.indicators = merge_indicators(case.indicators, result.indicators)
    urgency = max_urgency(case.urgency, result.urgency, classify(case.indicators))
    return _raise_urgency(session, case, urgency, actor)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def list_open(session: Session) -> list[dict[str, Any]]:
    """Open cases (queued or claimed), most urgent first, then longest waiting."""
    cases = session.execute(select(Case).where(Case.status.in_(OPEN_STATUSES))).scalars().all()
    cases = sorted(
        cases,
        key=lambda c: (-urgency_rank(c.urgency), c.waiting_since or c.created_at, c.id),
    )
    return [
        {
            "id": c.id,
            "status": c.status,
            "urgency": c.urgency,
            "language": c.language,
            "indicators": list(c.indicators or []),
            "reporter": c.reporter,
            "channel": c.channel,
            "country": c.country,
            "waiting_since": _iso(c.waiting_since),
            "created_at": _iso(c.created_at),
        }
        for c in cases
    ]
