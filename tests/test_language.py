"""Choosing the conversation's language: asked for, kept, and answered in it."""

from __future__ import annotations

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.language import ActionSetLanguage, requested_language
from actions.screening import ActionScreen
from bot.conversation import button
from bot.db import session_scope
from bot.db.models import Contact
from bot.handoff import queue
from bot.i18n import available_languages
from bot.i18n.nlg import button_payloads, render, render_request
from tests.test_actions import DOMAIN, slots_of, tracker


def asking(entity_values: list[str], sender: str = "s-lang") -> Tracker:
    """A tracker whose latest message asks for a language ("can you speak Thai?")."""
    asked = tracker("can you speak it?", "choose_language", sender=sender)
    asked.latest_message["entities"] = [
        {"entity": "language", "value": value, "start": 0, "end": 1} for value in entity_values
    ]
    return asked


def test_names_of_languages_in_any_served_language_find_the_code() -> None:
    assert requested_language("th") == "th"
    assert requested_language("Thai") == "th"
    assert requested_language("ไทย") == "th"
    assert requested_language(" indonesian ") == "id"
    assert requested_language("Klingon") is None
    assert requested_language("") is None


@pytest.mark.asyncio
async def test_asking_for_thai_switches_and_confirms_in_thai(db_url: str) -> None:
    with session_scope() as session:
        contact = queue.get_or_create_contact(session, "webchat", "browser-1")
        sender = contact.public_id
    dispatcher = CollectingDispatcher()
    events = await ActionSetLanguage().run(dispatcher, asking(["th"], sender), DOMAIN)
    assert slots_of(events) == {"language": "th", "language_chosen": "th"}
    [message] = dispatcher.messages
    assert (message["response"], message["language"]) == ("utter_language_changed", "th")
    # The confirmation is rendered in Thai although the slot is not set yet.
    rendered = render_request(
        {
            "response": "utter_language_changed",
            "arguments": {"language": "th"},
            "tracker": {"slots": {"language": "en"}},
        }
    )
    assert rendered["text"] == render("utter_language_changed", "th", None, {})["text"]
    assert rendered["text"] != render("utter_language_changed", "en", None, {})["text"]
    # Kept on the contact: it sticks across sessions.
    with session_scope() as session:
        kept = session.execute(select(Contact).where(Contact.public_id == sender)).scalar_one()
        assert (kept.chosen_language, kept.language) == ("th", "th")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("text", "current", "expected"),
    [
        ("ภาษาไทยได้ไหม", None, "th"),
        ("និយាយភាសាខ្មែរបានទេ", "th", "km"),
        ("我不懂英文 你们有中文的吗", "zh", "zh"),
        ("ເວົ້າພາສາລາວໄດ້ບໍ", "lo", "lo"),
    ],
)
async def test_a_language_named_without_spaces_is_found_in_the_words(
    db_url: str, text: str, current: str | None, expected: str
) -> None:
    with session_scope() as session:
        sender = queue.get_or_create_contact(session, "webchat", f"unspaced-{expected}").public_id
    asked = tracker(text, "choose_language", sender=sender, slots={"language": current})
    dispatcher = CollectingDispatcher()
    events = await ActionSetLanguage().run(dispatcher, asked, DOMAIN)
    assert slots_of(events) == {"language": expected, "language_chosen": expected}
    assert dispatcher.messages[0]["language"] == expected


@pytest.mark.asyncio
async def test_a_language_beacon_does_not_serve_gets_the_menu(db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionSetLanguage().run(dispatcher, asking(["Klingon"]), DOMAIN)
    assert events == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_language_not_served"]
    menu = render("utter_language_not_served", "en", "webchat", {})["buttons"]
    titles = [b["title"] for b in menu]
    assert titles[0] == "English"
    assert {"Indonesia", "ไทย", "ខ្មែរ", "မြန်မာ", "Tiếng Việt"} <= set(titles)
    assert len(menu) == len(available_languages())


def test_the_language_menus_buttons_are_obeyed_and_nothing_else() -> None:
    menu = render("utter_language_menu", "th", "webchat", {})["buttons"]
    payloads = {b["payload"] for b in menu}
    assert '/choose_language{"language":"th"}' in payloads
    assert payloads <= button_payloads()
    from bot.conversation import Incoming

    pressed = Incoming("webchat", "a", "ไทย", payload='/choose_language{"language":"th"}')
    forged = Incoming("webchat", "a", "x", payload='/choose_language{"language":"xx"}')
    assert button(pressed) == '/choose_language{"language":"th"}'
    assert button(forged) is None


@pytest.mark.asyncio
async def test_a_chosen_language_wins_over_detection(db_url: str) -> None:
    english = "I am in a company in Cambodia and they do not pay me anything for months"
    chosen = await ActionScreen().run(
        CollectingDispatcher(),
        tracker(english, "seek_help", {"language": "th", "language_chosen": "th"}),
        DOMAIN,
    )
    assert slots_of(chosen)["language"] == "th"
    # After a restart of Rasa the gateway still tells which language was chosen.
    restarted = await ActionScreen().run(
        CollectingDispatcher(),
        tracker(english, "seek_help", metadata={"channel": "webchat", "language_chosen": "th"}),
        DOMAIN,
    )
    assert slots_of(restarted)["language"] == "th"
    free = await ActionScreen().run(
        CollectingDispatcher(), tracker(english, "seek_help", {"language": "th"}), DOMAIN
    )
    assert slots_of(free)["language"] == "en"
