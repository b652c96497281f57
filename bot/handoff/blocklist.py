"""The blocklist: senders whose messages are kept and screened but not answered.

A responder blocks the sender of a case for an hour, a day, a week or for
good, with a reason (:data:`bot.db.models.BLOCK_REASONS`). Who may: the
holder of the case, or a supervisor of its office, or an admin. The block is
stored against the contact's channel and keyed address hash (never the
address), so deleting the person's data does not lift it; it records who set
it, when and until when, and the case's audit trail says so too.

A blocked sender's messages are stored and screened like any other but get
no reply, no holding message and no live-feed ping; an urgent one still puts
the case in front of a person (:mod:`bot.conversation`): a life comes first.
Expiry is a comparison with the clock, so no job is needed; a block can be
lifted before it expires, from the console or with ``beacon block lift``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.db.models import BLOCK_REASONS, Block, Case, Contact, utcnow
from bot.handoff import casework
from bot.handoff.queue import _event, previous_address_keys

#: What a responder may choose, and for how long (None: until lifted).
DURATIONS: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "permanent": None,
}


def in_force(now: datetime) -> ColumnElement[bool]:
    """SQL condition: a block not lifted and not expired at ``now``."""
    return and_(Block.lifted_at.is_(None), or_(Block.until.is_(None), Block.until > now))


def block_of(session: Session, contact: Contact, now: datetime | None = None) -> Block | None:
    """The block in force on a contact's address, or None.

    A block keyed with an earlier hash key (its person's data was deleted, so
    ``keys rotate`` could not re-key it) is found through the address and
    re-keyed with the current key.
    """
    hashes = [contact.address_hash]
    if contact.address is not None:
        hashes += previous_address_keys(contact.channel, contact.address)
    found: Block | None = session.execute(
        select(Block)
        .where(
            Block.channel == contact.channel,
            Block.address_hash.in_(hashes),
            in_force(now or utcnow()),
        )
        .order_by(Block.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if found is not None and found.address_hash != contact.address_hash:
        found.address_hash = contact.address_hash
    return found


def blocks_of_contacts(
    session: Session, contact_ids: set[int], now: datetime | None = None
) -> dict[int, Block]:
    """The block in force on each of these contacts (those that have one)."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(Contact.id, Block)
        .join(
            Block,
            and_(Block.channel == Contact.channel, Block.address_hash == Contact.address_hash),
        )
        .where(Contact.id.in_(contact_ids), in_force(now or utcnow()))
        .order_by(Block.id)
    ).all()
    return {contact_id: found for contact_id, found in rows}


def may_block(serves: casework.Serves, case: Case) -> bool:
    """The holder of a case, a supervisor of its office or an admin may (un)block its sender."""
    holds = case.status == casework.CLAIMED and case.claimed_by == serves.responder_id
    return holds or serves.oversees(case)


def _lift_in_force(session: Session, contact: Contact, actor: str, now: datetime) -> list[Block]:
    lifted = list(
        session.execute(
            select(Block).where(
                Block.channel == contact.channel,
                Block.address_hash == contact.address_hash,
                in_force(now),
            )
        ).scalars()
    )
    for row in lifted:
        row.lifted_at = now
        row.lifted_by = actor
    return lifted


def _case_for_change(session: Session, case_id: int, serves: casework.Serves) -> Case:
    case = casework.visible(session, case_id, serves)
    if not may_block(serves, case):
        raise casework.Forbidden
    return case


def block(
    session: Session,
    case_id: int,
    serves: casework.Serves,
    *,
    duration: str,
    reason: str,
    now: datetime | None = None,
) -> Block:
    """Blocks the sender of a case (a block already in force is replaced).

    Raises:
        Forbidden: the account neither holds the case nor oversees its office.
        CaseworkError: an unknown duration or reason.
    """
    if duration not in DURATIONS or reason not in BLOCK_REASONS:
        raise casework.CaseworkError
    now = now or utcnow()
    case = _case_for_change(session, case_id, serves)
    contact = session.get(Contact, case.contact_id)
    _lift_in_force(session, contact, serves.username, now)
    length = DURATIONS[duration]
    row = Block(
        channel=contact.channel,
        address_hash=contact.address_hash,
        reason=reason,
        case_id=case.id,
        blocked_by=serves.username,
        created_at=now,
        until=now + length if length is not None else None,
    )
    session.add(row)
    session.flush()
    detail = {"block": row.id, "reason": reason, "until": _iso(row.until)}
    _event(session, case, serves.username, "blocked", case.status, case.status, detail)
    session.flush()
    return row


def lift(
    session: Session, case_id: int, serves: casework.Serves, now: datetime | None = None
) -> list[Block]:
    """Lifts the block on the sender of a case.

    Raises:
        Forbidden: the account neither holds the case nor oversees its office.
        Conflict: the sender is not blocked (any more).
    """
    now = now or utcnow()
    case = _case_for_change(session, case_id, serves)
    lifted = _lift_in_force(session, session.get(Contact, case.contact_id), serves.username, now)
    if not lifted:
        raise casework.Conflict
    detail = {"block": lifted[-1].id}
    _event(session, case, serves.username, "unblocked", case.status, case.status, detail)
    session.flush()
    return lifted


def lift_by_id(
    session: Session, block_id: int, actor: str, now: datetime | None = None
) -> Block | None:
    """Lifts one block by its id (``beacon block lift``); None if it is not in force."""
    now = now or utcnow()
    row: Block | None = session.execute(
        select(Block).where(Block.id == block_id, in_force(now))
    ).scalar_one_or_none()
    if row is None:
        return None
    row.lifted_at = now
    row.lifted_by = actor
    case = session.get(Case, row.case_id) if row.case_id is not None else None
    if case is not None:
        _event(session, case, actor, "unblocked", case.status, case.status, {"block": row.id})
    session.flush()
    return row


def in_force_now(session: Session, now: datetime | None = None) -> list[Block]:
    """Every block in force, newest first."""
    return list(
        session.execute(
            select(Block).where(in_force(now or utcnow())).order_by(Block.id.desc())
        ).scalars()
    )


def describe(row: Block) -> dict[str, Any]:
    """A block as the console and the CLI show it (no address, not even its hash)."""
    return {
        "id": row.id,
        "channel": row.channel,
        "reason": row.reason,
        "by": row.blocked_by,
        "at": _iso(row.created_at),
        "until": _iso(row.until),
        "case_id": row.case_id,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
