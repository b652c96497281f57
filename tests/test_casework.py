"""Queue semantics: order and aging, routing, atomic take-next, release, transfer, resolve, re-open.

Every test runs on SQLite and, in CI, on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select

from bot.console.auth import create_responder
from bot.db import session_scope
from bot.db.models import Case, CaseEvent, Contact, Responder
from bot.handoff import casework, queue
from bot.handoff.casework import Serves

T0 = datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"


def make_responder(
    username: str, languages: list[str] | None = None, offices: list[str] | None = None
) -> Serves:
    with session_scope() as session:
        return Serves.of(
            create_responder(session, username, PASSWORD, languages=languages, offices=offices)
        )


def make_case(
    n: int,
    urgency: str,
    waited: timedelta,
    *,
    language: str | None = "en",
    office: str | None = None,
    status: str = "queued",
) -> int:
    with session_scope() as session:
        contact = queue.get_or_create_contact(session, "webchat", f"person-{n}")
        case = Case(
            contact_id=contact.id,
            channel="webchat",
            status=status,
            urgency=urgency,
            language=language,
            office=office,
            waiting_since=T0 - waited,
        )
        queue.requeue(case)
        session.add(case)
        session.flush()
        return int(case.id)


def taken_order(serves: Serves) -> list[int]:
    order = []
    while True:
        try:
            with session_scope() as session:
                order.append(casework.take_next(session, serves, now=T0).id)
        except casework.NothingToTake:
            return order


def test_urgency_first_then_waiting_time(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEACON_QUEUE_AGING_MINUTES", "0")
    from bot import settings

    settings.get_settings.cache_clear()
    low = make_case(1, "low", timedelta(hours=5))
    high_new = make_case(2, "high", timedelta(minutes=1))
    high_old = make_case(3, "high", timedelta(minutes=30))
    critical = make_case(4, "critical", timedelta(seconds=5))
    medium = make_case(5, "medium", timedelta(hours=3))
    ana = make_responder("ana")
    assert taken_order(ana) == [critical, high_old, high_new, medium, low]


def test_priority_rises_while_a_case_waits_but_critical_stays_first(db_url: str) -> None:
    # Default aging: 60 minutes per tier.
    medium_long = make_case(1, "medium", timedelta(minutes=75))
    high_fresh = make_case(2, "high", timedelta(minutes=10))
    low_very_long = make_case(3, "low", timedelta(days=30))
    critical = make_case(4, "critical", timedelta(seconds=1))
    ana = make_responder("ana")
    order = taken_order(ana)
    assert order[0] == critical, "no amount of waiting overtakes a critical case"
    assert order.index(medium_long) < order.index(high_fresh), "75 min medium > 10 min high"
    assert order.index(low_very_long) == 1, "a month-old low case has aged past both"


def test_raising_urgency_moves_a_waiting_case_up(db_url: str) -> None:
    first = make_case(1, "medium", timedelta(minutes=20))
    second = make_case(2, "medium", timedelta(minutes=5))
    with session_scope() as session:
        contact = session.get(Contact, session.get(Case, second).contact_id)
        queue.escalate(
            session, contact.public_id, urgency="critical", indicators=[], language="en",
            reporter="self",
        )  # fmt: skip
    assert taken_order(make_responder("ana")) == [second, first]


def test_routing_by_language_and_office_and_critical_to_everyone(db_url: str) -> None:
    thai_kh = make_case(1, "high", timedelta(minutes=5), language="th", office="KH")
    viet = make_case(2, "high", timedelta(minutes=9), language="vi", office="KH")
    thai_mm = make_case(3, "medium", timedelta(minutes=9), language="th", office="MM")
    burmese_critical = make_case(4, "critical", timedelta(seconds=3), language="my", office="MM")
    no_language = make_case(5, "low", timedelta(minutes=1), language=None)
    somchai = make_responder("somchai", languages=["th", "en"], offices=["KH"])
    assert taken_order(somchai) == [burmese_critical, thai_kh, no_language]
    linh = make_responder("linh", languages=["vi"])
    assert taken_order(linh) == [viet, thai_mm][:1]
    with session_scope() as session:
        assert session.get(Case, thai_mm).status == "queued"


def test_take_next_never_gives_one_case_to_two_responders(db_url: str) -> None:
    """50 concurrent responders take 1,000 queued cases: each exactly once."""
    with session_scope() as session:
        session.execute(
            insert(Contact),
            [
                {"public_id": f"p{i}", "channel": "webchat", "address_hash": f"h{i}"}
                for i in range(1000)
            ],
        )
        ids = dict(session.execute(select(Contact.public_id, Contact.id)).all())
        session.execute(
            insert(Case),
            [
                {
                    "contact_id": ids[f"p{i}"],
                    "channel": "webchat",
                    "status": "queued",
                    "urgency": ("low", "medium", "high", "critical")[i % 4],
                    "waiting_since": T0 - timedelta(seconds=i),
                    "queue_key": queue.queue_key(
                        ("low", "medium", "high", "critical")[i % 4], T0 - timedelta(seconds=i)
                    ),
                    "language": "en",
                }
                for i in range(1000)
            ],
        )
        session.execute(
            insert(Responder),
            [
                {"username": f"r{i}", "display_name": f"r{i}", "password_hash": "x",
                 "languages": [], "offices": []}
                for i in range(50)
            ],
        )  # fmt: skip
        responders = [Serves.of(r) for r in session.execute(select(Responder)).scalars()]

    def worker(serves: Serves) -> list[int]:
        return taken_order(serves)

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(worker, responders))
    taken = [case_id for result in results for case_id in result]
    assert len(taken) == 1000
    assert len(set(taken)) == 1000, "a case was given to two responders"
    with session_scope() as session:
        holders = dict(session.execute(select(Case.id, Case.claimed_by)).all())
        claims = Counter(
            session.execute(
                select(CaseEvent.case_id).where(CaseEvent.action == "claimed")
            ).scalars()
        )
    by_id = {s.responder_id: s for s in responders}
    for serves, result in zip(responders, results, strict=True):
        assert all(holders[case_id] == serves.responder_id for case_id in result)
    assert set(claims.values()) == {1}, "every case claimed once in the audit trail"
    assert len(by_id) == 50


def test_claim_is_compare_and_set(db_url: str) -> None:
    case_id = make_case(1, "high", timedelta(minutes=1))
    ana, ben = make_responder("ana"), make_responder("ben")
    with session_scope() as session:
        casework.claim(session, case_id, ana)
    with session_scope() as session, pytest.raises(casework.Conflict):
        casework.claim(session, case_id, ben)
    with session_scope() as session:
        assert session.get(Case, case_id).claimed_by == ana.responder_id


def test_release_keeps_the_place_and_only_the_holder_can(db_url: str) -> None:
    older = make_case(1, "high", timedelta(minutes=30))
    newer = make_case(2, "high", timedelta(minutes=1))
    ana, ben = make_responder("ana"), make_responder("ben")
    with session_scope() as session:
        assert casework.take_next(session, ana).id == older
    with session_scope() as session, pytest.raises(casework.Conflict):
        casework.release(session, older, ben)
    with session_scope() as session:
        casework.release(session, older, ana)
    assert taken_order(ben) == [older, newer]


def test_transfer_to_a_responder_or_an_office(db_url: str) -> None:
    case_id = make_case(1, "high", timedelta(minutes=5), language="th", office="TH")
    ana = make_responder("ana")
    ben = make_responder("ben")
    kh_only = make_responder("dara", offices=["KH"])
    with session_scope() as session:
        casework.take_next(session, ana)
    with session_scope() as session:
        casework.transfer(session, case_id, ana, to_responder="ben")
    assert taken_order(ana) == [], "transferred to ben: not offered to ana"
    assert taken_order(ben) == [case_id]
    with session_scope() as session:
        casework.transfer(session, case_id, ben, to_office="kh")
    assert taken_order(kh_only) == [case_id]
    with session_scope() as session:
        events = [
            (e.action, e.actor, (e.detail or {}).get("responder") or (e.detail or {}).get("office"))
            for e in session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id))
            .scalars()
        ]  # fmt: skip
    assert ("transferred", "ana", "ben") in events
    assert ("transferred", "ben", "KH") in events
    with session_scope() as session, pytest.raises(casework.UnknownResponder):
        casework.transfer(session, case_id, kh_only, to_responder="nobody")


def test_resolve_and_reopen_when_the_person_writes_again(db_url: str) -> None:
    with session_scope() as session:
        first = queue.record_inbound(
            session, channel="webchat", address="w-9", text="help", external_id="w-9:1"
        )
        public_id = first.contact.public_id
        queue.escalate(
            session, public_id, urgency="high", indicators=["violence"], language="en",
            reporter="self",
        )  # fmt: skip
        case_id = first.case.id
    ana = make_responder("ana")
    with session_scope() as session:
        casework.take_next(session, ana)
    with session_scope() as session:
        casework.resolve(session, case_id, ana)
        contact = session.execute(
            select(Contact).where(Contact.public_id == public_id)
        ).scalar_one()
        assert contact.dialogue_reset_pending
    with session_scope() as session:
        again = queue.record_inbound(
            session, channel="webchat", address="w-9", text="hi again", external_id="w-9:2"
        )
        assert again.case.id == case_id, "the same case is re-opened, its history kept"
        assert again.case.status == "bot"
        actions = [
            e.action
            for e in session.execute(
                select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            ).scalars()
        ]
    assert actions == ["opened", "escalated", "claimed", "resolved", "reopened"]


def test_a_case_resolved_long_ago_is_not_reopened(db_url: str) -> None:
    with session_scope() as session:
        first = queue.record_inbound(
            session, channel="webchat", address="w-8", text="hi", external_id="w-8:1"
        )
        case = session.get(Case, first.case.id)
        case.status = "resolved"
        case.resolved_at = datetime.now(timezone.utc) - timedelta(days=10)
        old_id = case.id
    with session_scope() as session:
        again = queue.record_inbound(
            session, channel="webchat", address="w-8", text="hi", external_id="w-8:2"
        )
        assert again.case.id != old_id
        assert session.get(Case, old_id).status == "resolved"
