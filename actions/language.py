"""``action_set_language``: the person asks for a language ("can you speak Thai?").

The ``language`` entity arrives as an ISO 639-1 code when the NLU synonyms
know the name; otherwise the name is looked up among the served languages'
names in every served language (Babel's CLDR data); with no entity at all,
the words themselves are searched for a language's name. A served language is set
for the conversation (slots ``language`` and ``language_chosen``) and kept on
the contact, so it sticks across sessions and wins over detection until the
person chooses another; the confirmation is written in that language. A
language Beacon does not serve gets the menu of those it does.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from babel import Locale
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.turn import channel_of
from bot.db import session_scope
from bot.handoff import queue
from bot.i18n import available_languages


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """Every served language's names, lower-cased, in every served language -> code."""
    served = available_languages()
    found: dict[str, str] = {}
    for code in served:
        language = Locale.parse(code)
        for shown_in in served:
            name = language.get_display_name(Locale.parse(shown_in))
            if name:
                found.setdefault(name.casefold(), code)
        found.setdefault(code, code)
    return found


def requested_language(value: str | None) -> str | None:
    """The served language an entity value names, or None."""
    if not value:
        return None
    wanted = value.strip().casefold()
    if wanted in available_languages():
        return wanted
    return _names().get(wanted)


def named_in(text: str, current: str | None) -> str | None:
    """The served language whose name appears in ``text``, for unspaced requests.

    Thai, Lao, Khmer, Burmese and Chinese are written without spaces
    ("ภาษาไทยได้ไหม"), so NLU often finds no ``language`` entity. One name
    found is the answer; among several, the one the person writes in wins
    (people ask for their own language in it), otherwise nothing is guessed.
    """
    folded = text.casefold()
    found = {code for name, code in _names().items() if name != code and name in folded}
    if len(found) == 1:
        return found.pop()
    if current in found:
        return current
    return None


class ActionSetLanguage(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_set_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        values = list(tracker.get_latest_entity_values("language"))
        code = next((c for c in map(requested_language, values) if c), None)
        if code is None and not values:
            text = str(tracker.latest_message.get("text") or "")
            code = named_in(text, tracker.get_slot("language"))
        if code is None:
            dispatcher.utter_message(response="utter_language_not_served")
            return []
        with session_scope() as session:
            queue.choose_language(session, tracker.sender_id, code, channel_of(tracker))
        dispatcher.utter_message(response="utter_language_changed", language=code)
        return [SlotSet("language", code), SlotSet("language_chosen", code)]
