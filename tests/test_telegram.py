"""The Telegram channel, end to end: webhook in, relay out, console in between.

The gateway is real (SQLite, and PostgreSQL when ``BEACON_TEST_DATABASE_URL``
is set); so is python-telegram-bot, which talks to ``FakeTelegram``
(``tests/standins.py``), a stand-in of the Bot API on 127.0.0.1 that checks
requests as Telegram does (token, known chats, text length in UTF-16 units,
callback data, webhook rules) and can answer 429 and 5xx. Rasa is a stand-in
that echoes what it reads. Telegram's webhook deliveries are posted to
``/telegram/webhook`` as Telegram posts them, with the secret header.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import regex
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.channels.push import TransientSendError, UnreachableError
from bot.channels.split import split_text, utf16_len
from bot.channels.telegram import DeliveryUncertain, send_error
from bot.channels.telegram_poll import SECRET_HEADER, Forwarder
from bot.conversation import Conversations
from bot.db import session_scope
from bot.db.models import Case, CaseEvent, Contact, Message
from bot.db.models import utcnow as db_now
from bot.handoff import queue
from bot.i18n.nlg import render
from bot.settings import ROOT, load_settings
from tests.standins import FakeRasa, FakeTelegram, free_port, serve
from tests.test_console_api import (
    add_responder,
    log_in,
    running_gateway,
    serve_with_lifespan,
)

TOKEN = "test-internal-token"
TG_TOKEN = "7000000001:AAHbeacon-test_token"
SECRET = "beacon-webhook-secret_0123456789"
CHAT = 5550001
OTHER = 5550002
GROUP = -1001234567890
WAIT_S = 15.0

THAI = "พวกเขายึดหนังสือเดินทางของฉันและไม่ยอมให้ฉันออกไปไหน"
BURMESE = "သူတို့က ကျွန်တော့်ပတ်စ်ပို့ကို ယူထားပြီး အပြင်ထွက်ခွင့်မပေးဘူး။"
ENGLISH = "They took my passport and they do not let me leave the building."


# --- the running gateway ----------------------------------------------------------------------


def wait_until(condition: Callable[[], Any], timeout: float = WAIT_S, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram(TG_TOKEN)
    port = free_port()
    with serve(fake.app(), port):
        fake.base = f"http://127.0.0.1:{port}/bot"
        yield fake


def telegram_env(
    monkeypatch: pytest.MonkeyPatch, fake: FakeTelegram, mode: str = "webhook"
) -> None:
    monkeypatch.setenv("BEACON_TELEGRAM_TOKEN", TG_TOKEN)
    monkeypatch.setenv("BEACON_TELEGRAM_API_BASE", fake.base)
    monkeypatch.setenv("BEACON_TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("BEACON_TELEGRAM_MODE", mode)


@dataclass
class Gateway:
    client: TestClient
    rasa: FakeRasa
    telegram: FakeTelegram

    def deliver(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        """Telegram posts one update to the webhook."""
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return self.client.post("/telegram/webhook", json=update, headers=headers)

    def texts(self, chat_id: int = CHAT, at_least: int = 1) -> list[str]:
        """What the person reads, once at least ``at_least`` messages reached them."""
        wait_until(lambda: len(self.telegram.texts_to(chat_id)) >= at_least, what="messages")
        return self.telegram.texts_to(chat_id)


@pytest.fixture
def gateway(
    db_url: str, telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    telegram_env(monkeypatch, telegram)
    rasa = FakeRasa(TOKEN)
    with running_gateway(rasa, monkeypatch) as client:
        yield Gateway(client, rasa, telegram)


def stored() -> list[Message]:
    with session_scope() as session:
        messages = list(session.execute(select(Message).order_by(Message.id)).scalars())
        session.expunge_all()
        return messages


def inbound() -> list[Message]:
    return [m for m in stored() if m.direction == "in"]


def contact_of(address: int | str, channel: str = "telegram") -> Contact | None:
    """The person writing from ``address`` (a chat id, a phone number) on ``channel``."""
    with session_scope() as session:
        found = session.execute(
            select(Contact).where(
                Contact.channel == channel,
                Contact.address_hash == queue.address_key(channel, str(address)),
            )
        ).scalar_one_or_none()
        if found is not None:
            session.expunge(found)
        return found


def escalate(
    address: int | str = CHAT,
    urgency: str = "high",
    channel: str = "telegram",
    reporter: str = "self",
) -> int:
    """The assistant hands the person's case to the queue (as action_handoff does)."""
    contact = contact_of(address, channel)
    assert contact is not None
    with session_scope() as session:
        case = queue.escalate(
            session, contact.public_id, urgency=urgency, indicators=["documents_retained"],
            language="en", reporter=reporter, channel=channel,
        )  # fmt: skip
        return int(case.id)


def make_due_now() -> None:
    """The fake clock: every waiting retry is due now."""
    with session_scope() as session:
        for message in session.execute(
            select(Message).where(Message.next_attempt_at.is_not(None))
        ).scalars():
            message.next_attempt_at = db_now()


def outbound_statuses() -> list[tuple[str, str | None]]:
    return [(m.status, m.error) for m in stored() if m.direction == "out"]


def console_case(gateway: Gateway, case_id: int, username: str = "ana") -> dict[str, Any]:
    add_responder(username)
    return log_in(gateway.client, username).case(case_id)


# --- a whole conversation ---------------------------------------------------------------------


def test_a_conversation_on_telegram_ends_in_a_queued_case_and_the_reply_reaches_the_person(
    gateway: Gateway,
) -> None:
    fake = gateway.telegram
    # The Start button: the assistant is asked for its (discreet) greeting, in the app's language.
    assert gateway.deliver(fake.text(CHAT, "/start", language_code="th")).status_code == 200
    assert gateway.texts(at_least=2) == ["read: /greet", "Is it safe?"]
    first = gateway.rasa.calls[0]
    assert first["message"] == "/greet"
    assert first["metadata"]["channel"] == "telegram"
    assert first["metadata"]["language_code"] == "th", "the app's language is a prior"
    # Reply buttons are an inline keyboard on their message; link previews are off.
    question = fake.messages[1]
    assert question["reply_markup"] == {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "/affirm"}]]
    }
    assert json.loads(fake.sent[0]["link_preview_options"]) == {"is_disabled": True}

    # The person taps "Yes": the assistant reads the button's payload, the tap is answered.
    assert gateway.deliver(fake.press(CHAT, "/affirm")).status_code == 200
    gateway.texts(at_least=4)
    assert gateway.rasa.calls[1]["message"] == "/affirm"
    assert len(fake.answered) == 1, "the app's spinner stops"
    assert inbound()[1].body == "Yes", "the transcript shows what the person tapped"

    assert gateway.deliver(fake.text(CHAT, ENGLISH)).status_code == 200
    gateway.texts(at_least=6)
    case_id = escalate()

    add_responder("ana")
    ana = log_in(gateway.client, "ana")
    taken = ana.take_next()
    assert taken.status_code == 200 and taken.json()["case"]["id"] == case_id
    detail = ana.case(case_id)
    assert detail["channel"] == "telegram" and detail["unreachable"] is False
    assert [m["text"] for m in detail["messages"] if m["direction"] == "in"] == [
        "/start",
        "Yes",
        ENGLISH,
    ]
    reply = "We are here. Are you safe to write now?"
    assert ana.post(f"cases/{case_id}/reply", {"text": reply}).status_code == 200
    assert gateway.texts(at_least=7)[-1] == reply
    sent = wait_until(
        lambda: [
            m for m in ana.case(case_id)["messages"] if m["text"] == reply and m["status"] == "sent"
        ],
        what="the reply marked sent",
    )
    assert len(sent) == 1
    assert fake.texts_to(CHAT).count(reply) == 1


@pytest.mark.parametrize(("language_code", "screened"), [("id", "id"), ("ms", "ms"), ("vi", "vi")])
def test_the_apps_language_is_the_screening_prior_for_a_short_message(
    gateway: Gateway, language_code: str, screened: str
) -> None:
    # "help" alone is English to any detector; "tolong" is Indonesian or Malay.
    word = "help" if language_code == "vi" else "tolong"
    update = gateway.telegram.text(CHAT, word, language_code=language_code)
    assert gateway.deliver(update).status_code == 200
    gateway.texts(at_least=2)
    assert gateway.rasa.calls[0]["metadata"]["language"] == screened


# --- what gets in -----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "forged-secret", SECRET[:-1], SECRET + "x"])
def test_a_missing_or_forged_secret_token_is_refused_and_nothing_is_kept(
    gateway: Gateway, secret: str | None
) -> None:
    response = gateway.deliver(gateway.telegram.text(CHAT, ENGLISH), secret=secret)
    assert response.status_code == 403
    time.sleep(0.3)
    assert stored() == [] and contact_of(CHAT) is None
    assert gateway.rasa.calls == [] and gateway.telegram.messages == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object (a Telegram Update)"),
        (
            b'{"message": {"text": "hi"}}',
            "'update_id' is required and must be a non-negative integer",
        ),
        (b'{"update_id": "12"}', "'update_id' is required and must be a non-negative integer"),
        (b'{"update_id": true}', "'update_id' is required and must be a non-negative integer"),
        (b'{"update_id": 12, "message": "oops"}', "not a valid Telegram update"),
        (
            b'{"update_id": 12, "message": {"text": "no date, no chat"}}',
            "not a valid Telegram update",
        ),
    ],
)
def test_a_malformed_payload_gets_400_with_a_clear_error(
    gateway: Gateway, body: bytes, error: str
) -> None:
    response = gateway.client.post(
        "/telegram/webhook",
        content=body,
        headers={SECRET_HEADER: SECRET, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert stored() == []


def test_an_oversized_body_is_refused_before_it_is_parsed(gateway: Gateway) -> None:
    update = gateway.telegram.text(CHAT, "x" * 100)
    update["padding"] = "y" * (1024 * 1024)
    assert gateway.deliver(update).status_code == 413
    assert stored() == []


def test_a_redelivered_update_is_acknowledged_and_answered_once(gateway: Gateway) -> None:
    update = gateway.telegram.text(CHAT, ENGLISH)
    assert gateway.deliver(update).status_code == 200
    assert gateway.deliver(update).status_code == 200
    gateway.texts(at_least=2)
    assert gateway.deliver(update).status_code == 200, "also after it was answered"
    time.sleep(1.0)
    assert len(inbound()) == 1
    assert inbound()[0].external_id == str(update["update_id"])
    assert len(gateway.rasa.calls) == 1
    assert gateway.telegram.texts_to(CHAT) == ["read: " + ENGLISH, "Is it safe?"]


def test_an_unknown_update_type_is_acknowledged_and_logged_without_its_content(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    reaction = {
        "update_id": 700001,
        "message_reaction": {
            "chat": FakeTelegram.chat(CHAT),
            "message_id": 3,
            "user": FakeTelegram.user(CHAT),
            "date": int(time.time()),
            "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": "👍"}],
        },
    }
    future = {"update_id": 700002, "future_update_kind": {"secret_words": "my name is Dara Sok"}}
    with caplog.at_level("INFO"):
        assert gateway.deliver(reaction).status_code == 200
        assert gateway.deliver(future).status_code == 200
    assert stored() == [] and contact_of(CHAT) is None
    ignored = [r for r in caplog.records if r.getMessage() == "telegram_update_ignored"]
    assert [r.fields["type"] for r in ignored] == ["message_reaction", "future_update_kind"]
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert "Dara" not in logged and "👍" not in logged and str(CHAT) not in logged


def test_a_database_outage_answers_503_so_telegram_delivers_again(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    update = gateway.telegram.text(CHAT, ENGLISH)

    async def down(self: Conversations, incoming: Any) -> Any:
        raise OperationalError("INSERT INTO messages", {}, Exception("database is down"))

    with monkeypatch.context() as patch:
        patch.setattr(Conversations, "accept", down)
        response = gateway.deliver(update)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert stored() == []
    # Telegram delivers it again once the database is back: stored and answered once.
    assert gateway.deliver(update).status_code == 200
    assert gateway.texts(at_least=2) == ["read: " + ENGLISH, "Is it safe?"]
    assert len(inbound()) == 1


def test_the_gateway_starts_while_telegram_is_down_and_takes_updates_once_it_is_back(
    db_url: str, telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    telegram_env(monkeypatch, telegram)
    telegram.fail = True
    rasa = FakeRasa(TOKEN)
    with running_gateway(rasa, monkeypatch) as client:
        gateway = Gateway(client, rasa, telegram)
        update = telegram.text(CHAT, ENGLISH)
        assert gateway.deliver(update).status_code == 503, "Telegram will deliver it again"
        assert stored() == []
        telegram.fail = False
        assert gateway.deliver(update).status_code == 200
        assert gateway.texts(at_least=2) == ["read: " + ENGLISH, "Is it safe?"]


def test_the_channel_is_off_without_a_token(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rasa = FakeRasa(TOKEN)
    with running_gateway(rasa, monkeypatch) as client:
        response = client.post(
            "/telegram/webhook", json={"update_id": 1}, headers={SECRET_HEADER: SECRET}
        )
    assert response.status_code == 404
    assert not load_settings().telegram_enabled


# --- what people send -------------------------------------------------------------------------


def test_an_edited_message_is_kept_and_answered_like_a_new_one(gateway: Gateway) -> None:
    fake = gateway.telegram
    assert (
        gateway.deliver(fake.text(CHAT, "they took my pasport", message_id=41)).status_code == 200
    )
    gateway.texts(at_least=2)
    edit = fake.text(CHAT, "they took my passport", message_id=41, edited=True)
    assert gateway.deliver(edit).status_code == 200
    assert gateway.texts(at_least=4)[2] == "read: they took my passport"
    assert [m.body for m in inbound()] == ["they took my pasport", "they took my passport"]
    assert gateway.rasa.calls[1]["metadata"]["edited"] == "true"


def test_a_shared_location_becomes_the_case_location_and_is_kept_encrypted(
    gateway: Gateway,
) -> None:
    fake = gateway.telegram
    assert (
        gateway.deliver(fake.location(CHAT, 10.6275, 103.5221, language_code="id")).status_code
        == 200
    )
    # Acknowledged in the person's language; the assistant does not read coordinates as words.
    assert gateway.texts() == ["Sudah diterima, terima kasih. Tim kami dapat melihatnya."]
    assert gateway.rasa.calls == []
    (message,) = inbound()
    assert message.body == "📍 10.627500, 103.522100"
    assert message.payload["attachment"] == {"kind": "location", "described": True}
    assert "10.62" not in json.dumps(message.payload), "no coordinates outside encrypted text"
    with session_scope() as session:
        case = session.get(Case, message.case_id)
        assert case.location == "10.627500, 103.522100"
    # A live location moving: the case's location follows, no new message, no reply.
    moved = fake.location(CHAT, 10.6301, 103.5199, live=True, edited=True, language_code="id")
    assert gateway.deliver(moved).status_code == 200
    with session_scope() as session:
        assert session.get(Case, message.case_id).location == "10.630100, 103.519900"
    time.sleep(0.5)
    assert len(inbound()) == 1 and len(fake.texts_to(CHAT)) == 1


def test_a_shared_contact_is_kept_in_the_encrypted_text_only(gateway: Gateway) -> None:
    fake = gateway.telegram
    assert gateway.deliver(fake.contact(CHAT, "+855 12 345 678", "Sopheap")).status_code == 200
    assert gateway.texts() == ["Received, thank you. Someone from our team can see it."]
    (message,) = inbound()
    assert message.body == "👤 Sopheap Sok, +855 12 345 678"
    assert message.payload["attachment"] == {"kind": "contact", "described": True}
    assert "345" not in json.dumps(message.payload) and "Sopheap" not in json.dumps(message.payload)
    assert gateway.rasa.calls == []


@pytest.mark.parametrize(
    ("kind", "build", "served_as"),
    [
        ("photo", lambda f, data: f.photo(CHAT, data, language_code="th"), "image/jpeg"),
        ("voice", lambda f, data: f.voice(CHAT, data, language_code="th"), "audio/ogg"),
        (
            "document",
            lambda f, data: f.document(
                CHAT, data, "contract.pdf", "application/pdf", language_code="th"
            ),
            "application/pdf",
        ),
        (
            "document",
            lambda f, data: f.document(CHAT, data, "page.html", "text/html", language_code="th"),
            "application/octet-stream",
        ),
    ],
)
def test_media_is_acknowledged_and_a_responder_can_open_it_from_the_console(
    gateway: Gateway,
    kind: str,
    build: Callable[[FakeTelegram, bytes], dict[str, Any]],
    served_as: str,
) -> None:
    data = b"\x89 the bytes the person sent " + os.urandom(64)
    assert gateway.deliver(build(gateway.telegram, data)).status_code == 200
    ack = gateway.texts()
    assert ack == [render("utter_attachment_received", "th", "telegram", {})["text"]]
    (message,) = inbound()
    reference = message.payload["attachment"]
    assert reference["kind"] == kind and reference["file_id"]
    assert set(reference) == {"kind", "file_id", "file_unique_id", "mime_type", "file_size"}
    assert_a_responder_opens_it(gateway.client, escalate(), message.id, kind, data, served_as)


def assert_a_responder_opens_it(
    client: TestClient, case_id: int, message_id: int, kind: str, data: bytes, served_as: str
) -> None:
    """The console links the person's file on their message; opening it is audited."""
    add_responder("ana")
    ana = log_in(client, "ana")
    (shown,) = [m for m in ana.case(case_id)["messages"] if m["id"] == message_id]
    assert shown["attachment"] == {
        "kind": kind,
        "url": f"/console/api/messages/{message_id}/attachment",
    }
    opened = ana.get(shown["attachment"]["url"])
    assert opened.status_code == 200
    assert opened.content == data
    assert opened.headers["content-type"].split(";")[0] == served_as
    assert opened.headers["content-disposition"].startswith("attachment;")
    assert opened.headers["x-content-type-options"] == "nosniff"
    with session_scope() as session:
        viewed = session.execute(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == "viewed")
        ).scalars()
        assert {"attachment": message_id} in [e.detail for e in viewed], "opening it is audited"
    # Without a session, nothing is served.
    assert client.get(shown["attachment"]["url"], headers={"cookie": ""}).status_code == 401


def test_a_caption_is_read_by_the_assistant_and_the_photo_kept(gateway: Gateway) -> None:
    update = gateway.telegram.photo(CHAT, b"jpeg bytes", caption=ENGLISH)
    assert gateway.deliver(update).status_code == 200
    assert gateway.texts(at_least=2)[0] == "read: " + ENGLISH
    (message,) = inbound()
    assert message.body == ENGLISH and message.payload["attachment"]["kind"] == "photo"


def test_a_group_is_refused_politely_and_left_and_nothing_is_kept(gateway: Gateway) -> None:
    fake = gateway.telegram
    added = fake.membership(GROUP, "member", chat_type="supergroup", old="left")
    assert gateway.deliver(added).status_code == 200
    wait_until(lambda: fake.left, what="leaveChat")
    refusal = render("utter_private_only", "th", "telegram", {})["text"]
    assert fake.texts_to(GROUP) == [refusal], "in the language of whoever added the bot"
    assert fake.left == [GROUP]
    # Telegram also posts the "bot joined" service message: no second refusal.
    joined = fake.message(
        GROUP,
        chat_type="supergroup",
        new_chat_members=[added["my_chat_member"]["new_chat_member"]["user"]],
    )
    assert gateway.deliver(joined).status_code == 200
    time.sleep(0.3)
    assert fake.texts_to(GROUP) == [refusal] and fake.left == [GROUP]
    # A message in a group the bot is still in (say it could not leave): refused again, left.
    fake.known_chats.add(GROUP)
    message = fake.text(GROUP, "/start@beacon_test_bot", chat_type="supergroup", language_code="en")
    assert gateway.deliver(message).status_code == 200
    wait_until(lambda: len(fake.left) == 2, what="leaveChat again")
    assert fake.texts_to(GROUP)[-1] == render("utter_private_only", "en", "telegram", {})["text"]
    assert stored() == [] and contact_of(GROUP) is None
    assert gateway.rasa.calls == []


# --- what goes out ----------------------------------------------------------------------------


def test_a_429_is_retried_after_retry_after_and_the_order_holds(gateway: Gateway) -> None:
    fake = gateway.telegram
    fake.fail_next("sendMessage", 429, retry_after=30)
    assert gateway.deliver(fake.text(CHAT, ENGLISH)).status_code == 200
    first = wait_until(
        lambda: [m for m in stored() if m.direction == "out" and m.error == "rate_limited"],
        what="the rate-limited reply",
    )[0]
    assert first.status == "pending" and first.attempts == 1
    wait = (first.next_attempt_at - db_now()).total_seconds()
    assert 25 < wait <= 30, "Telegram's retry_after is honoured"
    time.sleep(2.5)  # the relay sweeps every 2 s: nothing may go out before retry_after
    assert fake.texts_to(CHAT) == []
    assert fake.calls.count("sendMessage") == 1, "the second reply waits behind the first"
    make_due_now()
    assert gateway.texts(at_least=2) == ["read: " + ENGLISH, "Is it safe?"]
    time.sleep(2.5)
    assert fake.texts_to(CHAT) == ["read: " + ENGLISH, "Is it safe?"], "each went out once"
    assert [s for s, _ in outbound_statuses()] == ["sent", "sent"]


@pytest.mark.parametrize("status", [500, 502])
def test_5xx_from_telegram_is_retried_with_backoff_and_sent_once(
    gateway: Gateway, status: int
) -> None:
    fake = gateway.telegram
    fake.fail_next("sendMessage", status, times=2)
    assert gateway.deliver(fake.text(CHAT, ENGLISH)).status_code == 200
    wait_until(lambda: fake.calls.count("sendMessage") >= 2, what="two failed attempts")
    waiting = [m for m in stored() if m.direction == "out" and m.next_attempt_at is not None]
    assert waiting and waiting[0].error == "server_error"
    make_due_now()
    assert gateway.texts(at_least=2) == ["read: " + ENGLISH, "Is it safe?"]
    time.sleep(2.5)
    assert fake.texts_to(CHAT) == ["read: " + ENGLISH, "Is it safe?"]
    assert outbound_statuses() == [("sent", None), ("sent", None)]


def test_a_person_who_blocked_the_bot_is_unreachable_on_the_case(gateway: Gateway) -> None:
    fake = gateway.telegram
    assert gateway.deliver(fake.text(CHAT, ENGLISH)).status_code == 200
    gateway.texts(at_least=2)
    case_id = escalate()
    add_responder("ana")
    ana = log_in(gateway.client, "ana")
    assert ana.take_next().status_code == 200
    fake.blocked.add(CHAT)
    assert ana.post(f"cases/{case_id}/reply", {"text": "Are you there?"}).status_code == 200
    wait_until(lambda: ana.case(case_id)["unreachable"], what="unreachable in the console")
    detail = ana.case(case_id)
    reply = [m for m in detail["messages"] if m["text"] == "Are you there?"]
    assert [m["status"] for m in reply] == ["failed"], "not retried: they blocked the bot"
    assert "unreachable" in [e["action"] for e in detail["events"]]
    queued = ana.get("/console/api/queue").json()["cases"]
    assert [c["unreachable"] for c in queued if c["id"] == case_id] == [True]
    # Writing again makes them reachable again.
    fake.blocked.discard(CHAT)
    assert gateway.deliver(fake.text(CHAT, "sorry, I am back")).status_code == 200
    wait_until(lambda: not ana.case(case_id)["unreachable"], what="reachable again")


def test_blocking_the_bot_marks_the_person_unreachable_at_once(gateway: Gateway) -> None:
    fake = gateway.telegram
    assert gateway.deliver(fake.text(CHAT, ENGLISH)).status_code == 200
    gateway.texts(at_least=2)
    case_id = escalate()
    assert gateway.deliver(fake.membership(CHAT, "kicked")).status_code == 200
    contact = contact_of(CHAT)
    assert contact is not None and contact.unreachable_since is not None
    assert console_case(gateway, case_id)["unreachable"] is True
    assert gateway.deliver(fake.membership(CHAT, "member", old="kicked")).status_code == 200
    contact = contact_of(CHAT)
    assert contact is not None and contact.unreachable_since is None
    assert len(inbound()) == 1, "membership changes are not messages"


# --- splitting at 4,096 ----------------------------------------------------------------------


def graphemes(text: str) -> list[str]:
    return regex.findall(r"\X", text)


@pytest.mark.parametrize(
    "sentence",
    [THAI, BURMESE, ENGLISH, "ขอบคุณ🙏🏽ครับ👨‍👩‍👧", "ကျွန်တော်မြန်မာလူမျိုးဖြစ်ပါတယ်", "พวกเขายึดหนังสือเดินทาง"],
)
def test_long_text_is_split_into_whole_graphemes_in_order(sentence: str) -> None:
    text = " ".join([sentence] * 400) if " " in sentence else sentence * 400
    parts = split_text(text)
    assert len(parts) >= 2
    assert all(0 < utf16_len(p) <= 4096 for p in parts), "Telegram counts UTF-16 code units"
    assert "".join(parts).replace(" ", "") == text.replace(" ", ""), "nothing lost or reordered"
    whole = graphemes(text.replace(" ", ""))
    # Every cut falls on a grapheme boundary of the whole text.
    boundaries = {0}
    position = 0
    for cluster in whole:
        position += len(cluster)
        boundaries.add(position)
    cut = 0
    for part, following in itertools.pairwise(parts):
        cut += len(part.replace(" ", ""))
        assert cut in boundaries, f"cut inside a grapheme: {part[-3:]!r}"
        # Nor inside a syllable: a stacked consonant, a vowel written first, a killed consonant.
        assert not part.endswith(("\u1039", "\u0e40", "\u0e41", "\u200d")), part[-3:]
        assert following[0] not in "\u103a\u1039\u102c\u0e48\u0e34", following[:3]
        assert not (len(following) > 1 and following[1] in "\u103a\u1039"), following[:3]


def test_a_split_prefers_paragraphs_then_sentences() -> None:
    paragraph = ("Word after word. " * 100).strip()
    text = "\n\n".join([paragraph] * 5)
    parts = split_text(text)
    assert all(p == paragraph or p.startswith(paragraph) for p in parts)
    assert all(p.endswith(".") for p in parts), "never cut mid-sentence when a break exists"
    burmese = " ".join([BURMESE] * 200)
    assert all(p.endswith("။") for p in split_text(burmese)[:-1])


def test_a_long_reply_reaches_telegram_in_order_in_several_messages(gateway: Gateway) -> None:
    fake = gateway.telegram
    long_thai = (THAI * 200)[:4096]
    assert gateway.deliver(fake.text(CHAT, long_thai)).status_code == 200
    texts = gateway.texts(at_least=3)
    assert len(texts) == 3, "the 4,102-character echo goes out as two messages"
    assert "".join(texts[:2]) == "read: " + long_thai
    assert all(utf16_len(t) <= 4096 for t in texts)
    # The button belongs to the last part of its own message only.
    assert [bool(m.get("reply_markup")) for m in fake.messages] == [False, False, True]
    (first_reply, _second_reply) = [m for m in stored() if m.direction == "out"]
    parts = f"{fake.messages[0]['message_id']},{fake.messages[1]['message_id']}"
    assert first_reply.provider_id == parts, "every part's id: an erase deletes them all"


def test_a_split_message_interrupted_by_a_429_sends_only_the_rest_on_retry(
    gateway: Gateway,
) -> None:
    fake = gateway.telegram
    fake.fail_next("sendMessage", 429, retry_after=5, after=1)
    text = "🙏" * 3000  # 6,000 UTF-16 units: two parts
    assert gateway.deliver(fake.text(CHAT, text)).status_code == 200
    wait_until(lambda: any(m.error == "rate_limited" for m in stored()), what="the 429")
    assert len(fake.texts_to(CHAT)) == 1
    make_due_now()
    texts = gateway.texts(at_least=3)
    time.sleep(2.5)
    texts = fake.texts_to(CHAT)
    assert len(texts) == 3
    assert "".join(texts[:2]) == "read: " + text, "the first part is not sent twice"


# --- polling, set-webhook, beacon up ----------------------------------------------------------


def test_polling_forwards_every_update_once_and_confirms_only_what_the_gateway_kept(
    db_url: str, telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    telegram_env(monkeypatch, telegram, mode="poll")
    port, rasa_port = free_port(), free_port()
    monkeypatch.setenv("BEACON_PORT", str(port))
    monkeypatch.setenv("BEACON_RASA_PORT", str(rasa_port))
    monkeypatch.setenv("BEACON_ACTIONS_PORT", str(free_port()))
    telegram.webhook = {"url": "https://old.example.org/telegram/webhook"}
    first, second = telegram.text(CHAT, ENGLISH), telegram.text(CHAT, "and my phone too")
    telegram.queue(first, second)

    async def gateway_down() -> Forwarder:
        forwarder = Forwarder(load_settings())
        try:
            await forwarder.bot.initialize()
            await forwarder.bot.delete_webhook(drop_pending_updates=False)
            with pytest.raises(httpx.ConnectError):
                await forwarder.once(timeout=0)
            return forwarder
        finally:
            await forwarder.aclose()

    down = asyncio.run(gateway_down())
    assert down.offset is None, "nothing is confirmed while the gateway cannot keep it"
    assert [u["update_id"] for u in telegram.pending] == [first["update_id"], second["update_id"]]

    async def poll_until(condition: Callable[[], bool]) -> None:
        forwarder = Forwarder(load_settings())
        task = asyncio.create_task(forwarder.run())
        deadline = time.monotonic() + WAIT_S
        while not condition() and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.05)
        forwarder.stopping.set()
        await asyncio.wait_for(task, 10)
        await forwarder.aclose()

    from bot.app import create_app

    rasa = FakeRasa(TOKEN)
    with serve(rasa.app(), rasa_port), serve_with_lifespan(create_app(load_settings()), port):
        asyncio.run(poll_until(lambda: len(telegram.texts_to(CHAT)) >= 4 and not telegram.pending))
        assert telegram.webhook["url"] == "", "polling deletes the webhook first"
        assert telegram.pending == [], "both updates confirmed once kept"
        assert [m.body for m in inbound()] == [ENGLISH, "and my phone too"]
        # Telegram hands out an update again (say the poller died before confirming it).
        telegram.queue(second)
        asyncio.run(poll_until(lambda: not telegram.pending))
        time.sleep(1.0)
    assert len(inbound()) == 2 and len(rasa.calls) == 2
    assert len(telegram.texts_to(CHAT)) == 4


def test_the_poller_process_outlives_outages_with_backoff_and_stops_at_once_on_sigterm(
    db_url: str, telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    telegram_env(monkeypatch, telegram, mode="poll")
    port, rasa_port = free_port(), free_port()
    monkeypatch.setenv("BEACON_RASA_PORT", str(rasa_port))
    monkeypatch.setenv("BEACON_ACTIONS_PORT", str(free_port()))
    env = {**os.environ, "BEACON_PORT": str(port), "BEACON_LOG_FORMAT": "json"}
    monkeypatch.setenv("BEACON_PORT", str(port))
    telegram.fail = True  # Telegram answers 500 to everything
    update = telegram.text(CHAT, ENGLISH)
    telegram.queue(update)
    log_path = tmp_path / "poller.log"
    with log_path.open("wb") as log:
        poller = subprocess.Popen(
            [sys.executable, "-m", "bot.channels.telegram_poll"],
            cwd=ROOT, env=env, stdout=log, stderr=log,
        )  # fmt: skip
    try:
        wait_until(lambda: telegram.calls.count("getMe") >= 3, what="three tries of getMe")
        times = [
            t
            for name, t in zip(telegram.calls, telegram.called_at, strict=False)
            if name == "getMe"
        ]
        gaps = [b - a for a, b in itertools.pairwise(times[:3])]
        assert gaps[0] >= 0.4 and gaps[1] >= 0.8, f"backs off, does not hammer Telegram: {gaps}"
        # Telegram is back, the gateway is not (yet): the update is not confirmed.
        telegram.fail = False
        wait_until(lambda: "getUpdates" in telegram.calls, what="polling")
        time.sleep(1.5)
        assert [u["update_id"] for u in telegram.pending] == [update["update_id"]]
        assert telegram.calls.count("getUpdates") <= 3, "backs off while the gateway is down"

        from bot.app import create_app

        with (
            serve(FakeRasa(TOKEN).app(), rasa_port),
            serve_with_lifespan(create_app(load_settings()), port),
        ):
            assert wait_until(lambda: len(telegram.texts_to(CHAT)) >= 2, what="the replies")
            wait_until(lambda: not telegram.pending, what="the update confirmed")
        # Idle, in a long poll (the one that confirmed the update): SIGTERM ends it at once.
        time.sleep(0.5)
        assert poller.poll() is None
        stopped_at = time.monotonic()
        poller.send_signal(signal.SIGTERM)
        assert poller.wait(10) == 0
        assert time.monotonic() - stopped_at < 3.0
    finally:
        if poller.poll() is None:
            poller.kill()
            poller.wait(10)
    assert telegram.texts_to(CHAT) == ["read: " + ENGLISH, "Is it safe?"]
    assert len(inbound()) == 1
    logged = log_path.read_text()
    assert "telegram_poll_retry" in logged
    assert ENGLISH not in logged and str(CHAT) not in logged and TG_TOKEN not in logged


def test_set_webhook_registers_the_public_url_with_the_secret(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import settings as settings_module
    from bot.cli import main

    telegram_env(monkeypatch, telegram)
    monkeypatch.setenv("BEACON_PUBLIC_URL", "https://beacon.example.org")
    settings_module.get_settings.cache_clear()
    assert main(["telegram", "set-webhook"]) == 0
    assert telegram.webhook == {
        "url": "https://beacon.example.org/telegram/webhook",
        "secret_token": SECRET,
        "allowed_updates": ["message", "edited_message", "callback_query", "my_chat_member"],
        "drop_pending_updates": False,
    }
    assert "https://beacon.example.org/telegram/webhook" in capsys.readouterr().out
    assert main(["telegram", "info"]) == 0
    info = capsys.readouterr().out
    assert "@beacon_test_bot" in info and "beacon.example.org/telegram/webhook" in info
    assert TG_TOKEN not in info and SECRET not in info

    monkeypatch.setenv("BEACON_PUBLIC_URL", "http://203.0.113.5:8000")
    settings_module.get_settings.cache_clear()
    assert main(["telegram", "set-webhook"]) == 2
    assert "https://" in capsys.readouterr().err
    assert telegram.webhook["url"] == "https://beacon.example.org/telegram/webhook"


def test_the_poller_stops_with_a_clear_error_when_telegram_refuses_the_token(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import settings as settings_module
    from bot.cli import main

    telegram_env(monkeypatch, telegram, mode="poll")
    monkeypatch.setenv("BEACON_TELEGRAM_TOKEN", "7000000001:AAHrevoked-token")
    settings_module.get_settings.cache_clear()
    assert main(["telegram", "poll"]) == 2
    assert "BotFather" in capsys.readouterr().err
    assert telegram.calls == ["getMe"], "not retried: a revoked token stays revoked"


def test_without_a_configured_secret_one_is_generated_and_shared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BEACON_TELEGRAM_TOKEN", TG_TOKEN)
    monkeypatch.delenv("BEACON_TELEGRAM_WEBHOOK_SECRET", raising=False)
    first, again = load_settings(), load_settings()
    assert len(first.telegram_webhook_secret) == 64
    assert first.telegram_webhook_secret == again.telegram_webhook_secret, "gateway = poller"
    secret_file = first.var_dir / "telegram-webhook.secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.delenv("BEACON_TELEGRAM_TOKEN")
    assert load_settings().telegram_webhook_secret == "", "Telegram off: no secret"


@pytest.mark.parametrize(
    ("token", "mode", "polls"),
    [(TG_TOKEN, "poll", True), (TG_TOKEN, "webhook", False), ("", "poll", False)],
)
def test_beacon_up_runs_the_poller_only_in_polling_mode(
    monkeypatch: pytest.MonkeyPatch, token: str, mode: str, polls: bool
) -> None:
    from pathlib import Path

    from bot.supervisor import children

    monkeypatch.setenv("BEACON_TELEGRAM_TOKEN", token)
    monkeypatch.setenv("BEACON_TELEGRAM_MODE", mode)
    names = [c.name for c in children(load_settings(), Path("model.tar.gz"), "t")]
    assert ("telegram-poll" in names) is polls


# --- a crash between receipt and reply --------------------------------------------------------


def _start_gateway(env: dict[str, str], port: int, log: Any) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.gateway"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the gateway exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the gateway did not start")


def gateway_env() -> tuple[dict[str, str], int, int]:
    """The environment of a gateway process on free ports: (env, gateway port, Rasa port)."""
    port, rasa_port = free_port(), free_port()
    env = {
        **os.environ,
        "BEACON_PORT": str(port),
        "BEACON_RASA_PORT": str(rasa_port),
        "BEACON_ACTIONS_PORT": str(free_port()),
        "BEACON_LOG_FORMAT": "json",
    }
    return env, port, rasa_port


def test_a_kill_9_between_receipt_and_reply_is_answered_exactly_once_after_restart(
    db_url: str,
    telegram: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    telegram_env(monkeypatch, telegram)
    env, port, rasa_port = gateway_env()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    update = telegram.text(CHAT, ENGLISH, language_code="th")
    rasa = FakeRasa(TOKEN)
    rasa.delay = 120.0  # the assistant is slow: the gateway dies before it answers
    with serve(rasa.app(), rasa_port), (tmp_path / "gateway.log").open("wb") as log:
        first = _start_gateway(env, port, log)
        try:
            response = httpx.post(url, json=update, headers={SECRET_HEADER: SECRET}, timeout=10)
            assert response.status_code == 200, "stored: Telegram will not deliver it again"
            wait_until(lambda: rasa.calls, what="the assistant asked")
            assert [m.status for m in inbound()] == ["received"]
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        rasa.delay = 0.0
        # Telegram tries again while the gateway is down...
        with pytest.raises(httpx.ConnectError):
            httpx.post(url, json=update, headers={SECRET_HEADER: SECRET}, timeout=5)
        second = _start_gateway(env, port, log)
        try:
            # ... and once it is back: acknowledged, not processed again.
            again = httpx.post(url, json=update, headers={SECRET_HEADER: SECRET}, timeout=10)
            assert again.status_code == 200
            wait_until(lambda: len(telegram.texts_to(CHAT)) >= 2, timeout=60, what="the replies")
            time.sleep(3.0)  # a duplicate would have gone out by now (the relay sweeps every 2 s)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    assert telegram.texts_to(CHAT) == ["read: " + ENGLISH, "Is it safe?"]
    assert [m.status for m in inbound()] == ["processed"]
    assert [s for s, _ in outbound_statuses()] == ["sent", "sent"]
    logged = (tmp_path / "gateway.log").read_text()
    assert ENGLISH not in logged and str(CHAT) not in logged, "no message text or chat id in logs"


# --- how a failed send is classified ----------------------------------------------------------


def _caused(error: Exception, cause: Exception) -> Exception:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "becomes", "reason"),
    [
        (RetryAfter(7), TransientSendError, "rate_limited"),
        (NetworkError("Bad Gateway"), TransientSendError, "server_error"),
        (
            _caused(NetworkError("httpx.ConnectError"), httpx.ConnectError("refused")),
            TransientSendError,
            "network",
        ),
        (_caused(TimedOut(), httpx.ConnectTimeout("slow")), TransientSendError, "network"),
        (_caused(TimedOut(), httpx.ReadTimeout("no answer")), DeliveryUncertain, "ReadTimeout"),
        (
            _caused(NetworkError("httpx.ReadError"), httpx.ReadError("reset")),
            DeliveryUncertain,
            "ReadError",
        ),
        (Forbidden("Forbidden: bot was blocked by the user"), UnreachableError, "blocked"),
        (BadRequest("Bad Request: chat not found"), UnreachableError, "chat_not_found"),
        (BadRequest("Bad Request: message is too long"), BadRequest, None),
    ],
)
def test_telegram_errors_become_the_relays_errors(
    error: Exception, becomes: type[Exception], reason: str | None
) -> None:
    found = send_error(error)  # type: ignore[arg-type]
    assert isinstance(found, becomes)
    if isinstance(found, TransientSendError):
        assert found.reason == reason
        assert found.retry_after == (7.0 if reason == "rate_limited" else None)
    elif isinstance(found, UnreachableError):
        assert found.reason == reason
    elif reason is not None:
        assert str(found) == reason


def test_a_button_pressed_in_a_group_is_answered_and_the_group_left(gateway: Gateway) -> None:
    fake = gateway.telegram
    fake.known_chats.add(GROUP)
    fake.messages.append(
        {
            "chat_id": GROUP, "message_id": 9, "date": int(time.time()), "text": "old",
            "reply_markup": {"inline_keyboard": [[{"text": "Yes", "callback_data": "/affirm"}]]},
        }
    )  # fmt: skip
    press = fake.press(GROUP, "/affirm")
    press["callback_query"]["message"]["chat"] = FakeTelegram.chat(GROUP, "supergroup")
    assert gateway.deliver(press).status_code == 200
    wait_until(lambda: fake.left == [GROUP], what="leaveChat")
    assert len(fake.answered) == 1
    assert stored() == [] and gateway.rasa.calls == []


# --- the console in a browser -----------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_console_shows_the_photo_link_and_that_the_person_blocked_the_bot(
    db_url: str, telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    if not Path("/usr/bin/chromium").exists() and not os.environ.get("BEACON_REQUIRE_BROWSER"):
        pytest.skip("Debian's chromium is not installed (make browser)")
    from playwright.sync_api import expect, sync_playwright

    from bot.app import create_app
    from bot.i18n import console_strings

    telegram_env(monkeypatch, telegram)
    port, rasa_port = free_port(), free_port()
    monkeypatch.setenv("BEACON_RASA_PORT", str(rasa_port))
    monkeypatch.setenv("BEACON_ACTIONS_PORT", str(free_port()))
    url = f"http://127.0.0.1:{port}"
    photo = b"\xff\xd8\xff the photo of the room " + os.urandom(32)
    strings = console_strings("en")
    with (
        serve(FakeRasa(TOKEN).app(), rasa_port),
        serve_with_lifespan(create_app(load_settings()), port),
    ):
        response = httpx.post(
            f"{url}/telegram/webhook",
            json=telegram.photo(CHAT, photo),
            headers={SECRET_HEADER: SECRET},
        )
        assert response.status_code == 200
        wait_until(lambda: telegram.texts_to(CHAT), what="the acknowledgement")
        case_id = escalate()
        blocked = httpx.post(
            f"{url}/telegram/webhook",
            json=telegram.membership(CHAT, "kicked"),
            headers={SECRET_HEADER: SECRET},
        )
        assert blocked.status_code == 200
        add_responder("ana")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            try:
                page = browser.new_page(accept_downloads=True)
                page.goto(f"{url}/console/login")
                page.get_by_label(strings["username"]).fill("ana")
                page.get_by_label(strings["password"]).fill("correct horse battery")
                page.get_by_label(strings["password"]).press("Enter")
                page.wait_for_url(f"{url}/console")
                page.locator(f'.case-row[data-case-id="{case_id}"]').first.click()
                expect(page.locator("#case-summary")).to_contain_text(strings["unreachable"])
                link = page.get_by_role(
                    "link", name=strings["attachment_open"].format(kind=strings["attachment_photo"])
                )
                expect(link).to_be_visible()
                with page.expect_download() as download:
                    link.click()
                assert Path(download.value.path()).read_bytes() == photo
            finally:
                browser.close()
