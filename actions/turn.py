"""Screening of the conversation's latest message, shared by the actions that need it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from bot.screening import ScreeningContext, accumulate, max_urgency, screen, urgency_rank
from bot.screening.language import follow_language
from bot.screening.urgency import forced_to_scam

#: Intents that ask for a person whatever the screening finds, and the least urgency they carry.
INTENT_FLOOR: dict[str, str] = {
    "emergency": "critical",
    "ask_human": "medium",
    "report_other": "medium",
}


@dataclass(frozen=True)
class Turn:
    """The conversation's state after screening its latest message."""

    language: str
    urgency: str
    indicators: list[str]
    reporter: str
    intent: str
    #: What the latest message alone showed (the slots hold the whole conversation's).
    latest_indicators: tuple[str, ...] = ()

    def slot_events(self) -> list[dict[str, Any]]:
        return [
            SlotSet("language", self.language),
            SlotSet("urgency", self.urgency),
            SlotSet("indicators", self.indicators),
            SlotSet("reporter", self.reporter),
        ]

    @property
    def forced_to_scam(self) -> bool:
        """The latest message says they were forced to scam people (not a relative telling)."""
        return forced_to_scam(self.latest_indicators, self.reporter)

    @property
    def needs_person(self) -> bool:
        return urgency_rank(self.urgency) >= urgency_rank("medium") or self.intent in INTENT_FLOOR


def screen_latest(tracker: Tracker) -> Turn:
    """Screens the latest user message and folds it into the conversation's slots."""
    message = tracker.latest_message or {}
    text = str(message.get("text") or "")
    metadata = message.get("metadata") or {}
    intent = str((message.get("intent") or {}).get("name") or "")
    previous_language = tracker.get_slot("language") or metadata.get("language")
    if text.startswith("/"):
        # A button press: its payload is not the person's words.
        text = ""
    context = ScreeningContext(
        language_code=metadata.get("language_code"),
        calling_code=metadata.get("calling_code"),
        conversation_language=previous_language,
    )
    result = screen(text, context)
    indicators, urgency = accumulate(
        tracker.get_slot("indicators") or [], tracker.get_slot("urgency"), result
    )
    urgency = max_urgency(urgency, INTENT_FLOOR.get(intent))
    reporter = str(tracker.get_slot("reporter") or "unknown")
    if intent == "report_other" or result.reporter == "other":
        reporter = "other"
    elif reporter == "unknown" and (result.reporter == "self" or intent in ("seek_help",)):
        reporter = "self"
    chosen = tracker.get_slot("language_chosen") or metadata.get("language_chosen")
    language: str | None
    if chosen:
        # The person asked for this language: it wins over detection.
        language = str(chosen)
    else:
        language = follow_language(previous_language, text, result) if text else previous_language
    return Turn(
        language=language or "en",
        urgency=urgency,
        indicators=indicators,
        reporter=reporter,
        intent=intent,
        latest_indicators=tuple(result.indicators),
    )


def channel_of(tracker: Tracker) -> str:
    """The channel the person writes on, as the gateway told Rasa."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    return str(metadata.get("channel") or "unknown")
