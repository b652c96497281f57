"""The SMS channel, end to end: Twilio's webhooks in, the relay out, the console in between.

The gateway is real and listens on 127.0.0.1 (SQLite, and PostgreSQL when
``BEACON_TEST_DATABASE_URL`` is set); so is twilio's asynchronous client,
which talks to ``FakeTwilio`` (``tests/standins.py``), a stand-in that checks
requests as Twilio does (basic auth, ``To``/``From``/``Body``, E.164, 1,600
characters, unsubscribed recipients), answers 429 and 5xx on demand, posts
signed status callbacks and serves MMS media behind the account's
credentials. Twilio's webhooks reach the gateway as through a reverse proxy:
signed for the public URL Twilio was given (``https://beacon.example.org/...``)
and delivered to 127.0.0.1. Rasa is a stand-in that echoes what it reads.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from bot.app import create_app
from bot.channels import build_channels
from bot.channels.push import TransientSendError, UnreachableError
from bot.channels.sms import DeliveryUncertain, SmsChannel, send_error
from bot.channels.sms_inbound import Keyword, hints, keyword_of
from bot.db.models import Contact
from bot.i18n.nlg import render
from bot.settings import Settings, load_settings
from tests.standins import FakeRasa, FakeTwilio, free_port, serve
from tests.test_console_api import add_responder, log_in, serve_with_lifespan
from tests.test_telegram import (
    _start_gateway,
    assert_a_responder_opens_it,
    gateway_env,
    inbound,
    make_due_now,
    outbound_statuses,
    stored,
    wait_until,
)
from tests.test_telegram import contact_of as channel_contact
from tests.test_telegram import escalate as channel_escalate

TOKEN = "test-internal-token"
TW_SID = "AC" + "0" * 31 + "7"
TW_TOKEN = "twilio-test-auth-token-0123456789"
NUMBER = "+15005550006"
PUBLIC = "https://beacon.example.org"
SMS_URL = f"{PUBLIC}/twilio/sms"
STATUS_URL = f"{PUBLIC}/twilio/status"
PERSON = "+66812345678"
ENGLISH = "They took my passport and they do not let me leave the building."
ECHO = ["read: " + ENGLISH, "Is it safe?"]
HELP_VALUES = {"stop": "STOP", "start": "START"}


# --- the running gateway ----------------------------------------------------------------------


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(TW_SID, TW_TOKEN, NUMBER)
    port = free_port()
    with serve(fake.app(), port):
        fake.base = f"http://127.0.0.1:{port}"
        yield fake


def sms_env(monkeypatch: pytest.MonkeyPatch, fake: FakeTwilio, public: bool = True) -> None:
    monkeypatch.setenv("BEACON_TWILIO_ACCOUNT_SID", TW_SID)
    monkeypatch.setenv("BEACON_TWILIO_AUTH_TOKEN", TW_TOKEN)
    monkeypatch.setenv("BEACON_TWILIO_FROM", NUMBER)
    monkeypatch.setenv("BEACON_TWILIO_API_BASE", fake.base)
    if public:
        monkeypatch.setenv("BEACON_TWILIO_SMS_URL", SMS_URL)
        monkeypatch.setenv("BEACON_TWILIO_STATUS_URL", STATUS_URL)


@dataclass
class Gateway:
    base: str
    client: httpx.Client
    rasa: FakeRasa
    twilio: FakeTwilio

    def text(
        self, body: str, sender: str = PERSON, **kw: Any
    ) -> tuple[httpx.Response, dict[str, str]]:
        """The person texts Beacon's number; Twilio posts the webhook."""
        params = self.twilio.incoming(sender, body, **kw)
        return self.twilio.post(SMS_URL, params), params

    def texts(self, number: str = PERSON, at_least: int = 1) -> list[str]:
        """What the person reads, once at least ``at_least`` SMS reached them."""
        wait_until(lambda: len(self.twilio.texts_to(number)) >= at_least, what="SMS")
        return self.twilio.texts_to(number)


@contextmanager
def running(
    twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch, public: bool = True
) -> Iterator[Gateway]:
    sms_env(monkeypatch, twilio, public)
    rasa = FakeRasa(TOKEN)
    port, rasa_port = free_port(), free_port()
    monkeypatch.setenv("BEACON_RASA_PORT", str(rasa_port))
    monkeypatch.setenv("BEACON_ACTIONS_PORT", str(free_port()))
    base = f"http://127.0.0.1:{port}"
    twilio.forward[PUBLIC] = base  # the reverse proxy in front of the gateway
    with (
        serve(rasa.app(), rasa_port),
        serve_with_lifespan(create_app(load_settings()), port),
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        yield Gateway(base, client, rasa, twilio)


@pytest.fixture
def gateway(db_url: str, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    with running(twilio, monkeypatch) as started:
        yield started


def contact_of(number: str = PERSON) -> Contact | None:
    return channel_contact(number, "sms")


def escalate(number: str = PERSON, urgency: str = "high") -> int:
    return channel_escalate(number, urgency, channel="sms", reporter="other")


def statuses() -> list[str]:
    return [status for status, _ in outbound_statuses()]


def responder_reply(gateway: Gateway, text: str) -> tuple[Any, int]:
    """A responder takes the person's case and writes to them from the console."""
    case_id = escalate()
    add_responder("ana")
    ana = log_in(gateway.client, "ana")  # type: ignore[arg-type]
    taken = ana.take_next()
    assert taken.status_code == 200 and taken.json()["case"]["id"] == case_id
    assert ana.post(f"cases/{case_id}/reply", {"text": text}).status_code == 200
    return ana, case_id


def console_message(ana: Any, case_id: int, text: str) -> dict[str, Any]:
    (found,) = [m for m in ana.case(case_id)["messages"] if m["text"] == text]
    return dict(found)


# --- a whole conversation ---------------------------------------------------------------------


def test_a_conversation_by_sms_ends_in_a_queued_case_and_the_reply_is_delivered(
    gateway: Gateway,
) -> None:
    fake = gateway.twilio
    response, _ = gateway.text(ENGLISH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert "<Response" in response.text and "<Message" not in response.text, "empty TwiML"
    # The replies go out through the REST API, buttons left out (SMS has none).
    assert gateway.texts(at_least=2) == ECHO
    metadata = gateway.rasa.calls[0]["metadata"]
    assert metadata["channel"] == "sms"
    assert (metadata["calling_code"], metadata["region"]) == ("66", "TH"), "the country prior"
    assert {m["From"] for m in fake.messages} == {NUMBER}
    assert {m["StatusCallback"] for m in fake.messages} == {STATUS_URL}
    assert fake.auth == [(TW_SID, TW_TOKEN)] * 2, "HTTP basic auth with the account's credentials"
    # Twilio reports each SMS sent, then delivered: recorded on the messages.
    wait_until(lambda: statuses() == ["delivered", "delivered"], what="delivery statuses")
    assert {code for _, _, code in fake.callbacks} == {204}

    # "Yes" is a carriers' opt-in keyword, but the person never opted out: it answers the bot.
    assert gateway.text("Yes")[0].status_code == 200
    gateway.texts(at_least=4)
    assert gateway.rasa.calls[1]["message"] == "Yes"

    reply = "We are here. Is it safe to write to this number?"
    ana, case_id = responder_reply(gateway, reply)
    detail = ana.case(case_id)
    assert detail["channel"] == "sms" and detail["unreachable"] is False
    assert [m["text"] for m in detail["messages"] if m["direction"] == "in"] == [ENGLISH, "Yes"]
    assert gateway.texts(at_least=5)[-1] == reply
    wait_until(
        lambda: console_message(ana, case_id, reply)["status"] == "delivered",
        what="the reply delivered",
    )
    assert fake.texts_to(PERSON).count(reply) == 1


# --- what gets in -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how", ["missing", "forged", "signed for the URL the gateway sees", "another token", "altered"]
)
def test_a_missing_or_forged_signature_is_refused_and_nothing_is_kept(
    gateway: Gateway, how: str
) -> None:
    fake = gateway.twilio
    params = fake.incoming(PERSON, ENGLISH)
    if how == "missing":
        response = fake.post(SMS_URL, params, signature=None)
    elif how == "forged":
        response = fake.post(SMS_URL, params, signature="bm90IGEgc2lnbmF0dXJlIGF0IGFsbA==")
    elif how == "signed for the URL the gateway sees":
        response = fake.post(SMS_URL, params, signed_url=f"{gateway.base}/twilio/sms")
    elif how == "another token":
        signature = RequestValidator("another-token").compute_signature(SMS_URL, params)
        response = fake.post(SMS_URL, params, signature=signature)
    else:
        signature = fake.sign(SMS_URL, params)
        response = fake.post(SMS_URL, {**params, "Body": "changed"}, signature=signature)
    assert response.status_code == 403
    time.sleep(0.3)
    assert stored() == [] and contact_of() is None
    assert gateway.rasa.calls == [] and fake.messages == []


def test_without_a_public_url_the_url_the_gateway_sees_is_the_signed_one(
    db_url: str, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No proxy: Twilio posts to the gateway itself, and signs that URL."""
    with running(twilio, monkeypatch, public=False) as gateway:
        local = f"{gateway.base}/twilio/sms"
        params = twilio.incoming(PERSON, ENGLISH)
        assert twilio.post(local, params, signed_url=SMS_URL).status_code == 403
        assert twilio.post(local, params).status_code == 200
        assert gateway.texts(at_least=2) == ECHO
        assert "StatusCallback" not in twilio.messages[0], "no public URL to call back"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda p: p.pop("MessageSid"), "'MessageSid' is required"),
        (lambda p: p.pop("From"), "'From' is required"),
        (lambda p: p.update(From=""), "'From' is required"),
        (lambda p: p.update(MessageSid="SM123"), "'MessageSid' is not a Twilio message SID"),
        (lambda p: p.update(NumMedia="two"), "'NumMedia' must be a number from 0 to 10"),
        (
            lambda p: p.update(NumMedia="1", MediaUrl0="https://files.example.com/a.jpg"),
            "'MediaUrl0' is not a Twilio media URL",
        ),
        (lambda p: p.update(NumMedia="1"), "'MediaUrl0' is required"),
    ],
)
def test_a_malformed_webhook_gets_400_with_a_clear_error(
    gateway: Gateway, change: Any, error: str
) -> None:
    params = gateway.twilio.incoming(PERSON, ENGLISH)
    change(params)
    response = gateway.twilio.post(SMS_URL, params)
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert stored() == []


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (
            b'{"MessageSid": "SM0", "From": "+66812345678"}',
            "application/json",
            "body must be application/x-www-form-urlencoded",
        ),
        (
            b"MessageSid&From",
            "application/x-www-form-urlencoded",
            "body is not a valid form (key=value pairs, UTF-8)",
        ),
        (
            b"Body=\xff\xfe&From=%2B66812345678",
            "application/x-www-form-urlencoded",
            "body is not a valid form (key=value pairs, UTF-8)",
        ),
    ],
)
def test_a_body_that_is_not_a_form_gets_400(
    gateway: Gateway, body: bytes, content_type: str, error: str
) -> None:
    response = gateway.client.post(
        "/twilio/sms",
        content=body,
        headers={"content-type": content_type, "X-Twilio-Signature": "c2lnbmF0dXJl"},
    )
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert stored() == []


def test_a_redelivered_message_sid_is_acknowledged_and_answered_once(gateway: Gateway) -> None:
    fake = gateway.twilio
    params = fake.incoming(PERSON, ENGLISH)
    assert fake.post(SMS_URL, params).status_code == 200
    assert fake.post(SMS_URL, params).status_code == 200
    gateway.texts(at_least=2)
    assert fake.post(SMS_URL, params).status_code == 200, "also after it was answered"
    time.sleep(1.0)
    assert [m.external_id for m in inbound()] == [params["MessageSid"]]
    assert len(gateway.rasa.calls) == 1
    assert fake.texts_to(PERSON) == ECHO


def test_the_senders_country_is_a_language_prior(gateway: Gateway) -> None:
    senders = {"+855121234567": "km", "+84912345678": "vi", "+6281234567890": "id"}
    for number in senders:
        assert gateway.text("ok", sender=number)[0].status_code == 200
        gateway.texts(number, at_least=2)
    by_number = {call["metadata"]["calling_code"]: call["metadata"] for call in gateway.rasa.calls}
    assert {code: m["region"] for code, m in by_number.items()} == {
        "855": "KH",
        "84": "VN",
        "62": "ID",
    }
    assert {code: m["language"] for code, m in by_number.items()} == {
        "855": "km",
        "84": "vi",
        "62": "id",
    }, "a one-word message is answered in the language of the sender's country"


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+66812345678", {"calling_code": "66", "region": "TH"}),
        ("+959123456789", {"calling_code": "95", "region": "MM"}),
        ("+8613812345678", {"calling_code": "86", "region": "CN"}),
        ("+254712345678", {"calling_code": "254", "region": "KE"}),
        ("+15005550006", {"calling_code": "1", "region": "US"}),
        ("22395", {}),
        ("Beacon", {}),
    ],
)
def test_hints_carry_the_calling_code_and_its_region(number: str, expected: dict) -> None:
    assert hints(number) == expected


# --- MMS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "kind", "served_as"),
    [
        ("image/jpeg", "photo", "image/jpeg"),
        ("audio/amr", "audio", "application/octet-stream"),
        ("text/vcard", "document", "application/octet-stream"),
    ],
)
def test_an_mms_is_acknowledged_and_a_responder_opens_it_from_the_console(
    gateway: Gateway, content_type: str, kind: str, served_as: str
) -> None:
    data = b"\xff\xd8\xff the bytes the person sent " + os.urandom(64)
    response, params = gateway.text("", media=((data, content_type),))
    assert response.status_code == 200
    assert gateway.texts() == [render("utter_attachment_received", "th", "sms", {})["text"]]
    assert gateway.rasa.calls == [], "no words: nothing for the assistant to read"
    (message,) = inbound()
    assert message.payload["attachment"] == {
        "kind": kind,
        "media": [{"path": urlsplit(params["MediaUrl0"]).path, "mime_type": content_type}],
    }
    # Fetched from Twilio with the account's credentials, then from storage without them.
    assert_a_responder_opens_it(gateway.client, escalate(), message.id, kind, data, served_as)


def test_an_mms_with_words_is_read_by_the_assistant_and_the_medium_kept(gateway: Gateway) -> None:
    response, _ = gateway.text(ENGLISH, media=((b"png", "image/png"), (b"jpg", "image/jpeg")))
    assert response.status_code == 200
    assert gateway.texts(at_least=2) == ECHO
    (message,) = inbound()
    assert message.body == ENGLISH
    assert [m["mime_type"] for m in message.payload["attachment"]["media"]] == [
        "image/png",
        "image/jpeg",
    ]


# --- keywords ---------------------------------------------------------------------------------


def test_stop_opts_the_person_out_and_nothing_more_is_sent_until_start(gateway: Gateway) -> None:
    fake = gateway.twilio
    gateway.text(ENGLISH)
    gateway.texts(at_least=2)
    assert gateway.text(" Stop ")[0].status_code == 200
    wait_until(lambda: contact_of().opted_out, what="opted out")  # type: ignore[union-attr]
    assert len(gateway.rasa.calls) == 1, "the assistant never reads a keyword"
    assert [(m.body, m.status) for m in inbound()] == [
        (ENGLISH, "processed"),
        (" Stop ", "processed"),
    ]
    # A responder writes: nothing goes out, and the console says why.
    ana, case_id = responder_reply(gateway, "Are you there?")
    wait_until(
        lambda: console_message(ana, case_id, "Are you there?")["status"] == "failed",
        what="the reply failed",
    )
    assert outbound_statuses()[-1] == ("failed", "opted_out")
    detail = ana.case(case_id)
    assert detail["unreachable"] is True
    assert "opted_out" in [e["action"] for e in detail["events"]]
    time.sleep(2.5)
    assert fake.texts_to(PERSON) == ECHO and fake.calls == 2, "never even tried"

    # START: opted in again, silently (Twilio sends the carriers' confirmation).
    assert gateway.text("START")[0].status_code == 200
    wait_until(lambda: not contact_of().opted_out, what="opted in")  # type: ignore[union-attr]
    assert ana.case(case_id)["unreachable"] is False
    assert "opted_in" in [e["action"] for e in ana.case(case_id)["events"]]
    time.sleep(0.5)
    assert fake.texts_to(PERSON) == ECHO
    # The responder's next message reaches them again.
    assert ana.post(f"cases/{case_id}/reply", {"text": "Welcome back"}).status_code == 200
    assert gateway.texts(at_least=3)[-1] == "Welcome back"


def test_a_localised_opt_out_keyword_counts_when_twilio_says_so(gateway: Gateway) -> None:
    """With Advanced Opt-Out, Twilio's keywords may be Thai; it names them in OptOutType."""
    assert gateway.text("หยุด", opt_out_type="STOP")[0].status_code == 200
    wait_until(lambda: contact_of() is not None and contact_of().opted_out, what="opted out")  # type: ignore[union-attr]
    time.sleep(0.5)
    assert gateway.rasa.calls == [] and gateway.twilio.messages == []


@pytest.mark.parametrize("word", ["HELP", "info"])
def test_help_is_answered_with_a_short_help_text_in_the_senders_language(
    gateway: Gateway, word: str
) -> None:
    assert gateway.text(word)[0].status_code == 200
    expected = render("utter_sms_help", "th", "sms", HELP_VALUES)["text"]
    assert gateway.texts() == [expected]
    assert "STOP" in expected and "START" in expected
    assert gateway.rasa.calls == []
    wait_until(lambda: statuses() == ["delivered"], what="delivered")
    time.sleep(0.5)
    assert gateway.twilio.texts_to(PERSON) == [expected], "answered once"


@pytest.mark.parametrize(
    ("body", "opt_out_type", "expected"),
    [
        *((word, None, Keyword.STOP) for word in ("STOP", "stopall", "Unsubscribe", " cancel ")),
        *((word, None, Keyword.STOP) for word in ("END", "quit", "REVOKE", "OptOut")),
        *((word, None, Keyword.START) for word in ("START", "yes", "Unstop")),
        *((word, None, Keyword.HELP) for word in ("HELP", "info")),
        ("stop please", None, None),
        ("help me", None, None),
        ("ช่วยด้วย", None, None),
        ("หยุด", "STOP", Keyword.STOP),
        ("เริ่ม", "start", Keyword.START),
        ("stop", "", Keyword.STOP),
    ],
)
def test_carriers_keywords_are_the_whole_message_in_any_case(
    body: str, opt_out_type: str | None, expected: Keyword | None
) -> None:
    assert keyword_of(body, opt_out_type) is expected


def test_a_number_twilio_knows_as_unsubscribed_is_opted_out_and_not_retried(
    gateway: Gateway,
) -> None:
    fake = gateway.twilio
    gateway.text(ENGLISH)
    gateway.texts(at_least=2)
    fake.opted_out.add(PERSON)  # a STOP Beacon never saw (sent to another of the numbers)
    ana, case_id = responder_reply(gateway, "Are you there?")
    wait_until(lambda: outbound_statuses()[-1] == ("failed", "opted_out"), what="failed")
    calls = fake.calls
    contact = contact_of()
    assert contact is not None and contact.opted_out
    assert ana.case(case_id)["unreachable"] is True
    time.sleep(2.5)
    assert fake.calls == calls, "not retried"


# --- what goes out ----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "reason"), [(429, "rate_limited"), (500, "server_error")])
def test_429_and_5xx_from_twilio_are_retried_with_backoff_and_sent_once(
    gateway: Gateway, status: int, reason: str
) -> None:
    fake = gateway.twilio
    fake.fail_next(status, times=2)
    assert gateway.text(ENGLISH)[0].status_code == 200
    wait_until(lambda: fake.calls >= 2, what="two refused attempts")
    # The relay records the second refusal a moment after Twilio answered it.
    waiting = wait_until(
        lambda: [
            m
            for m in stored()
            if m.direction == "out" and m.next_attempt_at is not None and m.status == "pending"
        ],
        what="the retry scheduled",
    )
    assert (waiting[0].status, waiting[0].error) == ("pending", reason)
    assert fake.messages == [], "the second reply waits behind the first"
    make_due_now()
    assert gateway.texts(at_least=2) == ECHO
    wait_until(lambda: statuses() == ["delivered", "delivered"], what="delivered")
    time.sleep(2.5)
    assert fake.texts_to(PERSON) == ECHO, "each went out once"
    assert fake.calls == 4


def test_delivery_failures_are_recorded_and_a_late_status_does_not_undo_them(
    gateway: Gateway,
) -> None:
    fake = gateway.twilio
    fake.outcome[PERSON] = ("undelivered", "30003")  # the phone is off
    gateway.text(ENGLISH)
    wait_until(
        lambda: outbound_statuses() == [("failed", "undelivered:30003")] * 2,
        what="undelivered",
    )
    contact = contact_of()
    assert contact is not None and contact.unreachable_since is None, "a phone off is temporary"
    late = {
        "AccountSid": TW_SID, "MessageSid": fake.sids[0], "MessageStatus": "sent",
        "SmsSid": fake.sids[0], "SmsStatus": "sent", "To": PERSON, "From": NUMBER,
    }  # fmt: skip
    assert fake.post(STATUS_URL, late).status_code == 204
    forged = {**late, "MessageStatus": "delivered"}
    assert fake.post(STATUS_URL, forged, signature="Zm9yZ2Vk").status_code == 403
    assert fake.post(STATUS_URL, forged, signature=None).status_code == 403
    malformed = {k: v for k, v in forged.items() if k != "MessageStatus"}
    response = fake.post(STATUS_URL, malformed)
    assert response.status_code == 400 and response.json() == {
        "error": "'MessageStatus' is required"
    }
    assert outbound_statuses() == [("failed", "undelivered:30003")] * 2


def test_a_number_that_cannot_receive_sms_makes_the_person_unreachable(gateway: Gateway) -> None:
    gateway.twilio.outcome[PERSON] = ("undelivered", "30006")  # a landline
    gateway.text(ENGLISH)
    wait_until(lambda: statuses() == ["failed", "failed"], what="undelivered")
    contact = contact_of()
    assert contact is not None and contact.unreachable_since is not None


def test_a_reply_over_1600_characters_goes_out_as_several_sms_in_order(gateway: Gateway) -> None:
    gateway.text(ENGLISH)
    gateway.texts(at_least=2)
    long_reply = " ".join(f"Sentence number {n} of a long answer." for n in range(60))
    assert len(long_reply) > 1600
    responder_reply(gateway, long_reply)
    parts = gateway.texts(at_least=4)[2:]
    assert len(parts) == 2 and all(len(p) <= 1600 for p in parts)
    assert " ".join(parts) == long_reply


def test_the_channel_is_off_without_a_complete_twilio_account(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [c.name for c in build_channels(load_settings())] == []
    monkeypatch.setenv("BEACON_TWILIO_ACCOUNT_SID", TW_SID)
    monkeypatch.setenv("BEACON_TWILIO_AUTH_TOKEN", TW_TOKEN)
    assert [c.name for c in build_channels(load_settings())] == [], "no number to send from"
    monkeypatch.setenv("BEACON_TWILIO_FROM", NUMBER)
    assert [c.name for c in build_channels(load_settings())] == ["sms"]


def _rest_error(status: int, code: int) -> TwilioRestException:
    return TwilioRestException(status, "/2010-04-01/Accounts/AC/Messages.json", "refused", code)


@pytest.mark.parametrize(
    ("error", "becomes", "reason"),
    [
        (_rest_error(429, 20429), TransientSendError, "rate_limited"),
        (_rest_error(500, 20500), TransientSendError, "server_error"),
        (_rest_error(503, 20503), TransientSendError, "server_error"),
        (_rest_error(400, 21610), UnreachableError, "opted_out"),
        (_rest_error(400, 21211), UnreachableError, "invalid_number"),
        (_rest_error(400, 21614), UnreachableError, "invalid_number"),
        (
            aiohttp.ClientConnectorError(None, OSError(111, "Connection refused")),  # type: ignore[arg-type]
            TransientSendError,
            "network",
        ),
        (asyncio.TimeoutError(), DeliveryUncertain, None),
        (aiohttp.ServerDisconnectedError(), DeliveryUncertain, None),
        (_rest_error(400, 21408), TwilioRestException, None),
    ],
)
def test_twilio_errors_become_the_relays_errors(
    error: Exception, becomes: type[Exception], reason: str | None
) -> None:
    mapped = send_error(error)
    assert type(mapped) is becomes
    if reason is not None:
        assert mapped.reason == reason  # type: ignore[attr-defined]


# --- a crash between receipt and reply --------------------------------------------------------


@pytest.mark.e2e
def test_a_kill_9_between_receipt_and_reply_is_answered_exactly_once_after_restart(
    db_url: str, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    sms_env(monkeypatch, twilio)
    env, port, rasa_port = gateway_env()
    twilio.forward[PUBLIC] = f"http://127.0.0.1:{port}"
    params = twilio.incoming(PERSON, ENGLISH)
    rasa = FakeRasa(TOKEN)
    rasa.delay = 120.0  # the assistant is slow: the gateway dies before it answers
    with serve(rasa.app(), rasa_port), (tmp_path / "gateway.log").open("wb") as log:
        first = _start_gateway(env, port, log)
        try:
            assert twilio.post(SMS_URL, params).status_code == 200, "stored before answered"
            wait_until(lambda: rasa.calls, what="the assistant asked")
            assert [m.status for m in inbound()] == ["received"]
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        rasa.delay = 0.0
        # Twilio tries again while the gateway is down...
        with pytest.raises(httpx.ConnectError):
            twilio.post(SMS_URL, params)
        second = _start_gateway(env, port, log)
        try:
            # ... and once it is back: acknowledged, not processed again.
            assert twilio.post(SMS_URL, params).status_code == 200
            wait_until(lambda: len(twilio.texts_to(PERSON)) >= 2, timeout=60, what="the replies")
            wait_until(lambda: statuses() == ["delivered", "delivered"], what="delivered")
            time.sleep(3.0)  # a duplicate would have gone out by now (the relay sweeps every 2 s)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    assert twilio.texts_to(PERSON) == ECHO
    assert [m.status for m in inbound()] == ["processed"]
    logged = (tmp_path / "gateway.log").read_text()
    assert ENGLISH not in logged and PERSON.lstrip("+") not in logged, "no text or number in logs"


async def test_a_messaging_service_sends_in_place_of_a_number(twilio: FakeTwilio) -> None:
    """BEACON_TWILIO_FROM may be a Messaging Service (MG...), as Advanced Opt-Out needs."""
    service = "MG" + "0" * 31 + "5"
    settings = Settings(
        twilio_account_sid=TW_SID,
        twilio_auth_token=TW_TOKEN,
        twilio_from=service,
        twilio_api_base=twilio.base,
        twilio_status_url=STATUS_URL,
    )
    channel = SmsChannel(settings)
    await channel.start(None)  # type: ignore[arg-type]
    try:
        sid = await channel.send(PERSON, "Hello", [{"title": "Yes", "payload": "/affirm"}])
    finally:
        await channel.stop()
    (sent,) = twilio.messages
    assert sid == twilio.sids[0]
    assert sent["MessagingServiceSid"] == service and "From" not in sent
    assert sent["Body"] == "Hello", "no buttons by SMS"
