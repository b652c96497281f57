"""Safety in the conversation: quick erase, pause, deletion on request, the erase hint,
non-punishment and the impersonation caution.

The gateway and its database are real (SQLite, and PostgreSQL when
``BEACON_TEST_DATABASE_URL`` is set); Rasa is a stand-in that echoes, or
answers what a test scripts; Telegram is the Bot API stand-in.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.db import session_scope
from bot.db.models import Case, CaseEvent, CaseSummary, Contact, Message, Purge, utcnow
from bot.i18n import available_languages
from bot.i18n.nlg import render
from bot.safety.commands import COMMANDS_FILE, Command, command_in, fold, is_yes, table, word
from tests.standins import FakeRasa
from tests.test_console_api import add_responder, log_in
from tests.test_gateway import client, rasa  # noqa: F401  (fixtures)
from tests.test_telegram import (  # noqa: F401  (fixtures)
    CHAT,
    Gateway,
    contact_of,
    escalate,
    gateway,
    telegram,
    wait_until,
)

KINDS = ("erase", "pause", "delete", "confirm", "where")


def post(
    client: TestClient,  # noqa: F811
    sender: str,
    text: str,
    **extra: Any,
) -> dict[str, Any]:
    response = client.post("/webchat/messages", json={"sender": sender, "text": text, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def poll(
    client: TestClient,  # noqa: F811
    sender: str,
) -> list[str]:
    response = client.post("/webchat/poll", json={"sender": sender, "after": 0})
    assert response.status_code == 200
    return [m["text"] for m in response.json()["messages"]]


def webchat_contact(sender: str) -> Contact | None:
    return contact_of(sender, "webchat")


def case_of(contact: Contact) -> Case:
    with session_scope() as session:
        case = (
            session.execute(
                select(Case).where(Case.contact_id == contact.id).order_by(Case.id.desc())
            )
            .scalars()
            .first()
        )
        assert case is not None
        session.expunge(case)
        return case


def events_of(case_id: int) -> list[str]:
    with session_scope() as session:
        return list(
            session.execute(
                select(CaseEvent.action).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            ).scalars()
        )


# --- the words ---------------------------------------------------------------------------------


def test_every_language_has_every_kind_of_command_word_and_all_are_text() -> None:
    raw = yaml.safe_load(COMMANDS_FILE.read_text(encoding="utf-8"))
    assert set(raw) == set(available_languages())
    for language, kinds in raw.items():
        assert set(kinds) == set(KINDS), language
        for kind, words in kinds.items():
            assert words, (language, kind)
            # YAML reads yes/no/on/off as booleans: every word must stay a string.
            assert all(isinstance(w, str) for w in words), (language, kind, words)


def test_no_word_means_two_different_commands() -> None:
    seen: dict[str, str] = {}
    for kinds in table().values():
        for kind in ("erase", "pause", "delete"):
            for w in kinds[kind]:
                assert seen.setdefault(fold(w), kind) == kind, (
                    f"{w!r} is {seen[fold(w)]} and {kind}"
                )


@pytest.mark.parametrize("language", sorted(table()))
def test_each_languages_words_are_understood_alone_and_not_inside_a_sentence(
    language: str,
) -> None:
    kinds = table()[language]
    for w in kinds["erase"]:
        assert command_in(w) is Command.ERASE, w
        assert command_in(f"  {w.upper()}! ") is Command.ERASE, "case and punctuation do not matter"
    for w in kinds["pause"]:
        assert command_in(w) is Command.PAUSE, w
    for w in kinds["delete"]:
        assert command_in(w) is Command.DELETE, w
    for w in kinds["confirm"]:
        assert is_yes(w), w
    sentence = f"{kinds['erase'][0]} {kinds['pause'][0]} {kinds['delete'][0]}"
    assert command_in(sentence) is None, "a command is the whole message"


@pytest.mark.parametrize("language", sorted(table()))
def test_the_erase_hint_names_a_word_that_erases_in_the_persons_language(language: str) -> None:
    named = word(language, "erase").upper()
    for channel in ("telegram", "sms"):
        hint = render("utter_erase_hint", language, channel, {"erase": named})["text"]
        assert named in hint, (language, channel)
        assert command_in(named) is Command.ERASE


# --- quick erase and pause on the web chat -----------------------------------------------------


def test_erase_on_the_web_chat_clears_the_page_and_holds_replies_until_they_write_again(
    client: TestClient,  # noqa: F811
    rasa: FakeRasa,  # noqa: F811
) -> None:
    post(client, "w-erase", "they took my passport")
    contact = webchat_contact("w-erase")
    assert contact is not None
    escalate("w-erase", channel="webchat")
    add_responder("ana")
    ana = log_in(client, "ana")
    case_id = ana.take_next().json()["case"]["id"]
    calls = len(rasa.calls)

    answer = post(client, "w-erase", "ERASE")
    assert answer["messages"] == [{"id": None, "text": "", "buttons": [], "erase": True}]
    assert len(rasa.calls) == calls, "the assistant never reads a command"
    assert "erased_on_device" in events_of(case_id)

    # The responder writes: nothing reaches the page while the person is away.
    assert ana.post(f"cases/{case_id}/reply", {"text": "We are here."}).status_code == 200
    assert poll(client, "w-erase") == []
    shown = ana.case(case_id)
    assert shown["safety"]["paused_since"] is not None
    assert shown["safety"]["erased_at"] is not None

    # They write again: the reply waiting for them arrives.
    post(client, "w-erase", "hello again")
    assert poll(client, "w-erase") == ["We are here."]
    assert ana.case(case_id)["safety"]["paused_since"] is None


def test_busy_pauses_everything_without_an_answer(
    client: TestClient,  # noqa: F811
    rasa: FakeRasa,  # noqa: F811
) -> None:
    post(client, "w-busy", "they hit us")
    escalate("w-busy", channel="webchat")
    add_responder("ana")
    ana = log_in(client, "ana")
    case_id = ana.take_next().json()["case"]["id"]
    calls = len(rasa.calls)

    assert post(client, "w-busy", "busy")["messages"] == [], "no sound, no notification"
    assert post(client, "w-busy", "nanti", id="p2")["messages"] == []
    assert len(rasa.calls) == calls
    assert "paused" in events_of(case_id)
    ana.post(f"cases/{case_id}/reply", {"text": "Write when you can."})
    assert poll(client, "w-busy") == []
    post(client, "w-busy", "ok I can talk")
    assert poll(client, "w-busy") == ["Write when you can."]


def test_please_stop_writing_is_answered_once_then_nothing_more(
    client: TestClient,  # noqa: F811
    rasa: FakeRasa,  # noqa: F811
) -> None:
    stop = render("utter_stop", "en", "webchat", {})
    rasa.scripted["please stop writing to me"] = [
        {"text": stop["text"]},
        {"custom": stop["custom"]},
    ]
    answer = post(client, "w-stop", "please stop writing to me")
    assert [m["text"] for m in answer["messages"]] == [stop["text"]]
    contact = webchat_contact("w-stop")
    assert contact is not None and contact.paused_at is not None


# --- quick erase on Telegram -------------------------------------------------------------------


def test_erase_on_telegram_deletes_the_chat_on_the_phone_and_goes_quiet(gateway: Gateway) -> None:  # noqa: F811
    fake = gateway.telegram
    gateway.deliver(fake.text(CHAT, "they took my passport"))
    gateway.texts(at_least=2)
    gateway.deliver(fake.text(CHAT, "I am in Shwe Kokko"))
    gateway.texts(at_least=4)
    # A message from three days ago is beyond what Telegram lets a bot delete.
    oldest = fake.visible(CHAT)[0]
    fake.age(CHAT, oldest, 3 * 24 * 3600)
    with session_scope() as session:
        first = session.execute(select(Message).order_by(Message.id)).scalars().first()
        first.created_at = utcnow() - timedelta(days=3)
    case_id = escalate()
    sent_before = len(fake.messages)

    assert gateway.deliver(fake.text(CHAT, "hapus")).status_code == 200
    wait_until(lambda: fake.deletions, what="deleteMessages")
    assert fake.visible(CHAT) == [oldest], "every message of the last 48 hours is gone"
    asked = fake.deletions[0]["message_ids"]
    assert oldest not in asked, "nothing older than 48 hours is asked for"
    time.sleep(0.5)
    assert len(fake.messages) == sent_before, "no confirmation is sent: it would be seen"
    assert "erased_on_device" in events_of(case_id)

    # A responder's reply waits until the person writes again.
    add_responder("ana")
    ana = log_in(gateway.client, "ana")
    ana.take_next()
    ana.post(f"cases/{case_id}/reply", {"text": "We read you. Write when safe."})
    time.sleep(2.5)
    assert "We read you. Write when safe." not in fake.texts_to(CHAT)
    gateway.deliver(fake.text(CHAT, "ok now"))
    wait_until(lambda: "We read you. Write when safe." in fake.texts_to(CHAT), what="the reply")


# --- deletion on request -----------------------------------------------------------------------


def test_delete_my_data_asks_first_then_deletes_everything(
    client: TestClient,  # noqa: F811
    rasa: FakeRasa,  # noqa: F811
) -> None:
    post(client, "w-del", "my boss beats me")
    contact = webchat_contact("w-del")
    assert contact is not None
    case_id = case_of(contact).id

    asked = post(client, "w-del", "Hapus data saya")["messages"]
    assert len(asked) == 1
    question = render("utter_delete_confirm", "id", "webchat", {"yes": "YA"})
    assert asked[0]["text"] == question["text"], "asked in the person's language"
    assert "YA" in asked[0]["text"]
    assert [b["payload"] for b in asked[0]["buttons"]] == ["/confirm_delete", "/deny"]
    assert webchat_contact("w-del") is not None, "nothing is deleted before they confirm"

    done = post(client, "w-del", "ya")["messages"]
    assert [m["text"] for m in done] == [render("utter_data_deleted", "id", "webchat", {})["text"]]
    assert webchat_contact("w-del") is None
    with session_scope() as session:
        assert session.get(Case, case_id) is None
        assert session.execute(select(Message).where(Message.case_id == case_id)).first() is None
        purge = session.execute(select(Purge).where(Purge.case_id == case_id)).scalar_one()
        assert purge.reason == "deletion_request"
        assert session.execute(select(CaseSummary)).first() is None, "nothing on hold: no summary"


def test_a_deletion_question_not_confirmed_deletes_nothing(
    client: TestClient,  # noqa: F811
    rasa: FakeRasa,  # noqa: F811
) -> None:
    post(client, "w-keep", "hello")
    post(client, "w-keep", "delete my data")
    calls = len(rasa.calls)
    answer = post(client, "w-keep", "no wait, I need help")
    assert answer["messages"][0]["text"].startswith("read: "), "the conversation goes on"
    assert len(rasa.calls) == calls + 1
    post(client, "w-keep", "yes")
    assert webchat_contact("w-keep") is not None, "a later yes does not delete"


def test_a_case_on_hold_leaves_only_an_anonymised_summary(
    client: TestClient,  # noqa: F811
    rasa: FakeRasa,  # noqa: F811
) -> None:
    post(client, "w-hold", "they sold me to another company in Sihanoukville")
    case_id = escalate("w-hold", channel="webchat")
    with session_scope() as session:
        case = session.get(Case, case_id)
        case.on_hold = True
        case.location = "Sihanoukville, building 4"
        case.country = "KH"
    post(client, "w-hold", "delete my data")
    post(client, "w-hold", "/confirm_delete", payload="/confirm_delete")
    assert webchat_contact("w-hold") is None
    with session_scope() as session:
        assert session.get(Case, case_id) is None
        summary = session.execute(select(CaseSummary)).scalar_one()
        kept = {c.name: getattr(summary, c.name) for c in CaseSummary.__table__.columns}
    assert kept["case_id"] == case_id and kept["country"] == "KH"
    assert kept["urgency"] == "high" and kept["indicators"] == ["documents_retained"]
    flat = repr(kept)
    assert "Sihanoukville" not in flat and "sold" not in flat and "w-hold" not in flat


def test_on_telegram_the_confirmation_goes_out_before_the_data_is_deleted(
    gateway: Gateway,  # noqa: F811
) -> None:
    fake = gateway.telegram
    gateway.deliver(fake.text(CHAT, "help me"))
    gateway.texts(at_least=2)
    gateway.deliver(fake.text(CHAT, "delete my data"))
    gateway.texts(at_least=3)
    gateway.deliver(fake.press(CHAT, "/confirm_delete"))
    done = render("utter_data_deleted", "en", "telegram", {})["text"]
    wait_until(lambda: done in fake.texts_to(CHAT), what="the confirmation")
    wait_until(lambda: contact_of(CHAT) is None, what="the deletion")
    with session_scope() as session:
        assert session.execute(select(Message)).first() is None
        assert session.execute(select(Purge.rasa_sender)).scalars().first() is not None, (
            "the assistant's copy is cleared next (Rasa's tracker)"
        )


# --- what the bot says once --------------------------------------------------------------------


def test_the_erase_hint_comes_once_before_the_first_sensitive_question(
    client: TestClient,  # noqa: F811
    rasa: FakeRasa,  # noqa: F811
) -> None:
    question = render("utter_ask_safe_to_talk", "th", "webchat", {})
    rasa.scripted["ช่วยด้วย"] = [
        {"text": "ok"},
        {"text": question["text"], "buttons": question["buttons"]},
        {"custom": question["custom"]},
    ]
    first = [m["text"] for m in post(client, "w-hint", "ช่วยด้วย")["messages"]]
    hint = render("utter_erase_hint", "th", "webchat", {"erase": "ลบ"})["text"]
    assert first == ["ok", hint, question["text"]]
    again = [m["text"] for m in post(client, "w-hint", "ช่วยด้วย", id="again")["messages"]]
    assert again == ["ok", question["text"]], "told once"


def test_a_worker_forced_to_scam_hears_they_are_not_in_trouble_while_they_wait(
    client: TestClient,  # noqa: F811
) -> None:
    post(client, "w-scam", "hello")
    case_id = escalate("w-scam", channel="webchat")
    told = render("utter_not_in_trouble", "en", "webchat", {})["text"]
    first = post(client, "w-scam", "they force me to scam people online every day or they beat me")
    assert told in [m["text"] for m in first["messages"]]
    again = post(client, "w-scam", "they force me to scam people, I hate it", id="2")
    assert told not in [m["text"] for m in again["messages"]], "said once"
    with session_scope() as session:
        assert session.get(Case, case_id).reassured_at is not None


def test_someone_asking_where_a_person_is_puts_a_caution_on_the_case(
    client: TestClient,  # noqa: F811
) -> None:
    post(client, "w-where", "hello")
    case_id = escalate("w-where", channel="webchat", reporter="other")
    post(client, "w-where", "Where is Somchai? He escaped from your compound, I am his cousin")
    add_responder("ana")
    ana = log_in(client, "ana")
    assert ana.case(case_id)["safety"]["impersonation_caution"] is True


# --- discretion ----------------------------------------------------------------------------------

#: Words that must never appear in a reply the person did not ask for: trafficking, police, rescue.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "en": ("traffick", "police", "rescue"),
    "id": ("perdagangan orang", "polisi", "penyelamat"),
    "ms": ("pemerdagangan", "polis", "penyelamat"),
    "th": ("ค้ามนุษย์", "ตำรวจ", "กู้ภัย"),
    "my": ("လူကုန်ကူး", "ကယ်ဆယ်"),
    "km": ("ជួញដូរមនុស្ស", "ប៉ូលីស", "ជួយសង្គ្រោះ"),
    "lo": ("ຄ້າມະນຸດ", "ຕຳຫຼວດ", "ກູ້ໄພ"),
    "vi": ("buôn người", "công an", "cảnh sát", "giải cứu"),
    "tl": ("trafficking", "pulis", "rescue", "sagipin"),
    "zh": ("拐卖", "贩卖人口", "人口贩运", "警察", "营救", "解救", "救援"),
    "bn": ("পাচার", "পুলিশ", "উদ্ধার"),
    "tr": ("insan ticareti", "polis", "kurtarma"),
    "pt": ("tráfico", "polícia", "policia", "resgat"),
    "ti": ("ፖሊስ",),
}
#: Every reply a person's first messages can get, before they said anything of the kind.
FIRST_REPLIES = (
    "utter_greet",
    "utter_what_is_this",
    "utter_default",
    "utter_out_of_scope",
    "utter_ok",
    "utter_noted",
    "utter_welcome",
    "utter_goodbye",
    "utter_stop",
    "utter_erase",
    "utter_erase_hint",
    "utter_language_menu",
    "utter_language_changed",
    "utter_language_not_served",
    "utter_ask_safe_to_talk",
    "utter_ask_location",
    "utter_ask_hurt",
    "utter_ask_passport_held",
    "utter_handoff",
    "utter_handoff_critical",
    "utter_handoff_unsafe",
    "utter_handoff_family",
    "utter_handoff_update",
    "utter_holding",
    "utter_attachment_received",
    "utter_private_only",
    "utter_sms_help",
    "utter_delete_confirm",
    "utter_data_deleted",
    "utter_not_in_trouble",
)


@pytest.mark.parametrize("language", sorted(FORBIDDEN))
def test_no_reply_names_trafficking_police_or_rescue(language: str) -> None:
    values = {"erase": "ERASE", "yes": "YES", "stop": "STOP", "start": "START"}
    for name in FIRST_REPLIES:
        for channel in ("webchat", "telegram", "sms"):
            shown = render(name, language, channel, values)
            text = " ".join([shown["text"], *(b["title"] for b in shown["buttons"])]).casefold()
            for term in FORBIDDEN[language]:
                assert term.casefold() not in text, (language, name, channel, term)


def test_the_web_chat_shows_the_cover_name(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.app import create_app
    from bot.settings import load_settings

    monkeypatch.setenv("BEACON_COVER_NAME", "Mekong Travel Desk")
    with TestClient(create_app(load_settings())) as cover:
        page = cover.get("/chat?lang=th").text
    assert "<title>Mekong Travel Desk</title>" in page
    assert "Beacon" not in page.split("<body", 1)[0]


# --- SMS -----------------------------------------------------------------------------------------


@pytest.fixture
def sms(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from tests.standins import FakeTwilio, free_port, serve
    from tests.test_sms import NUMBER, TW_SID, TW_TOKEN, running

    fake = FakeTwilio(TW_SID, TW_TOKEN, NUMBER)
    port = free_port()
    with serve(fake.app(), port):
        fake.base = f"http://127.0.0.1:{port}"
        with running(fake, monkeypatch) as started:
            yield started


def test_erase_by_sms_says_how_to_delete_the_thread_then_holds_replies(sms: Any) -> None:
    from tests.test_sms import PERSON, responder_reply

    sms.text("Saya ditahan di Myawaddy, paspor diambil")
    sms.texts(at_least=2)
    _, case_id = responder_reply(sms, "Kami di sini.")
    sms.texts(at_least=3)
    sms.text("HAPUS")
    how = render("utter_erase", "id", "sms", {})["text"]
    assert sms.texts(at_least=4)[-1] == how, "one answer, in their language: how to hide it"
    assert "erased_on_device" in events_of(case_id)
    with session_scope() as session:
        case = session.get(Case, case_id)
        claimed_by = case.claimed_by
    assert claimed_by is not None
    ana = log_in(sms.client, "ana")  # type: ignore[arg-type]
    ana.post(f"cases/{case_id}/reply", {"text": "Tulis lagi kalau aman."})
    time.sleep(2.5)
    assert "Tulis lagi kalau aman." not in sms.twilio.texts_to(PERSON)
    sms.text("sudah aman")
    wait_until(lambda: "Tulis lagi kalau aman." in sms.twilio.texts_to(PERSON), what="the reply")


def test_delete_my_data_by_sms_is_confirmed_with_the_languages_yes(sms: Any) -> None:
    from tests.test_sms import PERSON

    sms.text("Tolong, saya ditipu kerja di Kamboja")
    sms.texts(at_least=2)
    sms.text("hapus data saya")
    question = sms.texts(at_least=3)[-1]
    assert question == render("utter_delete_confirm", "id", "sms", {"yes": "YA"})["text"]
    sms.text("Ya")
    done = render("utter_data_deleted", "id", "sms", {})["text"]
    wait_until(lambda: done in sms.twilio.texts_to(PERSON), what="the confirmation")
    wait_until(lambda: contact_of(PERSON, "sms") is None, what="the deletion")


def test_beacon_never_writes_first_only_a_responder_on_an_active_case(
    gateway: Gateway,  # noqa: F811
) -> None:
    fake = gateway.telegram
    gateway.deliver(fake.text(CHAT, "they keep us locked in the building"))
    answered = len(gateway.texts(at_least=2))
    case_id = escalate()
    add_responder("ana")
    ana = log_in(gateway.client, "ana")
    assert ana.take_next().json()["case"]["id"] == case_id
    assert ana.post(f"cases/{case_id}/release").status_code == 200
    assert ana.take_next().status_code == 200
    assert ana.post(f"cases/{case_id}/notes", {"text": "called the office"}).status_code == 200
    assert ana.post(f"cases/{case_id}/resolve").status_code == 200
    time.sleep(2.5)
    assert len(fake.texts_to(CHAT)) == answered, "claiming, releasing, noting, resolving: silent"
    late = ana.post(f"cases/{case_id}/reply", {"text": "Are you still there?"})
    assert late.status_code in (403, 409), "no message on a case that is not active"
    time.sleep(0.5)
    assert "Are you still there?" not in fake.texts_to(CHAT)
