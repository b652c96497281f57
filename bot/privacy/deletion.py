"""Deletion on request: a person who writes "delete my data" (and confirms) is forgotten.

Deleted: the person's contact (encrypted address and keyed hash), every case
of theirs with its transcript, notes, consents and audit trail, and, through
the ``purges`` rows, the assistant's own copy of the conversation (Rasa's
tracker, emptied by :func:`bot.privacy.retention.clear_trackers`).

A case a responder put on hold for an open investigation (``cases.on_hold``)
leaves an anonymised :class:`~bot.db.models.CaseSummary`: when it was opened,
urgency, indicators, language, who reported, channel, country and office.
No text, no address, no place finer than the country.

A block on the sender (keyed by the address hash, not the contact) stays.

The deletion runs once the confirmation went out (the relay calls
:func:`delete_person` after sending it, or after failing to) or at once on
the web chat; :func:`delete_overdue` catches any left behind, e.g. by a
restart.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.db import session_scope
from bot.db.models import Block, Case, CaseSummary, Contact, utcnow
from bot.privacy.retention import delete_case

log = logging.getLogger(__name__)

REQUEST = "deletion_request"
#: A confirmed deletion still waiting after this long is done without waiting more.
OVERDUE_AFTER = timedelta(minutes=10)


def delete_person(contact_id: int, actor: str = "person") -> int:
    """Deletes a person's data; returns how many cases were deleted (0: already gone)."""
    with session_scope() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            return 0
        cases = list(session.execute(select(Case).where(Case.contact_id == contact_id)).scalars())
        kept = 0
        for case in cases:
            if case.on_hold:
                session.add(
                    CaseSummary(
                        case_id=case.id,
                        opened_at=case.created_at,
                        urgency=case.urgency,
                        indicators=list(case.indicators or []),
                        language=case.language,
                        reporter=case.reporter,
                        channel=case.channel,
                        country=case.country,
                        office=case.office,
                        reason=REQUEST,
                    )
                )
                kept += 1
            session.execute(update(Block).where(Block.case_id == case.id).values(case_id=None))
            delete_case(session, case.id, REQUEST, actor)
        session.flush()
        session.delete(contact)
    log.info("person_deleted", extra={"fields": {"cases": len(cases), "summaries_kept": kept}})
    return len(cases)


def delete_overdue(now: datetime | None = None) -> int:
    """Finishes confirmed deletions left waiting; returns how many people were deleted."""
    now = now or utcnow()
    with session_scope() as session:
        due = list(
            session.execute(
                select(Contact.id).where(
                    Contact.deletion_due_at.is_not(None),
                    Contact.deletion_due_at < now - OVERDUE_AFTER,
                )
            ).scalars()
        )
    for contact_id in due:
        delete_person(int(contact_id))
    return len(due)
