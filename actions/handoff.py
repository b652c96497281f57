"""``action_handoff``: puts the conversation in front of a person from the hotline.

Opens (or raises) the case in the handoff queue with its urgency, language,
indicators, reporter and place, then tells the person, calmly and discreetly,
that someone will write to them here. A worker who has not yet answered the
safety questions gets them while they wait (slot ``ask_safety``).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.turn import channel_of
from bot.db import session_scope
from bot.handoff import queue
from bot.screening import max_urgency, urgency_rank

#: A case in front of a person is at least this urgent: somebody asked for one.
QUEUED_FLOOR = "medium"


def choose_response(
    urgency: str, previous: str | None, reporter: str, safe_to_talk: str | None
) -> str:
    """The reply that tells the person what happens now."""
    if safe_to_talk == "no":
        return "utter_handoff_unsafe"
    if reporter == "other":
        # A relative is not the one in danger: no advice about hiding a phone.
        return "utter_handoff_update" if previous is not None else "utter_handoff_family"
    if urgency == "critical" and previous != "critical":
        return "utter_handoff_critical"
    if previous is not None:
        return "utter_handoff_update"
    return "utter_handoff"


class ActionHandoff(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        urgency = max_urgency(tracker.get_slot("urgency"), QUEUED_FLOOR)
        reporter = str(tracker.get_slot("reporter") or "unknown")
        previous = tracker.get_slot("handoff_urgency")
        safe_to_talk = tracker.get_slot("safe_to_talk")
        in_form = bool((tracker.active_loop or {}).get("name"))
        ask_safety = (
            reporter != "other"
            and urgency_rank(urgency) < urgency_rank("critical")
            and safe_to_talk is None
            and not in_form
        )
        with session_scope() as session:
            case = queue.escalate(
                session,
                tracker.sender_id,
                urgency=urgency,
                indicators=list(tracker.get_slot("indicators") or []),
                language=tracker.get_slot("language"),
                reporter=reporter,
                channel=channel_of(tracker),
                country=tracker.get_slot("country"),
                location=tracker.get_slot("location"),
                # The safety questions follow while the case waits: the bot keeps talking.
                bot_form_open=ask_safety,
            )
            if urgency_rank(case.urgency) >= urgency_rank("critical"):
                ask_safety = False
            urgency = case.urgency
        dispatcher.utter_message(
            response=choose_response(urgency, previous, reporter, safe_to_talk)
        )
        events: list[dict[str, Any]] = [
            SlotSet("handoff_urgency", urgency),
            SlotSet("urgency", urgency),
            SlotSet("ask_safety", ask_safety),
        ]
        if in_form:
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        return events
