"""Queue operations on cases: record messages, open (escalate) cases, list the queue.

The gateway records every inbound message here *before* it is processed, and
every bot reply after. The action server opens a case when screening asks for
a person. Both go through these functions, so a case's urgency can only rise
and every status change leaves a ``case_events`` row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from bot.handoff.offices import office_for
from bot.screening.types import INDICATORS, ScreeningResult, max_urgency, urgency_rank
from bot.screening.urgency import classify
from bot.settings import get_settings

OPEN_STATUSES = (CaseStatus.QUEUED.value, CaseStatus.CLAIMED.value)
ACTIVE_STATUSES = (CaseStatus.BOT.value, *OPEN_STATUSES)

#: A critical case's head start: no amount of waiting lets another case overtake it.
CRITICAL_HEAD_START = timedelta(days=36500)
#: The head start per tier when aging is switched off: strictly urgency, then waiting time.
STRICT_STEP = timedelta(days=3650)


def queue_key(urgency: str, waiting_since: datetime, aging_minutes: int | None = None) -> datetime:
    """A case's place in the queue: earlier keys are served first.

    The key is the time the case started waiting, moved earlier by a head start
    of ``aging_minutes`` per urgency tier above ``low``. So a case's priority
    rises while it waits: a ``medium`` case that has waited longer than
    ``aging_minutes`` comes before a ``high`` case that has just arrived.
    ``critical`` cases always come first. ``aging_minutes`` <= 0 means strict
    order: urgency first, then waiting time.
    """
    if aging_minutes is None:
        aging_minutes = get_settings().queue_aging_minutes
    if urgency == "critical":
        return waiting_since - CRITICAL_HEAD_START
    step = timedelta(minutes=aging_minutes) if aging_minutes > 0 else STRICT_STEP
    return waiting_since - urgency_rank(urgency) * step


def requeue(case: Case, now: datetime | None = None) -> None:
    """Sets ``queue_key`` from the case's urgency and waiting time."""
    if case.waiting_since is None:
        case.waiting_since = now or utcnow()
    case.queue_key = queue_key(case.urgency, case.waiting_since)


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


def previous_address_keys(channel: str, address: str) -> list[str]:
    """The keyed hashes ``address`` had under earlier hash keys (see ``keys rotate``)."""
    return crypto.previous_keyed_hashes(f"{channel}:{address}")


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


def current_case(session: Session, contact: Contact, *, reopen: bool = False) -> Case:
    """The contact's active case, or a new one with the bot.

    With ``reopen``, a case resolved within ``BEACON_REOPEN_HOURS`` is re-opened
    (back with the bot, its history kept) instead: the person wrote again.
    """

    def fetch() -> Case | None:
        found: Case | None = session.execute(
            select(Case).where(Case.contact_id == contact.id, Case.status.in_(ACTIVE_STATUSES))
        ).scalar_one_or_none()
        return found

    case = fetch()
    if case is None and reopen:
        case = _reopen_recent(session, contact)
    if case is None:
        new = Case(contact_id=contact.id, channel=contact.channel, status=CaseStatus.BOT.value)
        case = _insert_or_fetch(session, new, fetch)
        if case is new:
            _event(session, case, "bot", "opened", None, CaseStatus.BOT.value)
    return case


def _reopen_recent(session: Session, contact: Contact) -> Case | None:
    since = utcnow() - timedelta(hours=get_settings().reopen_hours)
    last: Case | None = session.execute(
        select(Case)
        .where(
            Case.contact_id == contact.id,
            Case.status == CaseStatus.RESOLVED.value,
            Case.resolved_at >= since,
        )
        .order_by(Case.resolved_at.desc(), Case.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last is None:
        return None
    try:
        with session.begin_nested():
            last.status = CaseStatus.BOT.value
            last.resolved_at = None
            last.waiting_since = None
            last.queue_key = None
            last.claimed_by = None
            last.claimed_at = None
            last.assigned_to = None
            last.pages_sent = 0
            last.next_page_at = None
            session.flush()
    except IntegrityError:
        # A concurrent first message re-opened it (or opened a new case) first.
        session.refresh(last)
        return None
    _event(session, last, "bot", "reopened", CaseStatus.RESOLVED.value, CaseStatus.BOT.value)
    return last


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
    provider_id: str | None = None,
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
    case = current_case(session, contact, reopen=True)
    message = Message(
        case_id=case.id,
        direction=Direction.IN.value,
        channel=channel,
        external_id=external_id,
        provider_id=provider_id,
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
        payload: dict[str, Any] = {}
        if reply.get("buttons"):
            payload["buttons"] = reply["buttons"]
        if reply.get("safety"):
            # What the relay must do besides sending (bot/safety/state.py).
            payload["safety"] = reply["safety"]
        message = Message(
            case_id=inbound.case_id,
            direction=Direction.OUT.value,
            channel=inbound.channel,
            reply_to_id=inbound.id,
            body=str(reply.get("text") or ""),
            payload=payload or None,
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


def choose_language(session: Session, sender_id: str, language: str, channel: str) -> None:
    """Records the language the person asked for; it sticks across sessions."""
    contact = _contact_for_sender(session, sender_id, channel)
    contact.chosen_language = language
    contact.language = language
    session.flush()


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
    bot_form_open: bool = False,
) -> Case:
    """Puts the sender's case in front of a person, or raises an open case's urgency.

    Urgency never drops and indicators accumulate. A case that is with the bot
    becomes ``queued`` and starts waiting now; a queued or claimed case keeps its
    place and owner. ``bot_form_open`` says the bot still asks its safety
    questions while the case waits (until a responder takes it).
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
    case.office = case.office or office_for(case.country)
    case.location = location or case.location
    case.bot_form_open = bot_form_open and case.status != CaseStatus.CLAIMED.value
    if max_urgency(case.urgency, urgency) == "critical":
        case.bot_form_open = False
    if case.status == CaseStatus.BOT.value:
        now = utcnow()
        case.urgency = max_urgency(case.urgency, urgency)
        case.status = CaseStatus.QUEUED.value
        case.waiting_since = now
        # The bot's handoff reply tells the person someone will write: it counts as holding.
        case.holding_sent_at = now
        case.pages_sent = 0
        case.next_page_at = None
        requeue(case, now)
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
    if case.waiting_since is not None:
        requeue(case)
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
    """Open cases (queued or claimed) in queue order (see :func:`queue_key`)."""
    cases = (
        session.execute(
            select(Case).where(Case.status.in_(OPEN_STATUSES)).order_by(Case.queue_key, Case.id)
        )
        .scalars()
        .all()
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
