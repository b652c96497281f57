"""The handoff queue's first shape, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import Case, CaseEvent, Message
from bot.handoff import queue


def _inbound(address: str, text: str, external_id: str | None = None) -> queue.Inbound:
    with session_scope() as session:
        return queue.record_inbound(
            session, channel="webchat", address=address, text=text, external_id=external_id
        )


def _sender(address: str) -> str:
    return _inbound(address, "hello").contact.public_id


def test_a_redelivered_message_is_stored_once(db_url: str) -> None:
    first = _inbound("alice", "help", external_id="m-1")
    again = _inbound("alice", "help", external_id="m-1")
    assert not first.duplicate
    assert again.duplicate
    assert again.message.id == first.message.id
    with session_scope() as session:
        assert len(session.execute(select(Message)).scalars().all()) == 1


def test_a_message_stored_by_a_concurrent_delivery_is_a_duplicate(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _inbound("alice", "help", external_id="m-2")
    # The other delivery committed between our look-up and our insert.
    real = queue._find_message
    calls = iter([None])
    monkeypatch.setattr(queue, "_find_message", lambda *a: next(calls, real(*a)))
    again = _inbound("alice", "help", external_id="m-2")
    assert again.duplicate and again.message.id == first.message.id


def test_messages_of_one_person_share_a_case_until_it_is_resolved(db_url: str) -> None:
    one = _inbound("bob", "hi")
    two = _inbound("bob", "are you there")
    other = _inbound("carol", "hi")
    assert one.case.id == two.case.id
    assert other.case.id != one.case.id


def test_escalating_queues_the_case_and_audits_it(db_url: str) -> None:
    sender = _sender("dana")
    with session_scope() as session:
        case = queue.escalate(
            session,
            sender,
            urgency="high",
            indicators=["documents_retained"],
            language="th",
            reporter="self",
            channel="webchat",
            location="Poipet",
        )
        case_id = case.id
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case.status == "queued"
        assert case.waiting_since is not None and case.waiting_since.tzinfo is not None
        assert case.location == "Poipet"
        events = (
            session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id)).scalars().all()
        )
        assert [(e.action, e.from_status, e.to_status) for e in events][-1] == (
            "escalated",
            "bot",
            "queued",
        )


def test_urgency_only_rises_and_indicators_accumulate(db_url: str) -> None:
    sender = _sender("eve")
    with session_scope() as session:
        queue.escalate(
            session,
            sender,
            urgency="critical",
            indicators=["violence"],
            language="en",
            reporter="self",
        )
    with session_scope() as session:
        case = queue.escalate(
            session,
            sender,
            urgency="medium",
            indicators=["deception"],
            language="en",
            reporter="unknown",
        )
        assert case.urgency == "critical"
        assert case.indicators == ["deception", "violence"]
        assert case.reporter == "self"


def test_open_cases_are_listed_most_urgent_first_with_the_contract_fields(db_url: str) -> None:
    medium, critical, bot_only = _sender("m"), _sender("c"), _sender("b")
    with session_scope() as session:
        queue.escalate(
            session,
            medium,
            urgency="medium",
            indicators=["deception"],
            language="id",
            reporter="other",
            channel="webchat",
        )
        queue.escalate(
            session,
            critical,
            urgency="critical",
            indicators=["medical_emergency"],
            language="en",
            reporter="self",
            channel="webchat",
        )
    with session_scope() as session:
        listed = queue.list_open(session)
    assert [c["urgency"] for c in listed] == ["critical", "medium"]
    for case in listed:
        assert {
            "id",
            "status",
            "urgency",
            "language",
            "indicators",
            "reporter",
            "channel",
            "waiting_since",
        } <= case.keys()
    assert listed[1]["reporter"] == "other" and listed[1]["language"] == "id"
    assert bot_only not in str(listed)


def test_a_case_for_an_unknown_sender_is_never_lost(db_url: str) -> None:
    with session_scope() as session:
        case = queue.escalate(
            session,
            "from-rasa-shell",
            urgency="critical",
            indicators=["self_harm"],
            language="en",
            reporter="self",
        )
        assert case.status == "queued"


def test_message_text_and_address_are_not_in_the_database_file(
    db_url: str, beacon_env: Path
) -> None:
    if not db_url.startswith("sqlite"):
        return
    _inbound("+66812345678", "they took my passport in Poipet")
    from bot.db import dispose_all

    dispose_all()
    raw = b"".join(p.read_bytes() for p in beacon_env.glob("beacon.db*"))
    assert b"passport" not in raw
    assert b"66812345678" not in raw


def test_rescreening_an_open_case_only_ever_raises_it(db_url: str) -> None:
    from bot.screening import screen

    sender = _sender("rescreen")
    with session_scope() as session:
        case_id = queue.escalate(
            session,
            sender,
            urgency="high",
            indicators=["documents_retained"],
            language="en",
            reporter="self",
        ).id
    with session_scope() as session:
        assert not queue.rescreen(session, case_id, screen("thank you"))
        assert queue.rescreen(session, case_id, screen("they beat me, I am bleeding"))
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case.urgency == "critical"
        assert set(case.indicators) == {"documents_retained", "violence", "medical_emergency"}
        raised = [e for e in case.events if e.action == "urgency_raised"]
        assert (
            raised[-1].detail == {"from": "high", "to": "critical"}
            and raised[-1].actor == "gateway"
        )


def test_a_case_with_the_bot_is_not_rescreened(db_url: str) -> None:
    from bot.screening import screen

    found = _inbound("bot-only", "hi")
    with session_scope() as session:
        assert not queue.rescreen(session, found.case.id, screen("I am bleeding"))
