"""``validate_safety_form``: the few short safety questions for a worker.

Every answer is screened like any other message. The questions stop early
when it is not safe to talk, or when an answer shows immediate danger, so
that the case reaches a person at once (the form's end hands off).

A short answer the assistant did not take for yes or no ("nggak, sy gk
apa2" read as "stop") is read by its first word (:mod:`bot.safety.answers`),
so that the person is not asked the same question again.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from actions.turn import screen_latest
from bot.handoff.queue import merge_indicators
from bot.safety.answers import yes_or_no
from bot.screening import max_urgency
from bot.screening.urgency import classify

#: The questions answered yes or no.
YES_NO_SLOTS = ("safe_to_talk", "hurt", "passport_held")


def _first_word_answer(tracker: Tracker, slot: str) -> dict[str, Any]:
    """The requested yes/no slot from the answer's first word, when NLU gave no yes or no."""
    if slot not in YES_NO_SLOTS or tracker.get_slot(slot) is not None:
        return {}
    message = tracker.latest_message or {}
    if (message.get("intent") or {}).get("name") in ("affirm", "deny"):
        return {}
    text = str(message.get("text") or "")
    answer = None if text.startswith("/") else yes_or_no(text)
    return {slot: answer} if answer else {}


def _with_indicator(tracker: Tracker, indicator: str) -> dict[str, Any]:
    indicators = merge_indicators(tracker.get_slot("indicators"), [indicator])
    return {
        "indicators": indicators,
        "urgency": max_urgency(tracker.get_slot("urgency"), classify(indicators)),
    }


class ValidateSafetyForm(FormValidationAction):  # type: ignore[misc]
    def name(self) -> str:
        return "validate_safety_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        screened = screen_latest(tracker).slot_events()
        # Visible to the validators, but not as slot candidates to validate.
        tracker.slots.update({event["name"]: event["value"] for event in screened})
        requested = tracker.get_slot("requested_slot")
        answered = [
            SlotSet(slot, value)
            for slot, value in _first_word_answer(tracker, str(requested)).items()
        ]
        # Validated like an answer the assistant understood (a "yes" to "are you
        # hurt?" adds its indicator), and kept even when it ends the questions.
        tracker.add_slots(answered)
        events: list[dict[str, Any]] = await super().run(dispatcher, tracker, domain)
        validated = {e.get("name") for e in events if e.get("event") == "slot"}
        kept = [e for e in answered if e["name"] not in validated]
        return screened + kept + events

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[str]:
        if tracker.get_slot("safe_to_talk") == "no" or tracker.get_slot("urgency") == "critical":
            return []
        return domain_slots

    def validate_hurt(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        if value == "yes":
            return {"hurt": value, **_with_indicator(tracker, "medical_emergency")}
        return {"hurt": value}

    def validate_passport_held(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        if value == "yes":
            return {"passport_held": value, **_with_indicator(tracker, "documents_retained")}
        return {"passport_held": value}
