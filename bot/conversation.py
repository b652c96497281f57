"""One inbound message, from any channel, through Beacon.

1. The message is stored (encrypted) before anything else happens, keyed by
   the channel's message id so that a redelivery is never handled twice.
2. Its language is detected with the channel's priors and passed to Rasa in
   ``metadata`` with the channel.
3. Rasa's replies are stored with the message and returned to the channel.

While the person's case is with a responder (claimed), or waits in the queue
and the bot has no more questions to ask, the bot is silent: the message goes
to the case's transcript, is re-screened (it may raise the case's urgency),
and the person gets at most one holding message per
``BEACON_HOLDING_INTERVAL_MINUTES`` in their language. After a responder
resolves the case, the assistant's dialogue state is reset (slots, active
form; Rasa ``resume`` and ``action_listen``) before it reads the next message.

A sender a responder blocked (:mod:`bot.handoff.blocklist`) is stored and
screened but not answered, not even with a holding message, and does not
wake the console; an urgent message (``medium`` or more) still puts the case
in front of a person, or raises its urgency: a life comes first.

A message that Rasa could not answer stays stored as ``received``; sending it
again with the same id (a retry) processes it then. On push channels
(Telegram, SMS) the replies are stored ``pending`` and the relay delivers
them; :mod:`bot.channels.inbox` processes such messages after the webhook
has been answered, and again after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.db import session_scope
from bot.db.models import Case, CaseStatus, Contact, Direction, Message, MessageStatus, utcnow
from bot.handoff import blocklist, queue
from bot.i18n.nlg import button_payloads, render
from bot.metrics import DUPLICATES, MESSAGES, RASA_FAILURES, RATE_LIMITED
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.screening import ScreeningContext, detect_language, normalize, screen, urgency_rank
from bot.screening.types import ScreeningResult
from bot.settings import get_settings

log = logging.getLogger(__name__)

#: Below this detection confidence, a person's first message also gets the language menu.
MENU_BELOW_CONFIDENCE = 0.5
#: Channels without buttons, where a menu of fourteen languages would be a wall of text.
NO_MENU_CHANNELS = frozenset({"sms"})


@dataclass(frozen=True)
class Incoming:
    """A message as a channel received it."""

    channel: str
    address: str
    text: str
    external_id: str | None = None
    payload: str | None = None
    hints: dict[str, str] = field(default_factory=dict)
    #: A photo, voice note, document or location the person sent: a reference
    #: (kind, the channel's file id, ...) a responder can open, never the bytes.
    attachment: dict[str, Any] | None = None

    def stored_payload(self) -> dict[str, Any] | None:
        """What is kept with the message besides its text (everything needed to process it)."""
        kept: dict[str, Any] = {}
        if pressed := button(self):
            kept["button"] = pressed
        if self.hints:
            kept["hints"] = dict(self.hints)
        if self.attachment:
            kept["attachment"] = dict(self.attachment)
        return kept or None


@dataclass(frozen=True)
class Reply:
    """One bot message for the channel to deliver."""

    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "buttons": self.buttons}


@dataclass(frozen=True)
class Accepted:
    """A push channel's message as stored by :meth:`Conversations.accept`."""

    message_id: int
    case_id: int
    duplicate: bool


@dataclass(frozen=True)
class _Stored:
    message_id: int
    case_id: int
    case_open: bool
    silent: bool
    reset_dialogue: bool
    sender: str
    conversation_language: str | None
    replies: list[Reply] | None
    duplicate: bool = False
    chosen_language: str | None = None
    flooding: bool = False
    blocked: bool = False


def bot_is_silent(case: Case) -> bool:
    """Whether a person, not the bot, answers this case now."""
    if case.status == CaseStatus.CLAIMED.value:
        return True
    return case.status == CaseStatus.QUEUED.value and not case.bot_form_open


def button(incoming: Incoming) -> str | None:
    """The payload of a button Beacon sent, or None: anything else is not kept or obeyed."""
    return incoming.payload if incoming.payload in button_payloads() else None


#: Commands a channel's app sends by itself (Telegram's Start button, or a
#: ``t.me/<bot>?start=...`` link): the person is greeted, discreetly.
CHANNEL_COMMANDS = {"/start": "/greet"}


def rasa_text(incoming: Incoming, words: str) -> str:
    """What Rasa reads: a known button payload, or the person's (normalised) words.

    A leading ``/`` typed by a person is never taken as an intent command,
    except the channel commands of :data:`CHANNEL_COMMANDS`.
    """
    first = words.strip().split(maxsplit=1)[0].split("@")[0].lower() if words.strip() else ""
    command = CHANNEL_COMMANDS.get(first) if incoming.channel == "telegram" else None
    return button(incoming) or command or words.lstrip("/").strip()


def described(incoming: Incoming) -> bool:
    """Whether the text only describes what was shared (a location, a contact card).

    Such a message is kept for the team and acknowledged; the assistant does
    not read it as the person's words.
    """
    return bool(incoming.attachment and incoming.attachment.get("described"))


class Conversations:
    """Handles inbound messages for every channel."""

    def __init__(self, rasa: RasaClient, on_change: Callable[[], None] | None = None) -> None:
        self._rasa = rasa
        self._on_change = on_change or (lambda: None)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _store(self, incoming: Incoming) -> _Stored:
        with session_scope() as session:
            found = queue.record_inbound(
                session,
                channel=incoming.channel,
                address=incoming.address,
                text=incoming.text,
                external_id=incoming.external_id,
                payload=incoming.stored_payload(),
            )
            found.contact.unreachable_since = None
            flooding = not found.duplicate and _flooding(session, found.case.id)
            blocked = blocklist.block_of(session, found.contact) is not None
            return _Stored(
                found.message.id,
                found.case.id,
                found.case.status in queue.OPEN_STATUSES,
                bot_is_silent(found.case),
                found.contact.dialogue_reset_pending,
                found.contact.public_id,
                found.contact.chosen_language or found.contact.language,
                _stored_replies(session, found.message),
                found.duplicate,
                found.contact.chosen_language,
                flooding,
                blocked,
            )

    def _rescreen(self, case_id: int, words: str, context: ScreeningContext) -> str:
        """A message on a case that a person has (or will have) can raise its urgency.

        Returns the message's language.
        """
        result = screen(words, context)
        with session_scope() as session:
            if queue.rescreen(session, case_id, result):
                log.info("urgency_raised", extra={"fields": {"case_id": case_id}})
        return result.language

    def _screen_blocked(
        self, stored: _Stored, channel: str, words: str, context: ScreeningContext, status: str
    ) -> bool:
        """A blocked sender's message: kept and screened, not answered.

        Returns whether it was urgent: then the case is queued (or its urgency raised).
        """
        result = screen(words, context) if words else None
        urgent = result is not None and _needs_person(result)
        with session_scope() as session:
            case = session.get(Case, stored.case_id)
            if result is not None and urgent and case.status in queue.OPEN_STATUSES:
                queue.rescreen(session, case.id, result)
            elif result is not None and urgent:
                queue.escalate(
                    session,
                    stored.sender,
                    urgency=result.urgency,
                    indicators=list(result.indicators),
                    language=result.language,
                    reporter=result.reporter,
                    channel=channel,
                    actor="gateway",
                )
            queue.record_replies(session, session.get(Message, stored.message_id), [], status)
        return urgent

    def _hold(
        self, stored: _Stored, words: str, context: ScreeningContext, status: str
    ) -> list[Reply]:
        """A message while a person has the case: transcript, re-screening, holding reply."""
        result = screen(words, context) if words else None
        now = utcnow()
        with session_scope() as session:
            inbound = session.get(Message, stored.message_id)
            case = session.get(Case, stored.case_id)
            if result is not None and queue.rescreen(session, case.id, result):
                log.info("urgency_raised", extra={"fields": {"case_id": case.id}})
            interval = timedelta(minutes=get_settings().holding_interval_minutes)
            replies: list[dict[str, Any]] = []
            if case.holding_sent_at is None or now - case.holding_sent_at >= interval:
                language = stored.conversation_language or (result.language if result else None)
                replies.append(render("utter_holding", language, inbound.channel, {}))
                case.holding_sent_at = now
            stored_replies = queue.record_replies(session, inbound, replies, status)
            return [Reply(m.body, [], m.id) for m in stored_replies]

    def _reset_done(self, message_id: int) -> None:
        with session_scope() as session:
            inbound = session.get(Message, message_id)
            case = session.get(Case, inbound.case_id)
            contact = session.get(Contact, case.contact_id)
            contact.dialogue_reset_pending = False

    def _replies_if_processed(self, message_id: int) -> list[Reply] | None:
        with session_scope() as session:
            return _stored_replies(session, session.get(Message, message_id))

    def _store_replies(
        self, message_id: int, replies: list[Reply], status: str, language: str | None
    ) -> list[Reply]:
        with session_scope() as session:
            inbound = session.get(Message, message_id)
            if language:
                # The conversation's language, remembered for the next session.
                contact = session.get(Contact, session.get(Case, inbound.case_id).contact_id)
                contact.language = contact.chosen_language or language
            stored = queue.record_replies(session, inbound, [r.as_dict() for r in replies], status)
            return [
                Reply(m.body, list((m.payload or {}).get("buttons") or []), m.id) for m in stored
            ]

    async def accept(self, incoming: Incoming) -> Accepted:
        """Stores a push channel's message without answering it (the webhook's part)."""
        stored = await run_in_threadpool(self._store, incoming)
        return Accepted(stored.message_id, stored.case_id, stored.duplicate)

    async def handle(self, incoming: Incoming, *, push: bool = False) -> list[Reply]:
        """Stores, screens and answers one message; returns the replies.

        With ``push`` (Telegram, SMS) the replies are stored ``pending`` for the
        relay to send; otherwise they are returned to the caller to deliver
        (the web chat's HTTP response) and stored ``sent``.

        Raises:
            RasaUnavailable: the assistant could not answer; the message is kept.
        """
        stored = await run_in_threadpool(self._store, incoming)
        if stored.replies is not None:
            return self._duplicate(incoming, stored.message_id, stored.replies)
        MESSAGES.labels(incoming.channel, "in").inc()
        lock = self._locks.setdefault(stored.sender, asyncio.Lock())
        async with lock:
            # A delivery of the same message may have been answered while we waited.
            replies = await run_in_threadpool(self._replies_if_processed, stored.message_id)
            if replies is not None:
                return self._duplicate(incoming, stored.message_id, replies)
            status = MessageStatus.PENDING.value if push else MessageStatus.SENT.value
            return await self._answer(incoming, stored, status)

    @staticmethod
    def _duplicate(incoming: Incoming, message_id: int, replies: list[Reply]) -> list[Reply]:
        DUPLICATES.labels(incoming.channel).inc()
        log.info("duplicate", extra={"fields": {"message_id": message_id}})
        return replies

    async def _answer(self, incoming: Incoming, stored: _Stored, status: str) -> list[Reply]:
        words = normalize(incoming.text).text
        text = rasa_text(incoming, words)
        replies: list[Reply] = []
        language: str | None = stored.conversation_language
        unsure = False
        context = ScreeningContext(
            language_code=incoming.hints.get("language_code"),
            calling_code=incoming.hints.get("calling_code"),
            conversation_language=stored.conversation_language,
        )
        if stored.blocked:
            urgent = await run_in_threadpool(
                self._screen_blocked, stored, incoming.channel, words, context, status
            )
            if urgent:
                self._on_change()
            log.info(
                "blocked_sender",
                extra={"fields": {"message_id": stored.message_id, "queued": urgent}},
            )
            return []
        if stored.flooding and not await run_in_threadpool(_urgent, words, context):
            # Kept and screened, not answered. An urgent message is always answered.
            if words and stored.case_open:
                await run_in_threadpool(self._rescreen, stored.case_id, words, context)
            await run_in_threadpool(self._store_replies, stored.message_id, [], status, None)
            RATE_LIMITED.labels(incoming.channel).inc()
            self._on_change()
            log.info("rate_limited", extra={"fields": {"message_id": stored.message_id}})
            return []
        if stored.silent:
            replies = await run_in_threadpool(self._hold, stored, words, context, status)
            self._on_change()
            log.info(
                "held",
                extra={"fields": {"message_id": stored.message_id, "replies": len(replies)}},
            )
            return replies
        if text and not described(incoming):
            if stored.case_open and button(incoming) is None:
                language = await run_in_threadpool(self._rescreen, stored.case_id, words, context)
            else:
                language, confidence = detect_language(words, context)
                # A first message whose language is unclear ("ok", "hola"): offer the menu.
                unsure = (
                    stored.conversation_language is None
                    and confidence < MENU_BELOW_CONFIDENCE
                    and button(incoming) is None
                    and incoming.channel not in NO_MENU_CHANNELS
                )
            if stored.chosen_language:
                language = stored.chosen_language
            metadata = {"channel": incoming.channel, "language": language, **incoming.hints}
            if stored.chosen_language:
                metadata["language_chosen"] = stored.chosen_language
            try:
                if stored.reset_dialogue:
                    await self._rasa.reset_dialogue(stored.sender, language)
                    await run_in_threadpool(self._reset_done, stored.message_id)
                raw = await self._rasa.send(stored.sender, text, metadata)
            except RasaUnavailable as exc:
                RASA_FAILURES.inc()
                log.warning(
                    "rasa_unavailable",
                    extra={"fields": {"message_id": stored.message_id, "reason": str(exc)}},
                )
                raise
            replies = [
                Reply(str(m.get("text") or ""), _buttons(m.get("buttons")))
                for m in raw
                if m.get("text") or m.get("buttons")
            ]
            if unsure:
                menu = render("utter_language_menu", language, incoming.channel, {})
                replies.append(Reply(str(menu["text"]), list(menu["buttons"])))
        elif incoming.attachment:
            # A photo, voice note, location or contact without words: kept for
            # the team, and said so (in the channel's language prior, at first).
            ack_language = stored.conversation_language or detect_language("", context)[0]
            ack = render("utter_attachment_received", ack_language, incoming.channel, {})
            replies = [Reply(str(ack.get("text") or ""))]
        replies = await run_in_threadpool(
            self._store_replies, stored.message_id, replies, status, language
        )
        # The turn may have queued the case (action_handoff): tell the live feed now.
        self._on_change()
        MESSAGES.labels(incoming.channel, "out").inc(len(replies))
        log.info(
            "answered",
            extra={"fields": {"message_id": stored.message_id, "replies": len(replies)}},
        )
        return replies


def _needs_person(result: ScreeningResult) -> bool:
    """Whether a screened message needs a person (``medium`` or more)."""
    return urgency_rank(result.urgency) >= urgency_rank("medium")


def _urgent(words: str, context: ScreeningContext) -> bool:
    """Whether a message needs a person: never rate-limited."""
    return bool(words) and _needs_person(screen(words, context))


def _flooding(session: Session, case_id: int) -> bool:
    """More inbound messages on the case in the last minute than the limit allows."""
    limit = get_settings().rate_limit_per_minute
    if limit <= 0:
        return False
    since = utcnow() - timedelta(minutes=1)
    recent = session.execute(
        select(func.count())
        .select_from(Message)
        .where(
            Message.case_id == case_id,
            Message.direction == Direction.IN.value,
            Message.created_at >= since,
        )
    ).scalar_one()
    return int(recent) > limit


def _stored_replies(session: Session, message: Message) -> list[Reply] | None:
    """The replies already given to ``message``, or None if it was not processed yet."""
    if message.status != MessageStatus.PROCESSED.value:
        return None
    return [
        Reply(m.body, list((m.payload or {}).get("buttons") or []), m.id)
        for m in queue.replies_to(session, message)
    ]


def _buttons(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        return []
    return [
        {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
        for b in raw
        if isinstance(b, dict)
    ]
