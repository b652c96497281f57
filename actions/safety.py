"""``validate_safety_form``: the few short safety questions for a worker.

Every answer is screened like any other message. The questions stop early
when it is not safe to talk, or when an answer shows immediate danger, so
that the case reaches a person at once (the form's end hands off).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from actions.turn import screen_latest
from bot.handoff.queue import merge_indicators
from bot.screening import max_urgency
from bot.screening.urgency import classify


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
        events: list[dict[str, Any]] = await super().run(dispatcher, tracker, domain)
        return screened + events

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
