"""The blocklist: a blocked sender is kept and screened but not answered, until it ends.

The gateway is real (SQLite and, with ``BEACON_TEST_DATABASE_URL``,
PostgreSQL) with a stand-in Rasa that records every message it is asked to
answer; people write on the web chat; responders use the console API.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, select, update
from starlette.testclient import TestClient

from bot.cli import main as beacon
from bot.console.auth import create_responder
from bot.db import session_scope
from bot.db.models import Block, Case, Contact, utcnow
from bot.handoff import blocklist, casework, queue
from bot.i18n import console_strings
from bot.privacy.keys import rotate
from bot.settings import get_settings
from tests import test_console_api
from tests.conftest import _reset_settings
from tests.test_console_api import (
    PASSWORD,
    Console,
    OrderedRasa,
    actions,
    case_row,
    chat,
    log_in,
    open_case,
    poll,
)
from tests.test_roles import account

#: The console tests' fixtures: the running gateway and its stand-in Rasa.
client = test_console_api.client
rasa = test_console_api.rasa

URGENT = "they beat me and I am bleeding, please help"


def blocked_case(client: TestClient, console: Console, sender: str, duration: str) -> int:
    """A case the console's responder takes, blocks the sender of, and resolves."""
    case_id = open_case(client, sender, language="en", country="Cambodia")
    assert console.take_next().json()["case"]["id"] == case_id
    done = console.post(f"cases/{case_id}/block", {"duration": duration, "reason": "spam"})
    assert done.status_code == 200, done.text
    assert console.post(f"cases/{case_id}/resolve").status_code == 200
    return case_id


def inbound_texts(console: Console, case_id: int) -> list[str]:
    return [m["text"] for m in console.case(case_id)["messages"] if m["direction"] == "in"]


def test_a_blocked_sender_is_kept_and_screened_but_not_answered(
    client: TestClient, rasa: OrderedRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_HOLDING_INTERVAL_MINUTES", "0")
    _reset_settings()
    account("ana")
    case_id = open_case(client, "w-1", language="en", country="Cambodia")
    ana = log_in(client, "ana")
    ana.take_next()
    assert len(chat(client, "w-1", "are you there?")) == 1, "not blocked: a holding message"
    before = utcnow()
    done = ana.post(f"cases/{case_id}/block", {"duration": "24h", "reason": "abuse"})
    assert done.status_code == 200, done.text
    shown = done.json()["case"]["blocked"]
    assert (shown["reason"], shown["by"]) == ("abuse", "ana")
    assert shown["reason_label"] == console_strings("en")["block_reason_abuse"]
    until = datetime.fromisoformat(shown["until"]) - before
    assert timedelta(hours=23, minutes=59) < until <= timedelta(hours=24, seconds=5)

    asked = len(rasa.calls)
    assert chat(client, "w-1", "you are useless, answer me now") == []
    assert len(rasa.calls) == asked, "the assistant is not asked to answer"
    assert inbound_texts(ana, case_id)[-1] == "you are useless, answer me now"
    assert poll(client, "w-1") == [], "not even a holding message"
    # The responder who holds the case may still write: they decide, not the bot.
    assert ana.post(f"cases/{case_id}/reply", {"text": "We read you."}).status_code == 200
    assert [m["text"] for m in poll(client, "w-1")] == ["We read you."]


def test_an_urgent_message_from_a_blocked_sender_still_reaches_the_queue(
    client: TestClient, rasa: OrderedRasa
) -> None:
    account("ana")
    ana = log_in(client, "ana")
    case_id = blocked_case(client, ana, "w-1", "permanent")
    asked = len(rasa.calls)

    assert chat(client, "w-1", "hello hello hello") == []
    assert case_row(case_id).status == "bot", (
        "a message that needs no person stays out of the queue"
    )
    assert case_id not in [c["id"] for c in ana.get("/console/api/queue").json()["cases"]]

    assert chat(client, "w-1", URGENT) == []
    assert len(rasa.calls) == asked
    case = case_row(case_id)
    assert (case.status, case.urgency) == ("queued", "critical"), "a life comes first"
    assert {"violence", "medical_emergency"} <= set(case.indicators)
    [row] = [c for c in ana.get("/console/api/queue").json()["cases"] if c["id"] == case_id]
    assert row["blocked"]["until"] is None, "the queue shows the sender is blocked for good"


def test_a_block_ends_by_itself_when_its_time_is_up(client: TestClient, rasa: OrderedRasa) -> None:
    account("ana")
    ana = log_in(client, "ana")
    case_id = blocked_case(client, ana, "w-1", "1h")
    assert chat(client, "w-1", "hello?") == []
    with session_scope() as session:  # the clock moves past the hour
        session.execute(update(Block).values(until=utcnow() - timedelta(seconds=1)))
    replies = chat(client, "w-1", "hello?")
    assert [r["text"] for r in replies][:1] == ["read: hello?"], "answered again"
    assert ana.case(case_id)["blocked"] is None


def test_only_the_holder_a_supervisor_of_the_office_or_an_admin_blocks(
    client: TestClient,
) -> None:
    account("ana", offices=["KH"])
    account("bob", offices=["KH"])
    account("sam", "supervisor", offices=["KH"])
    account("tia", "supervisor", offices=["TH"])
    account("ada", "admin")
    case_id = open_case(client, "w-1", country="Cambodia")
    ana, bob, sam, tia, ada = (log_in(client, n) for n in ("ana", "bob", "sam", "tia", "ada"))
    body = {"duration": "7d", "reason": "testing"}

    assert ana.post(f"cases/{case_id}/block", body).status_code == 403, "nobody holds it yet"
    assert sam.case(case_id)["may_block"] is True
    assert sam.post(f"cases/{case_id}/block", body).status_code == 200
    assert sam.post(f"cases/{case_id}/unblock").status_code == 200

    ana.take_next()
    assert (ana.case(case_id)["may_block"], bob.case(case_id)["may_block"]) == (True, False)
    assert bob.post(f"cases/{case_id}/block", body).status_code == 403
    assert tia.post(f"cases/{case_id}/block", body).status_code == 403
    assert ana.post(f"cases/{case_id}/block", body).status_code == 200
    assert bob.post(f"cases/{case_id}/unblock").status_code == 403
    assert ada.post(f"cases/{case_id}/unblock").status_code == 200
    assert ada.post(f"cases/{case_id}/unblock").status_code == 409, "nothing left to lift"
    for bad in ({"duration": "2h", "reason": "spam"}, {"duration": "1h", "reason": "rude"}, {}):
        assert ana.post(f"cases/{case_id}/block", bad).status_code == 400, bad
    assert [(a, who) for a, who in actions(case_id) if a in ("blocked", "unblocked")] == [
        ("blocked", "sam"),
        ("unblocked", "sam"),
        ("blocked", "ana"),
        ("unblocked", "ada"),
    ]
    with session_scope() as session:
        assert session.execute(select(Block).where(blocklist.in_force(utcnow()))).first() is None


def test_a_block_keeps_no_address_and_outlives_the_persons_data(
    client: TestClient, rasa: OrderedRasa
) -> None:
    account("ana")
    ana = log_in(client, "ana")
    sender = "w-secret-8557123"
    case_id = blocked_case(client, ana, sender, "permanent")
    with session_scope() as session:
        contact = session.get(Contact, case_row(case_id).contact_id)
        row = session.execute(select(Block)).scalar_one()
        kept = [str(getattr(row, c.name)) for c in Block.__table__.columns]
        assert row.address_hash == contact.address_hash
        assert not any(sender in value for value in kept)
        # The person's data is deleted (their case goes with it).
        session.execute(delete(Contact).where(Contact.id == contact.id))
    with session_scope() as session:
        assert session.execute(select(Block.case_id)).scalar_one() is None
    asked = len(rasa.calls)
    assert chat(client, sender, "hello again") == [], "deleting the data did not lift it"
    assert len(rasa.calls) == asked


def test_beacon_block_list_and_lift(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    account("ana")
    ana = log_in(client, "ana")
    case_id = blocked_case(client, ana, "w-1", "7d")
    assert beacon(["block", "list", "--json"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert (shown["reason"], shown["by"], shown["case_id"]) == ("spam", "ana", case_id)
    assert "address" not in json.dumps(shown) and "w-1" not in json.dumps(shown)
    assert beacon(["block", "list"]) == 0
    assert "spam" in capsys.readouterr().out

    assert beacon(["block", "lift", str(shown["id"])]) == 0
    assert ("unblocked", "cli") in actions(case_id)
    assert beacon(["block", "lift", str(shown["id"])]) == 3
    assert beacon(["block", "list"]) == 0
    assert "No sender is blocked." in capsys.readouterr().out
    assert beacon(["audit", str(case_id), "--json"]) == 0
    trail = json.loads(capsys.readouterr().out)
    [blocked] = [e for e in trail if e["action"] == "blocked"]
    assert (blocked["actor"], blocked["detail"]["reason"]) == ("ana", "spam")


def test_a_block_follows_its_sender_through_a_hash_key_rotation(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope() as session:
        found = queue.record_inbound(
            session, channel="sms", address="+85512345678", text="spam spam", external_id=None
        )
        admin = create_responder(session, "ada", PASSWORD, role="admin")
        blocklist.block(
            session,
            found.case.id,
            casework.Serves.of(admin),
            duration="permanent",
            reason="spam",
        )
        old_hash = found.contact.address_hash
    monkeypatch.setenv("BEACON_HASH_KEY", "c" * 64)
    _reset_settings()
    rotate()
    with session_scope() as session:
        contact = queue.get_or_create_contact(session, "sms", "+85512345678")
        assert contact.address_hash != old_hash
        assert blocklist.block_of(session, contact) is not None
        assert session.execute(select(Case.id)).scalars().all() == [found.case.id]


def test_a_block_on_a_deleted_persons_address_still_matches_after_a_hash_key_change(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.privacy.deletion import delete_person

    with session_scope() as session:
        found = queue.record_inbound(
            session, channel="sms", address="+85598765432", text="spam", external_id=None
        )
        admin = create_responder(session, "ada", PASSWORD, role="admin")
        blocklist.block(
            session, found.case.id, casework.Serves.of(admin), duration="permanent", reason="abuse"
        )
        contact_id = found.contact.id
        old_key = get_settings().hash_key
    delete_person(contact_id)  # nothing left that `keys rotate` could re-key the block from
    # The operator changes the hash key and keeps the old one listed after it.
    monkeypatch.setenv("BEACON_HASH_KEY", f"{'d' * 64},{old_key}")
    _reset_settings()
    rotate()
    with session_scope() as session:
        contact = queue.get_or_create_contact(session, "sms", "+85598765432")
        found_block = blocklist.block_of(session, contact)
        assert found_block is not None, "the block still holds the sender"
        assert found_block.address_hash == contact.address_hash, "re-keyed with the new key"
    # Without the old key listed, an old block cannot be recognised (documented).
    monkeypatch.setenv("BEACON_HASH_KEY", "e" * 64)
    _reset_settings()
    with session_scope() as session:
        stranger = queue.get_or_create_contact(session, "sms", "+85511112222")
        assert blocklist.block_of(session, stranger) is None


def test_blocks_that_ended_long_ago_are_purged_and_those_in_force_are_kept(db_url: str) -> None:
    from bot.privacy.retention import purge

    now = utcnow()
    with session_scope() as session:
        for hours_ago, lifted, until in (
            (24 * 40, True, None),  # lifted 40 days ago
            (24 * 2, True, None),  # lifted 2 days ago: kept a while
            (24 * 40, False, now - timedelta(days=35)),  # expired 35 days ago
            (24 * 40, False, None),  # permanent, in force
        ):
            session.add(
                Block(
                    channel="sms",
                    address_hash=f"{hours_ago}{lifted}{until}"[:64],
                    reason="spam",
                    blocked_by="ana",
                    created_at=now - timedelta(hours=hours_ago),
                    until=until,
                    lifted_at=now - timedelta(hours=hours_ago) if lifted else None,
                    lifted_by="ana" if lifted else None,
                )
            )
    report = purge(now)
    assert report.blocks == 2
    with session_scope() as session:
        left = session.execute(select(Block)).scalars().all()
        assert len(left) == 2
        assert any(b.lifted_at is None and b.until is None for b in left)
