"""Retention and purges, key rotation and the audit trail (``bot/privacy/``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from bot.cli import main as beacon
from bot.console.auth import create_responder
from bot.db import session_scope
from bot.db.models import Case, CaseEvent, Contact, Message, Purge, utcnow
from bot.handoff import casework, queue
from bot.handoff.casework import Serves
from bot.privacy.keys import new_key, rotate
from bot.privacy.retention import clear_trackers, purge
from bot.rasa_client import RasaClient
from tests.conftest import _reset_settings
from tests.standins import FakeRasa, free_port, serve

TOKEN = "test-internal-token"


def conversation(address: str, words: str = "hello, is this the job helpline?") -> int:
    """A person wrote once and the bot answered; returns the case id."""
    with session_scope() as session:
        inbound = queue.record_inbound(
            session, channel="webchat", address=address, text=words, external_id=None
        )
        queue.record_replies(session, inbound.message, [{"text": "Hello"}], "sent")
        return int(inbound.case.id)


def age(case_id: int, days: int) -> None:
    """The fake clock: the case, its contact and its messages happened ``days`` ago."""
    then = utcnow() - timedelta(days=days)
    with session_scope() as session:
        contact_id = session.get(Case, case_id).contact_id
        session.execute(update(Contact).where(Contact.id == contact_id).values(created_at=then))
        session.execute(update(Case).where(Case.id == case_id).values(created_at=then))
        session.execute(update(Message).where(Message.case_id == case_id).values(created_at=then))


def resolved_case(address: str, days_ago: int) -> int:
    with session_scope() as session:
        inbound = queue.record_inbound(
            session, channel="webchat", address=address, text="they keep my passport",
            external_id=None,
        )  # fmt: skip
        queue.escalate(
            session, inbound.contact.public_id, urgency="high", indicators=["documents_retained"],
            language="en", reporter="self", channel="webchat",
        )  # fmt: skip
        case_id = int(inbound.case.id)
        responder = create_responder(session, f"r{case_id}", "correct horse battery")
        serves = Serves.of(responder)
    with session_scope() as session:
        casework.claim(session, case_id, serves)
    with session_scope() as session:
        casework.resolve(session, case_id, serves)
        session.get(Case, case_id).resolved_at = utcnow() - timedelta(days=days_ago)
    age(case_id, days_ago + 10)
    return case_id


def count(model: type) -> int:
    with session_scope() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_retention_deletes_old_conversations_and_cases_and_keeps_the_rest(db_url: str) -> None:
    old_chat = conversation("old-visitor")
    age(old_chat, 31)
    recent_chat = conversation("recent-visitor")
    age(recent_chat, 29)
    old_case = resolved_case("old-worker", 181)
    recent_case = resolved_case("recent-worker", 179)
    held = resolved_case("held-worker", 400)
    with session_scope() as session:
        session.get(Case, held).on_hold = True
    open_case = conversation("old-but-escalated")
    with session_scope() as session:
        queue.escalate(
            session, session.get(Case, open_case).contact.public_id, urgency="medium",
            indicators=["deception"], language="en", reporter="self", channel="webchat",
        )  # fmt: skip
    age(open_case, 90)

    dry = purge(dry_run=True)
    assert (dry.unescalated, dry.resolved) == ([old_chat], [old_case])
    assert count(Case) == 6, "a dry run deletes nothing"

    done = purge()
    assert (done.unescalated, done.resolved, done.contacts) == ([old_chat], [old_case], 2)
    with session_scope() as session:
        left = set(session.execute(select(Case.id)).scalars())
        assert left == {recent_chat, recent_case, held, open_case}
        assert not session.execute(
            select(Message).where(Message.case_id.in_([old_chat, old_case]))
        ).first()
        assert not session.execute(select(CaseEvent).where(CaseEvent.case_id == old_case)).first()
        assert queue.get_or_create_contact(session, "webchat", "old-worker").id not in {
            c.contact_id for c in session.execute(select(Case)).scalars()
        }
        reasons = {p.case_id: p.reason for p in session.execute(select(Purge)).scalars()}
    assert reasons == {old_chat: "retention_unescalated", old_case: "retention_resolved"}
    assert purge().unescalated == [], "a second purge finds nothing"


@pytest.fixture
def rasa() -> Iterator[tuple[FakeRasa, str]]:
    fake = FakeRasa(TOKEN)
    port = free_port()
    with serve(fake.app(), port):
        yield fake, f"http://127.0.0.1:{port}"


def test_purged_conversations_are_emptied_in_the_assistant_too(
    db_url: str, rasa: tuple[FakeRasa, str]
) -> None:
    fake, url = rasa
    case_id = conversation("gone")
    with session_scope() as session:
        sender = session.get(Case, case_id).contact.public_id
    age(case_id, 45)
    purge()

    async def clear() -> int:
        client = RasaClient(url, TOKEN)
        try:
            return await clear_trackers(client)
        finally:
            await client.aclose()

    fake.fail = True
    assert asyncio.run(clear()) == 0, "Rasa down: kept for the next round"
    fake.fail = False
    assert asyncio.run(clear()) == 1
    assert fake.replaced == {sender: []}
    with session_scope() as session:
        [row] = session.execute(select(Purge)).scalars()
        assert row.rasa_sender is None and row.tracker_cleared_at is not None
    assert asyncio.run(clear()) == 0


def raw_values(sql: str) -> list[str]:
    with session_scope() as session:
        return [str(v) for v in session.execute(text(sql)).scalars() if v is not None]


def test_rotation_re_encrypts_everything_with_the_new_key(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = new_key(), new_key()
    monkeypatch.setenv("BEACON_SECRET_KEY", old)
    _reset_settings()
    case_id = conversation("+66812345678", "my boss took my passport")
    with session_scope() as session:
        session.get(Case, case_id).location = "Shwe Kokko"
    before = raw_values("SELECT body FROM messages") + raw_values("SELECT address FROM contacts")

    monkeypatch.setenv("BEACON_SECRET_KEY", f"{new},{old}")
    _reset_settings()
    counts = rotate()
    assert counts["messages"] == 2 and counts["contacts"] == 1 and counts["cases"] == 1
    after = raw_values("SELECT body FROM messages") + raw_values("SELECT address FROM contacts")
    assert not set(before) & set(after), "every stored value was re-encrypted"

    monkeypatch.setenv("BEACON_SECRET_KEY", new)  # the old key is gone
    _reset_settings()
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case.location == "Shwe Kokko"
        assert case.contact.address == "+66812345678"
        assert {m.body for m in case.messages} == {"my boss took my passport", "Hello"}


def test_a_new_hash_key_finds_the_same_contacts_after_rotation(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation("+855971234567")
    monkeypatch.setenv("BEACON_HASH_KEY", "b" * 64)
    _reset_settings()
    rotate()
    with session_scope() as session:
        contact = queue.get_or_create_contact(session, "webchat", "+855971234567")
        assert session.execute(select(func.count()).select_from(Contact)).scalar_one() == 1
        assert contact.address == "+855971234567"


def test_beacon_audit_shows_who_did_what(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    case_id = resolved_case("audited", 1)
    assert beacon(["audit", str(case_id), "--json"]) == 0
    actions = [(e["actor"], e["action"]) for e in json.loads(capsys.readouterr().out)]
    assert actions[0][1] == "opened" or ("bot", "escalated") in actions
    assert (f"r{case_id}", "claimed") in actions and (f"r{case_id}", "resolved") in actions
    assert beacon(["audit", str(case_id)]) == 0
    readable = capsys.readouterr().out
    assert "claimed" in readable and "queued -> claimed" in readable
    assert beacon(["audit", "99999"]) == 3


def test_beacon_purge_dry_run_counts_and_keeps(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    age(conversation("stale"), 60)
    assert beacon(["purge", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unescalated_cases"] == 1
    assert count(Case) == 1
    assert beacon(["purge"]) == 0
    assert "deleted 1 conversations" in capsys.readouterr().out
    assert count(Case) == 0 and count(Contact) == 0


def test_a_contact_written_a_moment_ago_is_not_an_orphan(db_url: str) -> None:
    """A first message writes the contact just before its case: a purge in between keeps it."""
    with session_scope() as session:
        queue.get_or_create_contact(session, "webchat", "arriving-now")
    assert purge().contacts == 0
    assert count(Contact) == 1
