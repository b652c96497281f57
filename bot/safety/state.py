"""What a safety command does to a person's state, decided when their message is stored.

The decision is taken in the same unit of work that stores the message, so
that a held responder reply cannot slip out between "busy" arriving and the
pause being recorded.

- ``erase`` and ``pause`` pause the person: nothing is sent to them, not even
  a responder's reply, until they write again (any other message resumes).
- ``delete`` asks the person to confirm; a "yes" (in any language) or the
  Delete button within :data:`CONFIRM_WITHIN` confirms, anything else cancels.
- A confirmed deletion is due at once: the confirmation goes out, then
  :mod:`bot.privacy.deletion` deletes everything.

Outbound messages carry a ``safety`` mark in their payload that the relay obeys:
:data:`ERASE_JOB` (delete the chat's messages on the phone, Telegram only),
:data:`DESPITE_PAUSE` (the answer to the command that paused: it goes out),
:data:`THEN_DELETE` (the deletion's confirmation: once it went out, or could
not, the person's data is deleted).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.db.models import Case, CaseEvent, Contact
from bot.safety.commands import Command, command_in, is_yes

ERASE_JOB = "erase"
DESPITE_PAUSE = "despite_pause"
THEN_DELETE = "then_delete"
#: Marks that let a message out while the person is paused.
GOES_OUT_WHEN_PAUSED = frozenset({ERASE_JOB, DESPITE_PAUSE, THEN_DELETE})
#: The Delete button of the deletion question.
CONFIRM_PAYLOAD = "/confirm_delete"
#: How long a deletion question waits for its "yes".
CONFIRM_WITHIN = timedelta(minutes=30)


class Safety(str, enum.Enum):
    """What the gateway does with a message instead of passing it to the assistant."""

    ERASE = "erase"
    PAUSE = "pause"
    ASK_DELETE = "ask_delete"
    DELETE = "delete"
    #: A message while a confirmed deletion is under way (or its redelivery): ignored.
    DELETING = "deleting"


def decide(text: str, pressed: str | None) -> Command | None:
    """The command a message is (a button press is never one, except Delete)."""
    if pressed is not None:
        return None
    return command_in(text)


def on_receipt(contact: Contact, text: str, pressed: str | None, now: datetime) -> Safety | None:
    """Applies a new message to the person's safety state; returns what to do with it."""
    command = decide(text, pressed)
    asked = contact.deletion_asked_at
    pending = asked is not None and now - asked <= CONFIRM_WITHIN
    if command in (Command.ERASE, Command.PAUSE):
        contact.paused_at = now
        contact.deletion_asked_at = None
        return Safety.ERASE if command is Command.ERASE else Safety.PAUSE
    contact.paused_at = None
    if pending and (pressed == CONFIRM_PAYLOAD or (pressed is None and is_yes(text))):
        contact.deletion_asked_at = None
        contact.deletion_due_at = now
        return Safety.DELETE
    if contact.deletion_due_at is not None:
        # A redelivery of the confirming message, or a message sent while the
        # deletion is under way: nothing more is said.
        return Safety.DELETING
    if command is Command.DELETE or pressed == CONFIRM_PAYLOAD:
        contact.deletion_asked_at = now
        return Safety.ASK_DELETE
    contact.deletion_asked_at = None
    return None


def record(session: Session, case: Case, action: str, now: datetime) -> None:
    """A safety step in the case's audit trail (the console shows it)."""
    session.add(
        CaseEvent(
            case_id=case.id,
            actor="person",
            action=action,
            from_status=case.status,
            to_status=case.status,
            at=now,
        )
    )
