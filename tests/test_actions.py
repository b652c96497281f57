"""Custom actions, run on trackers built in code."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import ActionHandoff
from actions.safety import ValidateSafetyForm
from actions.screening import ActionScreen
from bot.db import session_scope
from bot.handoff import queue
from bot.settings import ROOT

DOMAIN: dict[str, Any] = yaml.safe_load((ROOT / "domain.yml").read_text())


def tracker(
    text: str,
    intent: str,
    slots: dict[str, Any] | None = None,
    sender: str = "s-1",
    metadata: dict[str, Any] | None = None,
    active_loop: str | None = None,
    events: list[dict[str, Any]] | None = None,
) -> Tracker:
    message = {
        "text": text,
        "intent": {"name": intent},
        "metadata": metadata or {"channel": "webchat"},
    }
    return Tracker(
        sender,
        dict(slots or {}),
        message,
        [{"event": "user", "text": text, "parse_data": message}, *(events or [])],
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def responses(dispatcher: CollectingDispatcher) -> list[str]:
    return [m["response"] for m in dispatcher.messages]


async def test_screen_escalates_the_urgent_message(db_url: str) -> None:
    events = await ActionScreen().run(
        CollectingDispatcher(),
        tracker("help they took my passport and beat me, I am bleeding", "emergency"),
        DOMAIN,
    )
    slots = slots_of(events)
    assert slots["urgency"] == "critical"
    assert set(slots["indicators"]) == {"documents_retained", "violence", "medical_emergency"}
    assert slots["escalate"] is True
    assert slots["language"] == "en"


async def test_screen_leaves_a_greeting_with_the_bot(db_url: str) -> None:
    slots = slots_of(
        await ActionScreen().run(CollectingDispatcher(), tracker("halo kak", "greet"), DOMAIN)
    )
    assert slots["escalate"] is False
    assert slots["urgency"] == "low"
    assert slots["language"] == "id"


async def test_a_button_press_does_not_change_the_language(db_url: str) -> None:
    slots = slots_of(
        await ActionScreen().run(
            CollectingDispatcher(), tracker("/affirm", "affirm", {"language": "th"}), DOMAIN
        )
    )
    assert slots["language"] == "th"


async def test_asking_for_a_person_escalates_once(db_url: str) -> None:
    first = slots_of(
        await ActionScreen().run(
            CollectingDispatcher(), tracker("real person please", "ask_human"), DOMAIN
        )
    )
    assert first["escalate"] is True and first["urgency"] == "medium"
    again = slots_of(
        await ActionScreen().run(
            CollectingDispatcher(),
            tracker(
                "real person please",
                "ask_human",
                {"handoff_urgency": "medium", "urgency": "medium"},
            ),
            DOMAIN,
        )
    )
    assert again["escalate"] is False


async def test_a_higher_urgency_re_escalates_an_open_case(db_url: str) -> None:
    slots = slots_of(
        await ActionScreen().run(
            CollectingDispatcher(),
            tracker(
                "they beat me, I am bleeding",
                "emergency",
                {"handoff_urgency": "high", "urgency": "high"},
            ),
            DOMAIN,
        )
    )
    assert slots["escalate"] is True and slots["urgency"] == "critical"


async def test_handoff_opens_a_critical_case_with_a_calm_reply(db_url: str) -> None:
    with session_scope() as session:
        found = queue.record_inbound(
            session, channel="webchat", address="w1", text="...", external_id=None
        )
        sender = found.contact.public_id
    dispatcher = CollectingDispatcher()
    slots = {
        "urgency": "critical",
        "indicators": ["violence", "medical_emergency"],
        "language": "th",
        "reporter": "self",
    }
    events = await ActionHandoff().run(
        dispatcher, tracker("...", "emergency", slots, sender=sender), DOMAIN
    )
    assert responses(dispatcher) == ["utter_handoff_critical"]
    assert slots_of(events)["ask_safety"] is False
    with session_scope() as session:
        [case] = queue.list_open(session)
    assert (
        case["urgency"] == "critical" and case["language"] == "th" and case["channel"] == "webchat"
    )
    assert case["indicators"] == ["violence", "medical_emergency"]


async def test_handoff_for_a_relative_warns_about_money_and_asks_nothing(db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(
        dispatcher,
        tracker("my son", "report_other", {"reporter": "other", "urgency": "medium"}),
        DOMAIN,
    )
    assert responses(dispatcher) == ["utter_handoff_family"]
    assert slots_of(events)["ask_safety"] is False


async def test_a_worker_in_the_queue_gets_the_safety_questions(db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(
        dispatcher,
        tracker("they keep my passport", "seek_help", {"reporter": "self", "urgency": "high"}),
        DOMAIN,
    )
    assert responses(dispatcher) == ["utter_handoff"]
    assert slots_of(events)["ask_safety"] is True


async def test_an_unsafe_moment_gets_the_short_reply(db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(
        dispatcher,
        tracker("no", "deny", {"reporter": "self", "urgency": "medium", "safe_to_talk": "no"}),
        DOMAIN,
    )
    assert responses(dispatcher) == ["utter_handoff_unsafe"]


async def test_handing_off_during_the_form_ends_the_form(db_url: str) -> None:
    events = await ActionHandoff().run(
        CollectingDispatcher(),
        tracker("real person", "ask_human", {"urgency": "medium"}, active_loop="safety_form"),
        DOMAIN,
    )
    assert {"event": "active_loop", "name": None} in [
        {"event": e["event"], "name": e.get("name")} for e in events if e["event"] == "active_loop"
    ]


@pytest.mark.parametrize(
    ("answer", "indicator", "urgency"),
    [("hurt", "medical_emergency", "critical"), ("passport_held", "documents_retained", "high")],
)
async def test_a_yes_to_a_safety_question_is_an_indicator(
    db_url: str, answer: str, indicator: str, urgency: str
) -> None:
    slots = {
        "indicators": ["deception"],
        "urgency": "medium",
        answer: "yes",
        "requested_slot": answer,
        "safe_to_talk": "yes",
        "location": "KK Park",
    }
    events = await ValidateSafetyForm().run(
        CollectingDispatcher(),
        tracker(
            "yes",
            "affirm",
            slots,
            active_loop="safety_form",
            events=[{"event": "slot", "name": answer, "value": "yes"}],
        ),
        DOMAIN,
    )
    result = slots_of(events)
    assert indicator in result["indicators"] and "deception" in result["indicators"]
    assert result["urgency"] == urgency


async def test_the_safety_questions_stop_when_it_is_not_safe(db_url: str) -> None:
    form = ValidateSafetyForm()
    t = tracker("no", "deny", {"safe_to_talk": "no"}, active_loop="safety_form")
    assert (
        await form.required_slots(form.domain_slots(DOMAIN), CollectingDispatcher(), t, DOMAIN)
        == []
    )


async def test_a_relative_reporting_a_critical_case_gets_the_family_reply(db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(
        dispatcher,
        tracker(
            "my son is 16 and they beat him",
            "report_other",
            {"reporter": "other", "urgency": "critical"},
        ),
        DOMAIN,
    )
    assert responses(dispatcher) == ["utter_handoff_family"]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("they force me to scam people online, if I refuse they beat me", "en"),
        ("mereka paksa saya menipu orang lewat online, kalau tidak dipukul", "id"),
    ],
)
async def test_a_worker_forced_to_scam_hears_once_that_they_are_not_in_trouble(
    db_url: str, text: str, language: str
) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionScreen().run(dispatcher, tracker(text, "seek_help"), DOMAIN)
    assert "forced_criminality" in slots_of(events)["indicators"]
    assert responses(dispatcher) == ["utter_not_in_trouble"]
    assert slots_of(events)["reassured"] is True
    # Said once in the conversation.
    again = CollectingDispatcher()
    await ActionScreen().run(again, tracker(text, "seek_help", {"reassured": True}), DOMAIN)
    assert responses(again) == []


async def test_a_relative_telling_of_forced_scamming_is_not_reassured_as_an_offender(
    db_url: str,
) -> None:
    dispatcher = CollectingDispatcher()
    text = "my son is forced to scam people in a compound in Cambodia"
    events = await ActionScreen().run(dispatcher, tracker(text, "report_other"), DOMAIN)
    assert "forced_criminality" in slots_of(events)["indicators"]
    assert responses(dispatcher) == []


@pytest.mark.parametrize(
    ("text", "intent", "slot", "answer"),
    [
        ("nggak, sy gk apa2", "stop", "hurt", "no"),
        ("ไม่เจ็บค่ะ", "inform", "hurt", "no"),
        ("iya dipegang bos", "inform", "passport_held", "yes"),
        ("জি হ্যাঁ ওদের কাছে", "inform", "passport_held", "yes"),
        ("អត់ទេ ខ្ញុំមិនរបួសទេ", "goodbye", "hurt", "no"),
        ("không, giờ chưa nói được", "stop", "safe_to_talk", "no"),
    ],
)
async def test_a_short_answer_the_assistant_misread_is_read_by_its_first_word(
    db_url: str, text: str, intent: str, slot: str, answer: str
) -> None:
    before = {"safe_to_talk": "yes", "location": "KK Park", "hurt": "no"}
    slots = {k: v for k, v in before.items() if k != slot} | {"requested_slot": slot}
    events = await ValidateSafetyForm().run(
        CollectingDispatcher(), tracker(text, intent, slots, active_loop="safety_form"), DOMAIN
    )
    assert slots_of(events)[slot] == answer


async def test_someone_being_nearby_is_never_read_as_safe_to_talk(db_url: str) -> None:
    for text in ("有人在旁边", "มีคนอยู่ใกล้ๆ", "var biri yanımda", "someone is here"):
        events = await ValidateSafetyForm().run(
            CollectingDispatcher(),
            tracker(text, "inform", {"requested_slot": "safe_to_talk"}, active_loop="safety_form"),
            DOMAIN,
        )
        assert slots_of(events).get("safe_to_talk") != "yes", text
