"""What the console shows: case summaries, a case with its transcript, the dashboard's data.

Labels (urgency, indicators, reporter, language names) are in the
responder's UI language, whatever language the person writes. The screening
evidence of each inbound message is found again on read (screening is a
millisecond per message), so no matched words are stored beside the text.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.stats import percentile
from bot.db.models import (
    Case,
    CaseEvent,
    CaseNote,
    CaseStatus,
    Contact,
    Direction,
    Message,
    Responder,
    utcnow,
)
from bot.handoff import blocklist
from bot.handoff.casework import CLAIMED, Serves
from bot.i18n import console_strings, language_name
from bot.privacy import consent
from bot.screening import ScreeningContext, normalize, screen
from bot.screening.types import INDICATORS, URGENCY_TIERS


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(Responder.id, Responder.display_name, Responder.username).where(
            Responder.id.in_(ids)
        )
    ).all()
    return {rid: (display or username) for rid, display, username in rows}


def summaries(
    session: Session, cases: list[Case], serves: Serves, ui_language: str, now: datetime
) -> list[dict[str, Any]]:
    """Case summaries for the queue, in the given order."""
    strings = console_strings(ui_language)
    names = _names(
        session,
        {c.claimed_by for c in cases if c.claimed_by}
        | {c.assigned_to for c in cases if c.assigned_to},
    )
    last: dict[int, datetime] = {}
    unreachable: set[int] = set()
    blocks = blocklist.blocks_of_contacts(session, {c.contact_id for c in cases}, now)
    if cases:
        unreachable = set(
            session.execute(
                select(Contact.id).where(
                    Contact.id.in_({c.contact_id for c in cases}),
                    Contact.unreachable_since.is_not(None),
                )
            ).scalars()
        )
        rows = session.execute(
            select(Message.case_id, Message.created_at)
            .where(Message.case_id.in_([c.id for c in cases]))
            .order_by(Message.id)
        ).all()
        for case_id, at in rows:
            last[case_id] = at
    out = []
    for case in cases:
        indicators = list(case.indicators or [])
        out.append(
            {
                "id": case.id,
                "status": case.status,
                "status_label": strings.get(f"status_{case.status}", case.status),
                "urgency": case.urgency,
                "urgency_label": strings.get(f"urgency_{case.urgency}", case.urgency),
                "indicators": indicators,
                "indicator_labels": {i: strings.get(f"indicator_{i}", i) for i in indicators},
                "reporter": case.reporter,
                "reporter_label": strings.get(f"reporter_{case.reporter}", case.reporter),
                "language": case.language,
                "language_name": language_name(case.language, ui_language),
                "channel": case.channel,
                "country": case.country,
                "office": case.office,
                "waiting_since": _iso(case.waiting_since),
                "waiting_seconds": int((now - case.waiting_since).total_seconds())
                if case.waiting_since and case.status != CaseStatus.RESOLVED.value
                else None,
                "claimed_by": names.get(case.claimed_by) if case.claimed_by else None,
                "assigned_to": names.get(case.assigned_to) if case.assigned_to else None,
                "mine": case.status == CaseStatus.CLAIMED.value
                and case.claimed_by == serves.responder_id,
                "last_message_at": _iso(last.get(case.id)),
                "bot_form_open": bool(case.bot_form_open),
                # The channel refused to deliver to the person (they blocked the bot).
                "unreachable": case.contact_id in unreachable,
                # A responder blocked the sender: not answered until it ends or is lifted.
                "blocked": _blocked(blocks.get(case.contact_id), strings),
            }
        )
    return out


def _blocked(block: Any, strings: dict[str, str]) -> dict[str, Any] | None:
    if block is None:
        return None
    shown = blocklist.describe(block)
    return {
        "reason": shown["reason"],
        "reason_label": strings.get(f"block_reason_{shown['reason']}", shown["reason"]),
        "by": shown["by"],
        "at": shown["at"],
        "until": shown["until"],
    }


def highlights(text: str, language: str | None, strings: dict[str, str]) -> list[dict[str, Any]]:
    """Non-overlapping evidence spans of the indicators screening finds in ``text``."""
    result = screen(text, ScreeningContext(conversation_language=language))
    spans = sorted(
        (e for e in result.evidence if e.source == "pattern" and e.label in INDICATORS),
        key=lambda e: (e.start, -(e.end - e.start)),
    )
    kept: list[dict[str, Any]] = []
    for e in spans:
        if kept and e.start < kept[-1]["end"]:
            continue
        kept.append(
            {
                "start": e.start,
                "end": e.end,
                "indicator": e.label,
                "label": strings.get(f"indicator_{e.label}", e.label),
            }
        )
    return kept


#: Attachments that are only described in the message's text: nothing to download.
DESCRIBED_KINDS = frozenset({"location", "venue", "contact"})


def attachment(message: Message) -> dict[str, Any] | None:
    """What the person shared besides words: its kind and where a responder can open it."""
    found = (message.payload or {}).get("attachment")
    if not isinstance(found, dict):
        return None
    kind = str(found.get("kind") or "file")
    downloadable = kind not in DESCRIBED_KINDS and not found.get("described")
    url = f"/console/api/messages/{message.id}/attachment" if downloadable else None
    return {"kind": kind, "url": url}


def case_detail(
    session: Session, case: Case, serves: Serves, ui_language: str, now: datetime | None = None
) -> dict[str, Any]:
    """One case for the case view: summary, location, transcript, notes, audit trail."""
    now = now or utcnow()
    strings = console_strings(ui_language)
    [summary] = summaries(session, [case], serves, ui_language, now)
    messages = session.execute(
        select(Message).where(Message.case_id == case.id).order_by(Message.id)
    ).scalars()
    notes = session.execute(
        select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.id)
    ).scalars()
    events = session.execute(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
    ).scalars()
    messages = list(messages)
    notes = list(notes)
    contact = session.get(Contact, case.contact_id)
    names = _names(
        session,
        {m.author_id for m in messages if m.author_id}
        | {n.author_id for n in notes if n.author_id},
    )
    transcript = []
    for m in messages:
        if m.direction == Direction.IN.value:
            text = normalize(m.body).text
            transcript.append(
                {
                    "id": m.id,
                    "direction": "in",
                    "author": "person",
                    "text": text,
                    "highlights": highlights(text, case.language, strings),
                    "status": m.status,
                    "at": _iso(m.created_at),
                    "attachment": attachment(m),
                }
            )
        else:
            transcript.append(
                {
                    "id": m.id,
                    "direction": "out",
                    "author": names.get(m.author_id, "?") if m.author_id else "bot",
                    "text": m.body,
                    "highlights": [],
                    "status": m.status,
                    "at": _iso(m.created_at),
                    "attachment": None,
                }
            )
    return {
        **summary,
        # What this account may do besides what holding the case allows.
        "may_block": blocklist.may_block(serves, case),
        "may_oversee": serves.oversees(case) and case.status == CLAIMED,
        # Record consent, export a referral, put the case on hold (bot/privacy/consent.py).
        "may_share": consent.may_share(serves, case),
        "location": case.location,
        # Safety state the responder must see before writing: the person paused
        # (replies wait until they write again), erased the chat from their
        # phone, or someone may be looking for a person who escaped.
        "safety": {
            "paused_since": _iso(contact.paused_at) if contact else None,
            "erased_at": _iso(case.erased_at),
            "impersonation_caution": bool(case.impersonation_caution),
            "on_hold": bool(case.on_hold),
        },
        "messages": transcript,
        # Who may receive the case's details, on what basis, which data; withdrawn ones too.
        "consents": [consent.describe(row) for row in consent.consents_of(session, case.id)],
        "notes": [
            {
                "id": n.id,
                "author": names.get(n.author_id, "?") if n.author_id else "?",
                "text": n.body,
                "at": _iso(n.created_at),
            }
            for n in notes
        ],
        "events": [
            {
                "action": e.action,
                "actor": e.actor,
                "from": e.from_status,
                "to": e.to_status,
                "at": _iso(e.at),
            }
            for e in events
        ],
    }


def stats(
    session: Session, ui_language: str, now: datetime | None = None, days: int = 14
) -> dict[str, Any]:
    """The dashboard: what waits now, how fast cases are claimed, what cases are about."""
    now = now or utcnow()
    strings = console_strings(ui_language)
    since = now - timedelta(days=days)
    waiting = Counter(
        session.execute(
            select(Case.urgency).where(Case.status == CaseStatus.QUEUED.value)
        ).scalars()
    )
    rows = session.execute(
        select(CaseEvent.case_id, CaseEvent.action, CaseEvent.at)
        .where(CaseEvent.at >= since, CaseEvent.action.in_(("escalated", "claimed")))
        .order_by(CaseEvent.id)
    ).all()
    queued_at: dict[int, datetime] = {}
    by_day: dict[str, list[float]] = defaultdict(list)
    for case_id, action, at in rows:
        if action == "escalated":
            queued_at[case_id] = at
        elif case_id in queued_at:
            waited = (at - queued_at.pop(case_id)).total_seconds()
            by_day[at.date().isoformat()].append(waited)
    time_to_claim = [
        {
            "day": day,
            "n": len(values),
            "p50": percentile(values, 50),
            "p90": percentile(values, 90),
            "p99": percentile(values, 99),
        }
        for day, values in sorted(by_day.items())
    ]
    handed = session.execute(
        select(Case.indicators, Case.country, Case.language).where(
            Case.created_at >= since, Case.status != CaseStatus.BOT.value
        )
    ).all()
    indicators: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    for found, country, language in handed:
        indicators.update(found or [])
        countries[country or "?"] += 1
        languages[language or "?"] += 1
    return {
        "waiting_by_urgency": {tier: waiting.get(tier, 0) for tier in URGENCY_TIERS},
        "time_to_claim": time_to_claim,
        "by_indicator": [
            {"id": i, "label": strings.get(f"indicator_{i}", i), "count": n}
            for i, n in indicators.most_common()
        ],
        "by_country": [{"country": c, "count": n} for c, n in countries.most_common()],
        "by_language": [
            {"language": code, "name": language_name(code, ui_language) or code, "count": n}
            for code, n in languages.most_common()
        ],
        "labels": {tier: strings.get(f"urgency_{tier}", tier) for tier in URGENCY_TIERS},
    }
