"""A responder's work on cases: take next, claim, release, transfer, resolve, reply, notes.

Routing: a responder serves the languages and offices (ISO country codes) of
their account; an empty list means "all". Their queue is every queued case
they can serve, in queue order (:func:`bot.handoff.queue.queue_key`), plus
the cases they hold. Every ``critical`` case is offered to everyone, whatever
its language, office or transfer.

Roles widen what an account sees and may do:

- ``responder``: the cases of their languages and offices, every ``critical``
  case, and the cases they hold or that were transferred to them;
- ``supervisor``: every case of their offices whatever its language (they are
  offered them all), every ``critical`` case; they may release or transfer any
  case of their offices, whoever holds it;
- ``admin``: every case, and what a supervisor may do, everywhere. Account
  management is in :mod:`bot.console.accounts`.

A case outside what an account sees is :class:`Forbidden` to read or change.

"Take next" claims atomically: on PostgreSQL the candidate row is locked with
``FOR UPDATE SKIP LOCKED``, so concurrent responders each get a different
case without waiting on each other; on SQLite a conditional ``UPDATE ...
WHERE id = :candidate AND status = 'queued'`` compare-and-set, retried under
the database's single write lock if another responder won the race.
Claiming a given case is a compare-and-set on its status. Every change leaves
a ``case_events`` row with who and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.db.models import (
    ROLES,
    Case,
    CaseNote,
    CaseStatus,
    Contact,
    Direction,
    Message,
    MessageStatus,
    Responder,
    utcnow,
)
from bot.handoff.queue import _event
from bot.settings import get_settings

QUEUED = CaseStatus.QUEUED.value
CLAIMED = CaseStatus.CLAIMED.value
RESOLVED = CaseStatus.RESOLVED.value
RESPONDER, SUPERVISOR, ADMIN = ROLES


class CaseworkError(Exception):
    """An operation that cannot be done; ``kind`` is the console's error key."""

    kind = "error_malformed"


class NotFound(CaseworkError):
    kind = "error_not_found"


class NothingToTake(CaseworkError):
    kind = "error_nothing_to_take"


class Conflict(CaseworkError):
    """The case is not in a state that allows this (someone else has it, or it is closed)."""

    kind = "error_conflict"


class UnknownResponder(CaseworkError):
    kind = "error_unknown_responder"


class Forbidden(CaseworkError):
    """The case (or the operation) is outside what this account may see or do."""

    kind = "error_forbidden"


@dataclass(frozen=True)
class Serves:
    """What a responder serves (a snapshot, so that it can be used after its session)."""

    responder_id: int
    username: str
    languages: tuple[str, ...]
    offices: tuple[str, ...]
    role: str = RESPONDER

    @classmethod
    def of(cls, responder: Responder) -> Serves:
        return cls(
            responder.id,
            responder.username,
            tuple(responder.languages or ()),
            tuple(o.upper() for o in responder.offices or ()),
            responder.role or RESPONDER,
        )

    def oversees(self, case: Case) -> bool:
        """Whether this account may release or transfer the case whoever holds it."""
        if self.role == ADMIN:
            return True
        return self.role == SUPERVISOR and (
            not self.offices or case.office is None or case.office in self.offices
        )


def _routing(serves: Serves) -> list[ColumnElement[bool]]:
    """SQL conditions routing a case to this account by language and office (none: all)."""
    if serves.role == ADMIN:
        return []
    conditions: list[ColumnElement[bool]] = []
    if serves.languages and serves.role == RESPONDER:
        conditions.append(or_(Case.language.is_(None), Case.language.in_(serves.languages)))
    if serves.offices:
        conditions.append(or_(Case.office.is_(None), Case.office.in_(serves.offices)))
    return conditions


def can_serve(serves: Serves) -> ColumnElement[bool]:
    """SQL condition: a queued case this responder may be offered."""
    conditions: list[ColumnElement[bool]] = [
        or_(Case.assigned_to.is_(None), Case.assigned_to == serves.responder_id),
        *_routing(serves),
    ]
    return and_(
        Case.status == QUEUED,
        or_(Case.urgency == "critical", and_(*conditions)),
    )


def can_see(serves: Serves) -> ColumnElement[bool]:
    """SQL condition: a case (in any status) this account may read."""
    return or_(
        Case.urgency == "critical",
        Case.claimed_by == serves.responder_id,
        Case.assigned_to == serves.responder_id,
        and_(true(), *_routing(serves)),
    )


def _matches(session: Session, case: Case, condition: ColumnElement[bool]) -> bool:
    found = session.execute(select(Case.id).where(Case.id == case.id, condition)).first()
    return found is not None


def visible(session: Session, case_id: int, serves: Serves) -> Case:
    """The case, if this account may see it.

    Raises:
        NotFound: there is no such case.
        Forbidden: the case is outside what the account sees.
    """
    case = _get(session, case_id)
    if not _matches(session, case, can_see(serves)):
        raise Forbidden
    return case


def visible_cases(session: Session, serves: Serves, limit: int = 500) -> list[Case]:
    """The responder's queue: cases they hold, then what they can take, in queue order.

    Then the cases others hold that this account may see. A supervisor's and an
    admin's waiting cases include those transferred to someone else.
    """
    waiting_condition = (
        can_serve(serves)
        if serves.role == RESPONDER
        else and_(Case.status == QUEUED, can_see(serves))
    )
    mine = (
        session.execute(
            select(Case)
            .where(Case.status == CLAIMED, Case.claimed_by == serves.responder_id)
            .order_by(Case.queue_key, Case.id)
        )
        .scalars()
        .all()
    )
    others_claimed = (
        session.execute(
            select(Case)
            .where(Case.status == CLAIMED, Case.claimed_by != serves.responder_id, can_see(serves))
            .order_by(Case.queue_key, Case.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    waiting = (
        session.execute(
            select(Case).where(waiting_condition).order_by(Case.queue_key, Case.id).limit(limit)
        )
        .scalars()
        .all()
    )
    return [*mine, *waiting, *others_claimed]


def _claimed(session: Session, case: Case, serves: Serves, now: datetime, action: str) -> None:
    """Audit and paging state of a case that ``serves`` just claimed."""
    case.pages_sent = 0
    case.next_page_at = None
    case.bot_form_open = False
    _event(
        session,
        case,
        serves.username,
        action,
        QUEUED,
        CLAIMED,
        {"waited_s": round((now - case.waiting_since).total_seconds(), 3)}
        if case.waiting_since
        else None,
    )


def take_next(session: Session, serves: Serves, now: datetime | None = None) -> Case:
    """Claims the most urgent case this responder can serve.

    Raises:
        NothingToTake: no queued case is left for them.
    """
    now = now or utcnow()
    if session.get_bind().dialect.name == "postgresql":
        found: Case | None = session.execute(
            select(Case)
            .where(can_serve(serves))
            .order_by(Case.queue_key, Case.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).scalar_one_or_none()
        if found is None:
            raise NothingToTake
        case: Case = found
        case.status = CLAIMED
        case.claimed_by = serves.responder_id
        case.claimed_at = now
    else:
        case = _take_next_sqlite(session, serves, now)
    _claimed(session, case, serves, now, "claimed")
    session.flush()
    return case


def _take_next_sqlite(session: Session, serves: Serves, now: datetime) -> Case:
    """Compare-and-set on SQLite, whose writers are serialised by one database lock.

    The first ``UPDATE`` takes the write lock; if another responder claimed the
    candidate in between, the retry reads the queue under that lock, so it
    cannot lose again.
    """
    session.commit()  # end any earlier read so the snapshot below is current
    for _attempt in range(3):
        candidate = session.execute(
            select(Case.id).where(can_serve(serves)).order_by(Case.queue_key, Case.id).limit(1)
        ).scalar_one_or_none()
        if candidate is None:
            break
        result = session.execute(
            update(Case)
            .where(Case.id == candidate, can_serve(serves))
            .values(status=CLAIMED, claimed_by=serves.responder_id, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            case = _get(session, candidate)
            session.refresh(case)
            return case
    raise NothingToTake


def _get(session: Session, case_id: int) -> Case:
    case: Case | None = session.get(Case, case_id)
    if case is None:
        raise NotFound
    return case


def claim(session: Session, case_id: int, serves: Serves, now: datetime | None = None) -> Case:
    """Claims one given case (compare-and-set: it must still be queued)."""
    now = now or utcnow()
    case = visible(session, case_id, serves)
    if case.status == CLAIMED and case.claimed_by == serves.responder_id:
        return case
    result = session.execute(
        update(Case)
        .where(Case.id == case_id, can_serve(serves))
        .values(status=CLAIMED, claimed_by=serves.responder_id, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(case)
        raise Conflict
    session.refresh(case)
    _claimed(session, case, serves, now, "claimed")
    session.flush()
    return case


def _page_later(case: Case, now: datetime) -> None:
    """A case back in the queue is paged again only after its tier's grace time."""
    settings = get_settings()
    after = {"critical": settings.page_critical_after_s, "high": settings.page_high_after_s}
    case.pages_sent = 0
    case.next_page_at = now + timedelta(seconds=after.get(case.urgency, 0))


def _holder_only(case: Case, serves: Serves) -> None:
    if case.status != CLAIMED or case.claimed_by != serves.responder_id:
        raise Conflict


def _holder_or_overseer(session: Session, case: Case, serves: Serves) -> dict[str, str]:
    """Checks a claimed case may be moved by ``serves``; the audit detail if not theirs."""
    if case.status != CLAIMED:
        raise Conflict
    if case.claimed_by == serves.responder_id:
        return {}
    if not serves.oversees(case):
        raise Conflict
    return {"holder": _username(session, case.claimed_by)}


def _username(session: Session, responder_id: int | None) -> str:
    found = session.get(Responder, responder_id) if responder_id is not None else None
    return found.username if found is not None else "?"


def _may_take_or_oversee(session: Session, case: Case, serves: Serves) -> None:
    """A queued case is moved or closed by whoever may take it, or by a supervisor."""
    if case.status != QUEUED:
        raise Conflict
    if not serves.oversees(case) and not _matches(session, case, can_serve(serves)):
        raise Forbidden


def release(session: Session, case_id: int, serves: Serves, now: datetime | None = None) -> Case:
    """Puts a claimed case back in the queue, keeping its place.

    The holder releases their case; a supervisor (or an admin) any case of their offices.
    """
    now = now or utcnow()
    case = visible(session, case_id, serves)
    detail = _holder_or_overseer(session, case, serves)
    case.status = QUEUED
    case.claimed_by = None
    case.claimed_at = None
    _page_later(case, now)
    _event(session, case, serves.username, "released", CLAIMED, QUEUED, detail or None)
    session.flush()
    return case


def release_all_of(session: Session, responder_id: int, actor: str) -> list[int]:
    """Puts every case a responder holds back in the queue and clears transfers to them.

    Used when an account is deactivated, so that no case waits for somebody gone.
    """
    now = utcnow()
    moved = []
    held = session.execute(
        select(Case).where(Case.status == CLAIMED, Case.claimed_by == responder_id)
    ).scalars()
    holder = _username(session, responder_id)
    for case in held:
        case.status = QUEUED
        case.claimed_by = None
        case.claimed_at = None
        _page_later(case, now)
        _event(session, case, actor, "released", CLAIMED, QUEUED, {"holder": holder})
        moved.append(case.id)
    for case in session.execute(select(Case).where(Case.assigned_to == responder_id)).scalars():
        case.assigned_to = None
        _event(session, case, actor, "unassigned", case.status, case.status, {"responder": holder})
        moved.append(case.id)
    session.flush()
    return sorted(set(moved))


def transfer(
    session: Session,
    case_id: int,
    serves: Serves,
    *,
    to_responder: str | None = None,
    to_office: str | None = None,
    now: datetime | None = None,
) -> Case:
    """Hands a case to another responder or office; it waits for them in the queue.

    A queued case can be transferred by anyone who may take it; a claimed one
    by its holder. A supervisor (or an admin) may transfer any case of their
    offices.
    """
    now = now or utcnow()
    case = visible(session, case_id, serves)
    detail: dict[str, str] = {}
    if case.status == CLAIMED:
        detail = _holder_or_overseer(session, case, serves)
    else:
        _may_take_or_oversee(session, case, serves)
    if to_responder:
        target = session.execute(
            select(Responder).where(
                Responder.username == to_responder, Responder.is_active.is_(True)
            )
        ).scalar_one_or_none()
        if target is None:
            raise UnknownResponder
        case.assigned_to = target.id
        detail["responder"] = target.username
    elif to_office:
        case.office = to_office.upper()
        case.assigned_to = None
        detail["office"] = case.office
    else:
        raise CaseworkError
    previous = case.status
    case.status = QUEUED
    case.claimed_by = None
    case.claimed_at = None
    _page_later(case, now)
    _event(session, case, serves.username, "transferred", previous, QUEUED, detail)
    session.flush()
    return case


def resolve(session: Session, case_id: int, serves: Serves, now: datetime | None = None) -> Case:
    """Closes a case; the person's next message goes to the assistant again.

    The holder resolves a claimed case; a queued case can be resolved by any
    responder who may take it (e.g. a duplicate report), or a supervisor of its office.
    """
    now = now or utcnow()
    case = visible(session, case_id, serves)
    if case.status == CLAIMED:
        _holder_only(case, serves)
    else:
        _may_take_or_oversee(session, case, serves)
    previous = case.status
    case.status = RESOLVED
    case.resolved_at = now
    case.bot_form_open = False
    case.next_page_at = None
    contact = session.get(Contact, case.contact_id)
    contact.dialogue_reset_pending = True
    _event(session, case, serves.username, "resolved", previous, RESOLVED)
    session.flush()
    return case


def reply(session: Session, case_id: int, serves: Serves, text: str) -> Message:
    """Stores a responder's message to the person, ``pending`` until the channel takes it.

    Only the holder of a claimed case writes to the person.
    """
    case = visible(session, case_id, serves)
    _holder_only(case, serves)
    message = Message(
        case_id=case.id,
        direction=Direction.OUT.value,
        channel=case.channel,
        author_id=serves.responder_id,
        body=text,
        status=MessageStatus.PENDING.value,
    )
    session.add(message)
    session.flush()
    return message


def add_note(session: Session, case_id: int, serves: Serves, text: str) -> CaseNote:
    """Adds a private note (never sent to the person)."""
    case = visible(session, case_id, serves)
    note = CaseNote(case_id=case.id, author_id=serves.responder_id, body=text)
    session.add(note)
    _event(session, case, serves.username, "note_added", case.status, case.status)
    session.flush()
    return note


def record_view(
    session: Session, case: Case, serves: Serves, detail: dict[str, Any] | None = None
) -> None:
    """Audits a responder reading a case (``detail``: what, e.g. ``{"attachment": 40}``)."""
    _event(session, case, serves.username, "viewed", case.status, case.status, detail)


def view(
    session: Session, case_id: int, serves: Serves, detail: dict[str, Any] | None = None
) -> Case:
    """The case for reading, if this account may see it; the read is audited.

    Raises:
        NotFound: there is no such case.
        Forbidden: the case is outside what the account sees (nothing is read).
    """
    case = visible(session, case_id, serves)
    record_view(session, case, serves, detail)
    return case
