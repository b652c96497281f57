"""``action_screen``: every message is read for forced-labour indicators and danger.

It sets the ``language``, ``urgency``, ``indicators`` and ``reporter`` slots,
and ``escalate`` when the conversation needs a person now: no case is open
yet and screening or the intent asks for one, or the urgency rose above what
the open case was queued with. The rules then hand off whatever the intent.

A worker who says they were forced to scam people hears once, first, that
it is not their fault and they are not in trouble with the hotline for it.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.turn import screen_latest
from bot.screening import urgency_rank


class ActionScreen(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_screen"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        turn = screen_latest(tracker)
        handed_off = tracker.get_slot("handoff_urgency")
        if handed_off is None:
            escalate = turn.needs_person
        else:
            # The gateway re-screens messages of open cases; here it only
            # decides whether the person hears that it was escalated again.
            escalate = urgency_rank(turn.urgency) > urgency_rank(handed_off)
        events = [*turn.slot_events(), SlotSet("escalate", escalate)]
        if turn.forced_to_scam and not tracker.get_slot("reassured"):
            # Non-punishment, said once: it helps them speak.
            dispatcher.utter_message(response="utter_not_in_trouble")
            events.append(SlotSet("reassured", True))
        return events
