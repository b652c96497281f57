"""Retention: personal data is kept only as long as it is useful, then deleted.

Two kinds of data have their own retention (days; 0 keeps them):

- conversations that never reached a person (the case never left the bot):
  ``BEACON_RETENTION_UNESCALATED_DAYS``, default 30, counted from the last
  message;
- resolved cases: ``BEACON_RETENTION_RESOLVED_DAYS``, default 180, counted
  from the resolution.

Blocks that expired or were lifted are deleted ``BEACON_RETENTION_BLOCKS_DAYS``
(default 30) later.

A case on hold for an open investigation (``cases.on_hold``) is kept. A purge
deletes the case with its transcript, notes and audit trail, then the
contacts left without a case (their encrypted address and keyed hash), and
writes a ``purges`` row per case (no personal data: the case id, why, who,
when). The assistant's own copy of the conversation (Rasa's tracker, in
memory) is emptied by the gateway through Rasa's API for every purge that
still names a Rasa sender (:func:`clear_trackers`).

The gateway purges every ``BEACON_PURGE_INTERVAL_HOURS``; ``beacon purge
[--dry-run]`` does the same from a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.db import session_scope
from bot.db.models import (
    Block,
    Case,
    CaseEvent,
    CaseNote,
    CaseStatus,
    Consent,
    Contact,
    Message,
    Purge,
    utcnow,
)
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.settings import Settings, get_settings

log = logging.getLogger(__name__)

UNESCALATED = "retention_unescalated"
RESOLVED = "retention_resolved"


@dataclass
class PurgeReport:
    """What a purge deleted (or, dry, would delete)."""

    unescalated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    contacts: int = 0
    blocks: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "unescalated_cases": len(self.unescalated),
            "resolved_cases": len(self.resolved),
            "contacts": self.contacts,
            "ended_blocks": self.blocks,
        }


def _last_activity(session: Session, case_id: int) -> datetime | None:
    last: datetime | None = session.execute(
        select(func.max(Message.created_at)).where(Message.case_id == case_id)
    ).scalar_one_or_none()
    return last


def due(session: Session, now: datetime, settings: Settings) -> PurgeReport:
    """The cases whose retention has passed (nothing is deleted)."""
    report = PurgeReport(dry_run=True)
    if settings.retention_unescalated_days > 0:
        before = now - timedelta(days=settings.retention_unescalated_days)
        escalated = exists().where(CaseEvent.case_id == Case.id, CaseEvent.action == "escalated")
        candidates = session.execute(
            select(Case.id, Case.created_at).where(
                Case.status == CaseStatus.BOT.value,
                Case.waiting_since.is_(None),
                Case.on_hold.is_(False),
                ~escalated,
                Case.created_at < before,
            )
        ).all()
        for case_id, created_at in candidates:
            last = _last_activity(session, case_id) or created_at
            if last < before:
                report.unescalated.append(int(case_id))
    if settings.retention_resolved_days > 0:
        before = now - timedelta(days=settings.retention_resolved_days)
        report.resolved = [
            int(i)
            for i in session.execute(
                select(Case.id).where(
                    Case.status == CaseStatus.RESOLVED.value,
                    Case.on_hold.is_(False),
                    Case.resolved_at < before,
                )
            ).scalars()
        ]
    return report


def delete_case(session: Session, case_id: int, reason: str, actor: str) -> None:
    """Deletes one case with everything it holds, and logs the purge (no personal data)."""
    case = session.get(Case, case_id)
    if case is None:
        return
    contact = session.get(Contact, case.contact_id)
    session.add(Purge(case_id=case_id, reason=reason, actor=actor, rasa_sender=contact.public_id))
    # Replies point at the message they answer: delete them before what they answer.
    session.execute(
        delete(Message).where(Message.case_id == case_id, Message.reply_to_id.is_not(None))
    )
    session.execute(delete(Message).where(Message.case_id == case_id))
    session.execute(delete(CaseNote).where(CaseNote.case_id == case_id))
    session.execute(delete(Consent).where(Consent.case_id == case_id))
    session.execute(delete(CaseEvent).where(CaseEvent.case_id == case_id))
    session.execute(delete(Case).where(Case.id == case_id))


def delete_orphan_contacts(session: Session, now: datetime) -> int:
    """Deletes contacts that have no case left; returns how many.

    Only contacts older than a day: a contact is written a moment before its
    first case (on SQLite, in a unit of work of its own), and must not be
    taken for an orphan in between.
    """
    orphans = list(
        session.execute(
            select(Contact.id).where(
                ~exists().where(Case.contact_id == Contact.id),
                Contact.created_at < now - timedelta(days=1),
            )
        ).scalars()
    )
    if orphans:
        session.execute(
            delete(Contact)
            .where(Contact.id.in_(orphans))
            .execution_options(synchronize_session=False)
        )
    return len(orphans)


def delete_ended_blocks(session: Session, now: datetime, settings: Settings) -> int:
    """Deletes blocks that expired or were lifted ``retention_blocks_days`` ago; returns how many.

    A block holds only a keyed hash of an address, but it says that the
    address wrote to a hotline: it is not kept longer than it is useful.
    """
    if settings.retention_blocks_days <= 0:
        return 0
    before = now - timedelta(days=settings.retention_blocks_days)
    result = session.execute(
        delete(Block)
        .where(or_(Block.lifted_at < before, Block.until < before))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def purge(
    now: datetime | None = None, *, dry_run: bool = False, actor: str = "retention"
) -> PurgeReport:
    """Deletes what retention no longer allows to keep; one unit of work."""
    now = now or utcnow()
    settings = get_settings()
    with session_scope() as session:
        report = due(session, now, settings)
        report.dry_run = dry_run
        if dry_run:
            session.rollback()
            return report
        for case_id in report.unescalated:
            delete_case(session, case_id, UNESCALATED, actor)
        for case_id in report.resolved:
            delete_case(session, case_id, RESOLVED, actor)
        session.flush()
        report.contacts = delete_orphan_contacts(session, now)
        report.blocks = delete_ended_blocks(session, now, settings)
    if report.unescalated or report.resolved:
        log.info("purged", extra={"fields": report.as_dict()})
    return report


def _pending_trackers() -> list[tuple[int, str]]:
    with session_scope() as session:
        return [
            (int(i), str(sender))
            for i, sender in session.execute(
                select(Purge.id, Purge.rasa_sender).where(Purge.rasa_sender.is_not(None))
            ).all()
        ]


def _tracker_cleared(purge_ids: list[int]) -> None:
    with session_scope() as session:
        for purge_id in purge_ids:
            row = session.get(Purge, purge_id)
            row.rasa_sender = None
            row.tracker_cleared_at = utcnow()


async def clear_trackers(rasa: RasaClient) -> int:
    """Empties Rasa's trackers of purged conversations; returns how many were cleared."""
    pending = await run_in_threadpool(_pending_trackers)
    cleared: list[int] = []
    done: dict[str, bool] = {}
    for purge_id, sender in pending:
        if sender not in done:
            try:
                await rasa.forget(sender)
                done[sender] = True
            except RasaUnavailable:
                done[sender] = False
        if done[sender]:
            cleared.append(purge_id)
    if cleared:
        await run_in_threadpool(_tracker_cleared, cleared)
        log.info("trackers_cleared", extra={"fields": {"count": len(cleared)}})
    return len(cleared)


class PurgeService:
    """The gateway's scheduled purge, and the clearing of Rasa's copies."""

    def __init__(self, rasa: RasaClient, settings: Settings) -> None:
        self.rasa = rasa
        self.settings = settings

    async def run(self, stop: asyncio.Event, tick_s: float = 60.0) -> None:
        """Purges every ``purge_interval_hours``; clears trackers every ``tick_s``."""
        interval = timedelta(hours=self.settings.purge_interval_hours)
        next_purge = utcnow()
        while not stop.is_set():
            try:
                if self.settings.purge_interval_hours > 0 and utcnow() >= next_purge:
                    await run_in_threadpool(purge)
                    next_purge = utcnow() + interval
                # Deletions whose confirmation could not be followed through (a restart).
                from bot.privacy.deletion import delete_overdue

                await run_in_threadpool(delete_overdue)
                await clear_trackers(self.rasa)
            except Exception as exc:  # the loop outlives a database or Rasa hiccup
                log.warning("purge_failed", extra={"fields": {"error": type(exc).__name__}})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_s)
