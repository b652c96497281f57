"""The gateway's web chat channel, NLG endpoint, health and metrics.

Rasa and the action server are stand-ins on 127.0.0.1 that speak Rasa's REST
channel and status API; the gateway and its database are real.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.app import create_app
from bot.db import session_scope
from bot.db.models import Message
from bot.handoff import queue
from bot.settings import load_settings
from tests.conftest import _reset_settings
from tests.standins import FakeRasa, fake_actions_app, free_port, serve

TOKEN = "test-internal-token"


@pytest.fixture
def rasa() -> FakeRasa:
    return FakeRasa(TOKEN)


@pytest.fixture
def client(db_url: str, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    rasa_port, actions_port = free_port(), free_port()
    monkeypatch.setenv("BEACON_RASA_PORT", str(rasa_port))
    monkeypatch.setenv("BEACON_ACTIONS_PORT", str(actions_port))
    with (
        serve(rasa.app(), rasa_port),
        serve(fake_actions_app(), actions_port),
        TestClient(create_app(load_settings())) as test_client,
    ):
        yield test_client


def post(client: TestClient, body: object) -> tuple[int, dict]:
    response = client.post("/webchat/messages", json=body)
    return response.status_code, response.json()


def test_a_message_gets_the_bots_replies_with_buttons(client: TestClient, rasa: FakeRasa) -> None:
    status, body = post(client, {"sender": "w-1", "text": "hello"})
    assert status == 200
    assert {k: v for k, v in body["messages"][0].items() if k != "id"} == {
        "text": "read: hello",
        "buttons": [],
    }
    assert isinstance(body["messages"][0]["id"], int)
    assert body["messages"][1]["buttons"] == [{"title": "Yes", "payload": "/affirm"}]
    [call] = rasa.calls
    assert call["metadata"]["channel"] == "webchat"
    assert call["metadata"]["language"] == "en"
    assert call["sender"] != "w-1", "Rasa must see a pseudonymous id, not the channel address"


def test_the_language_goes_to_rasa_in_metadata(client: TestClient, rasa: FakeRasa) -> None:
    post(client, {"sender": "w-th", "text": "สวัสดีค่ะ"})
    post(client, {"sender": "w-id", "text": "tolong", "language": "id-ID"})
    assert [c["metadata"]["language"] for c in rasa.calls] == ["th", "id"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"text": "hi"}', "'sender' is required"),
        (b'{"sender": "a"}', "'text' is required"),
        (b'{"sender": "a", "text": "   "}', "empty"),
        (b'{"sender": "a b c", "text": "hi"}', "'sender' must be"),
        (b'{"sender": "a", "text": "hi", "id": {"x": 1}}', "'id' must be"),
        (('{"sender": "a", "text": "' + "x" * 4001 + '"}').encode(), "longer than 4000"),
    ],
)
def test_malformed_requests_get_400_with_a_clear_error(
    client: TestClient, rasa: FakeRasa, body: bytes, error: str
) -> None:
    response = client.post(
        "/webchat/messages", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert rasa.calls == []


def test_a_text_of_exactly_4000_characters_is_accepted(client: TestClient) -> None:
    status, _ = post(client, {"sender": "long", "text": "x" * 4000})
    assert status == 200


def test_a_redelivered_message_is_answered_from_storage_not_handled_twice(
    client: TestClient, rasa: FakeRasa
) -> None:
    body = {"sender": "w-2", "text": "they took my passport", "id": "msg-1"}
    first = post(client, body)
    second = post(client, body)
    assert first == second
    assert len(rasa.calls) == 1


def test_the_same_message_delivered_twice_at_once_is_handled_once(
    client: TestClient, rasa: FakeRasa
) -> None:
    rasa.delay = 0.5
    body = {"sender": "w-twice", "text": "help", "id": "same-1"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: post(client, body), range(2)))
    assert results[0] == results[1]
    assert results[0][0] == 200
    assert len(rasa.calls) == 1


def test_a_message_rasa_could_not_answer_is_kept_and_answered_on_retry(
    client: TestClient, rasa: FakeRasa
) -> None:
    rasa.fail = True
    status, body = post(client, {"sender": "w-3", "text": "help me", "id": "m-9"})
    assert status == 503
    assert "saved" in body["error"]
    with session_scope() as session:
        [stored] = session.execute(select(Message)).scalars().all()
        assert stored.body == "help me" and stored.status == "received"
    rasa.fail = False
    status, body = post(client, {"sender": "w-3", "text": "help me", "id": "m-9"})
    assert status == 200 and body["messages"][0]["text"] == "read: help me"


def test_a_leading_slash_is_never_an_intent_command(client: TestClient, rasa: FakeRasa) -> None:
    post(client, {"sender": "w-4", "text": "/restart"})
    post(client, {"sender": "w-4", "text": "Yes", "payload": "/affirm"})
    post(client, {"sender": "w-4", "text": "x", "payload": "/restart"})
    assert [c["message"] for c in rasa.calls] == ["restart", "/affirm", "x"]


def test_the_transcript_is_stored_with_replies(client: TestClient) -> None:
    post(client, {"sender": "w-5", "text": "hello there"})
    with session_scope() as session:
        messages = session.execute(select(Message).order_by(Message.id)).scalars().all()
    assert [(m.direction, m.body) for m in messages] == [
        ("in", "hello there"),
        ("out", "read: hello there"),
        ("out", "Is it safe?"),
    ]


def nlg_request(response: str, language: str | None) -> dict:
    return {
        "response": response,
        "arguments": {},
        "tracker": {
            "slots": {"language": language},
            "latest_message": {"metadata": {"channel": "webchat"}},
        },
        "channel": {"name": "rest"},
    }


def test_nlg_renders_responses_in_the_conversations_language(client: TestClient) -> None:
    th = client.post(f"/nlg?token={TOKEN}", json=nlg_request("utter_ask_safe_to_talk", "th")).json()
    assert th["text"] == "ตอนนี้คุณคุยได้อย่างปลอดภัยไหมคะ"
    assert [b["title"] for b in th["buttons"]] == ["ใช่", "ไม่"]
    assert [b["payload"] for b in th["buttons"]] == ["/affirm", "/deny"]
    en = client.post(f"/nlg?token={TOKEN}", json=nlg_request("utter_greet", None)).json()
    assert en["text"].startswith("Hello")


def test_nlg_refuses_a_request_without_the_internal_token(client: TestClient) -> None:
    assert client.post("/nlg", json=nlg_request("utter_greet", "en")).status_code == 403
    assert client.post("/nlg?token=wrong", json=nlg_request("utter_greet", "en")).status_code == 403


def test_nlg_answers_malformed_requests_with_400(client: TestClient) -> None:
    assert client.post(f"/nlg?token={TOKEN}", content=b"nope").status_code == 400
    assert (
        client.post(f"/nlg?token={TOKEN}", json=nlg_request("utter_nothing", "en")).status_code
        == 400
    )


def test_health_is_ready_only_when_rasa_and_actions_are(client: TestClient, rasa: FakeRasa) -> None:
    ready = client.get("/healthz")
    assert ready.status_code == 200 and ready.json()["checks"]["rasa"] is True
    rasa.token = "another"  # Rasa now refuses our token: not ready
    down = client.get("/healthz")
    assert down.status_code == 503 and down.json()["checks"]["rasa"] is False


def test_metrics_count_messages(client: TestClient) -> None:
    post(client, {"sender": "w-6", "text": "hello"})
    text = client.get("/metrics").text
    assert 'beacon_messages_total{channel="webchat",direction="in"}' in text


def test_the_chat_page_speaks_the_visitors_language_and_is_locked_down(client: TestClient) -> None:
    page = client.get("/chat", headers={"accept-language": "th-TH,th;q=0.9,en;q=0.5"})
    assert page.status_code == 200
    assert '<html lang="th">' in page.text
    assert "ออกทันที" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    indonesian = client.get("/chat?lang=id")
    assert "Kirim" in indonesian.text
    assert client.get("/static/chat.js").status_code == 200


def test_an_oversized_body_is_refused_before_it_is_read(client: TestClient, rasa: FakeRasa) -> None:
    big = b'{"sender": "a", "text": "' + b"x" * 70_000 + b'"}'
    response = client.post(
        "/webchat/messages", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "too large" in response.json()["error"]
    chunked = client.post("/webchat/messages", content=iter([big[:40_000], big[40_000:]]))
    assert chunked.status_code == 400
    assert rasa.calls == []


def test_health_is_503_while_the_action_server_is_down(
    db_url: str, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    rasa_port = free_port()
    monkeypatch.setenv("BEACON_RASA_PORT", str(rasa_port))
    monkeypatch.setenv("BEACON_ACTIONS_PORT", str(free_port()))  # nothing listens there
    with serve(rasa.app(), rasa_port), TestClient(create_app(load_settings())) as test_client:
        response = test_client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "gateway": True,
        "database": True,
        "rasa": True,
        "actions": False,
    }


def test_zawgyi_burmese_reaches_rasa_as_unicode(client: TestClient, rasa: FakeRasa) -> None:
    zawgyi = "ကြၽန္ေတာ့်ပတ္စ္ပို႔ကို သူတို႔ယူထားတယ္"
    post(client, {"sender": "w-my", "text": zawgyi})
    [call] = rasa.calls
    assert call["message"] == "ကျွန်တော့်ပတ်စ်ပို့ကို သူတို့ယူထားတယ်"
    assert call["metadata"]["language"] == "my"


def test_the_gateway_rescreens_a_message_on_a_queued_case(client: TestClient) -> None:
    from bot.db.models import Case
    from bot.handoff import queue

    post(client, {"sender": "w-q", "text": "they took my passport"})
    with session_scope() as session:
        [message] = (
            session.execute(select(Message).where(Message.direction == "in")).scalars().all()
        )
        case = session.get(Case, message.case_id)
        queue.escalate(
            session,
            case.contact.public_id,
            urgency="high",
            indicators=["documents_retained"],
            language="en",
            reporter="self",
        )
    post(client, {"sender": "w-q", "text": "now they beat me and I am bleeding"})
    with session_scope() as session:
        case = session.get(Case, message.case_id)
        assert case.urgency == "critical"
        assert "medical_emergency" in case.indicators


def test_a_database_outage_is_a_503_not_a_crash(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from bot.handoff import queue

    def down(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(queue, "record_inbound", down)
    response = client.post("/webchat/messages", json={"sender": "w-db", "text": "help"})
    assert response.status_code == 503
    assert "again" in response.json()["error"]


def test_an_unknown_payload_is_neither_obeyed_nor_stored(
    client: TestClient, rasa: FakeRasa
) -> None:
    post(client, {"sender": "w-pl", "text": "hi", "payload": "my secret words"})
    assert rasa.calls[0]["message"] == "hi"
    with session_scope() as session:
        [stored] = session.execute(select(Message).where(Message.direction == "in")).scalars().all()
        assert stored.payload is None


def _queue_case_of(sender: str, **kwargs: object) -> int:
    from bot.handoff import queue

    with session_scope() as session:
        contact = queue.get_or_create_contact(session, "webchat", sender)
        case = queue.escalate(
            session,
            contact.public_id,
            urgency="high",
            indicators=["violence"],
            language="th",
            reporter="self",
            channel="webchat",
            **kwargs,  # type: ignore[arg-type]
        )
        return int(case.id)


def test_while_a_case_waits_the_bot_is_silent_with_one_holding_message(
    client: TestClient, rasa: FakeRasa
) -> None:
    from bot.db.models import Case
    from bot.i18n.nlg import render

    post(client, {"sender": "w-hold", "text": "สวัสดีค่ะ"})
    case_id = _queue_case_of("w-hold")
    with session_scope() as session:
        # The handoff reply was long ago: the next message gets a holding message.
        case = session.get(Case, case_id)
        case.holding_sent_at = case.holding_sent_at.replace(year=2020)
    calls = len(rasa.calls)
    _, first = post(client, {"sender": "w-hold", "text": "พวกเขาตีฉันอีกแล้ว", "id": "h1"})
    _, second = post(client, {"sender": "w-hold", "text": "/emergency", "id": "h2"})
    _, third = post(client, {"sender": "w-hold", "text": "ช่วยด้วย", "id": "h3"})
    assert len(rasa.calls) == calls, "no message of a waiting case reaches Rasa"
    holding = render("utter_holding", "th", "webchat", {})["text"]
    assert [m["text"] for m in first["messages"]] == [holding]
    assert second["messages"] == [] and third["messages"] == []
    # A redelivery of the first gets the same answer, and is not stored twice.
    _, again = post(client, {"sender": "w-hold", "text": "พวกเขาตีฉันอีกแล้ว", "id": "h1"})
    assert again == first
    with session_scope() as session:
        bodies = [
            m.body
            for m in session.execute(
                select(Message).where(Message.case_id == case_id, Message.direction == "in")
            ).scalars()
        ]
    assert bodies[-3:] == ["พวกเขาตีฉันอีกแล้ว", "/emergency", "ช่วยด้วย"], (
        "the transcript keeps every word, a leading / included, as text"
    )


def test_holding_messages_repeat_at_most_once_per_interval(
    client: TestClient, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from bot.db.models import Case

    post(client, {"sender": "w-int", "text": "hello"})
    case_id = _queue_case_of("w-int")
    replies = []
    for n in range(4):
        with session_scope() as session:
            case = session.get(Case, case_id)
            if n == 2:  # 31 minutes pass (default interval: 30)
                case.holding_sent_at -= timedelta(minutes=31)
        _, body = post(client, {"sender": "w-int", "text": f"still here {n}"})
        replies.append(len(body["messages"]))
    assert replies == [0, 0, 1, 0]


def test_the_bot_keeps_asking_its_safety_questions_while_the_case_waits(
    client: TestClient, rasa: FakeRasa
) -> None:
    post(client, {"sender": "w-form", "text": "I need help"})
    _queue_case_of("w-form", bot_form_open=True)
    calls = len(rasa.calls)
    _, body = post(client, {"sender": "w-form", "text": "Poipet"})
    assert len(rasa.calls) == calls + 1
    assert body["messages"][0]["text"] == "read: Poipet"


def test_a_message_on_a_waiting_case_can_raise_its_urgency(
    client: TestClient, rasa: FakeRasa
) -> None:
    from bot.db.models import Case

    post(client, {"sender": "w-up", "text": "hello"})
    case_id = _queue_case_of("w-up")
    post(client, {"sender": "w-up", "text": "they will kill me tonight, I am bleeding a lot"})
    with session_scope() as session:
        assert session.get(Case, case_id).urgency == "critical"


def test_a_first_message_in_an_unclear_language_also_gets_the_language_menu(
    client: TestClient, rasa: FakeRasa
) -> None:
    _, unclear = post(client, {"sender": "w-ok", "text": "ok"})
    menu = unclear["messages"][-1]
    payloads = [b["payload"] for b in menu["buttons"]]
    assert '/choose_language{"language":"th"}' in payloads
    assert "ไทย" in [b["title"] for b in menu["buttons"]]
    # Pressing a language is obeyed like any button of Beacon's.
    post(
        client,
        {"sender": "w-ok", "text": "ไทย", "payload": '/choose_language{"language":"th"}'},
    )
    assert rasa.calls[-1]["message"] == '/choose_language{"language":"th"}'
    # A clear first message, and any later message, get no menu.
    _, clear = post(client, {"sender": "w-hello", "text": "hello, I need some advice"})
    _, later = post(client, {"sender": "w-hello", "text": "ok"})
    for body in (clear, later):
        assert all(
            not b["payload"].startswith("/choose_language")
            for m in body["messages"]
            for b in m["buttons"]
        )


def test_a_chosen_language_goes_to_rasa_and_wins_over_detection(
    client: TestClient, rasa: FakeRasa
) -> None:
    post(client, {"sender": "w-choose", "text": "hello there"})
    sender = rasa.calls[-1]["sender"]
    with session_scope() as session:
        queue.choose_language(session, sender, "th", "webchat")
    post(client, {"sender": "w-choose", "text": "I am in Cambodia and cannot leave the company"})
    metadata = rasa.calls[-1]["metadata"]
    assert (metadata["language"], metadata["language_chosen"]) == ("th", "th")


def test_a_flood_is_kept_but_not_answered_and_an_urgent_message_still_is(
    client: TestClient, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_RATE_LIMIT_PER_MINUTE", "3")
    _reset_settings()
    answered = [post(client, {"sender": "w-flood", "text": f"hello number {n}"}) for n in range(5)]
    assert [len(body["messages"]) for _, body in answered] == [2, 2, 2, 0, 0]
    assert len(rasa.calls) == 3
    _, urgent = post(client, {"sender": "w-flood", "text": "they beat me and I am bleeding"})
    assert urgent["messages"], "an urgent message is answered whatever the rate"
    assert len(rasa.calls) == 4
    with session_scope() as session:
        stored = (
            session.execute(select(Message).where(Message.direction == "in").order_by(Message.id))
            .scalars()
            .all()
        )
        assert len(stored) == 6 and {m.status for m in stored} == {"processed"}
        assert len({m.case_id for m in stored}) == 1, "a flood makes one case, not six"
    # Another person is not limited by this one.
    assert len(post(client, {"sender": "w-other", "text": "hello there"})[1]["messages"]) == 2
