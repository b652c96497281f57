"""The audit trail of one case: every change, view, reply, page and purge, with who and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import CaseEvent, Purge


def trail(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The case's audit events, oldest first (purge records outlive the case)."""
    events = [
        {
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "from": e.from_status,
            "to": e.to_status,
            "detail": e.detail or {},
        }
        for e in session.execute(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        ).scalars()
    ]
    events += [
        {
            "at": p.at.isoformat(),
            "actor": p.actor,
            "action": "purged",
            "from": None,
            "to": None,
            "detail": {"reason": p.reason},
        }
        for p in session.execute(
            select(Purge).where(Purge.case_id == case_id).order_by(Purge.id)
        ).scalars()
    ]
    return events
