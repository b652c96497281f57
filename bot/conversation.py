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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.db import session_scope
from bot.db.models import Case, CaseStatus, Contact, Direction, Message, MessageStatus, utcnow
from bot.handoff import blocklist, queue
from bot.i18n.nlg import button_payloads, render
from bot.metrics import DUPLICATES, MESSAGES, RASA_FAILURES, RATE_LIMITED
from bot.privacy.deletion import delete_person
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.safety import state as safety
from bot.safety.commands import asks_where, language_of, word
from bot.safety.state import Safety
from bot.screening import ScreeningContext, detect_language, normalize, screen, urgency_rank
from bot.screening.types import ScreeningResult
from bot.screening.urgency import forced_to_scam
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
    #: The channel's own id of the message (Telegram's ``message_id``): an
    #: erase deletes it from the person's phone.
    provider_id: str | None = None

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
    #: What the reply means for the person's safety (a ``beacon`` mark of the
    #: response, or a relay mark of :mod:`bot.safety.state`).
    safety: str | None = None
    #: The web chat clears itself (the person wrote "erase").
    erase: bool = False

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"id": self.id, "text": self.text, "buttons": self.buttons}
        if self.erase:
            shown["erase"] = True
        return shown

    def stored(self) -> dict[str, Any]:
        """The reply as :func:`bot.handoff.queue.record_replies` stores it."""
        return {"text": self.text, "buttons": self.buttons, "safety": self.safety}


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
    #: A safety command (erase, pause, delete my data) the gateway handles itself.
    safety: Safety | None = None
    contact_id: int = 0
    #: The person's words, normalised (Zawgyi converted): what screening and Rasa read.
    words: str = ""


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
                provider_id=incoming.provider_id,
            )
            found.contact.unreachable_since = None
            flooding = not found.duplicate and _flooding(session, found.case.id)
            blocked = blocklist.block_of(session, found.contact) is not None
            words = normalize(incoming.text).text if incoming.text else ""
            command: Safety | None = None
            if not found.duplicate:
                command = safety.on_receipt(found.contact, words, button(incoming), utcnow())
                if command is not None:
                    # Decided once: a push message is stored by the webhook and
                    # answered later, from what was decided here.
                    found.message.payload = {**(found.message.payload or {}), "safety": command}
            elif (found.message.payload or {}).get("safety"):
                command = Safety(found.message.payload["safety"])
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
                command,
                found.contact.id,
                words,
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
            language = stored.conversation_language or (result.language if result else None)
            if case.holding_sent_at is None or now - case.holding_sent_at >= interval:
                replies.append(render("utter_holding", language, inbound.channel, {}))
                case.holding_sent_at = now
            if (
                result is not None
                and forced_to_scam(result.indicators, result.reporter)
                and case.reassured_at is None
                and case.status != CaseStatus.CLAIMED.value
            ):
                # Waiting for a person: they hear now that they are not in trouble for it.
                replies.append(render("utter_not_in_trouble", language, inbound.channel, {}))
                case.reassured_at = now
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
            case = session.get(Case, inbound.case_id)
            contact = session.get(Contact, case.contact_id)
            if language:
                # The conversation's language, remembered for the next session.
                contact.language = contact.chosen_language or language
            now = utcnow()
            if any(r.safety == "erase" for r in replies):
                # "Delete this chat" in the person's words: the same as the erase command.
                contact.paused_at = now
                return self._erase(session, inbound, case, language, status, now)
            replies = _marked(session, contact, case, replies, language, inbound.channel, now)
            stored = queue.record_replies(session, inbound, [r.stored() for r in replies], status)
            return [
                Reply(m.body, list((m.payload or {}).get("buttons") or []), m.id) for m in stored
            ]

    @staticmethod
    def _erase(
        session: Session,
        inbound: Message,
        case: Case,
        language: str | None,
        status: str,
        now: datetime,
    ) -> list[Reply]:
        """The person erases the chat from their phone; Beacon goes quiet until they write.

        Telegram: the relay deletes every message of the chat it may (a job,
        not a message). SMS: how to delete the thread. Web chat: the page
        clears itself and leaves.
        """
        case.erased_at = now
        safety.record(session, case, "erased_on_device", now)
        contact = session.get(Contact, case.contact_id)
        # They know the word: no need to tell them before the first sensitive question.
        contact.erase_told_at = contact.erase_told_at or now
        channel = inbound.channel
        if channel == "telegram":
            job = {"text": "", "safety": safety.ERASE_JOB}
            queue.record_replies(session, inbound, [job], status)
            return []
        if channel == "sms":
            how = render("utter_erase", language, channel, {})
            reply = Reply(str(how["text"]), safety=safety.DESPITE_PAUSE)
            stored = queue.record_replies(session, inbound, [reply.stored()], status)
            return [Reply(m.body, [], m.id) for m in stored]
        queue.record_replies(session, inbound, [], status)
        return [Reply("", erase=True)]

    def _apply_safety(
        self, stored: _Stored, channel: str, language: str | None, status: str
    ) -> list[Reply]:
        """A safety command's effect and answer, in one unit of work."""
        now = utcnow()
        with session_scope() as session:
            inbound = session.get(Message, stored.message_id)
            case = session.get(Case, stored.case_id)
            if stored.safety is Safety.ERASE:
                return self._erase(session, inbound, case, language, status, now)
            replies: list[Reply] = []
            if stored.safety is Safety.PAUSE:
                safety.record(session, case, "paused", now)
            elif stored.safety is Safety.ASK_DELETE:
                values = {"yes": word(language, "confirm").upper()}
                asked = render("utter_delete_confirm", language, channel, values)
                replies.append(Reply(str(asked["text"]), list(asked["buttons"])))
            elif stored.safety is Safety.DELETE:
                done = render("utter_data_deleted", language, channel, {})
                replies.append(Reply(str(done["text"]), safety=safety.THEN_DELETE))
            rows = queue.record_replies(session, inbound, [r.stored() for r in replies], status)
            return [Reply(m.body, list((m.payload or {}).get("buttons") or []), m.id) for m in rows]

    async def _safety(
        self,
        incoming: Incoming,
        stored: _Stored,
        status: str,
        words: str,
        context: ScreeningContext,
    ) -> list[Reply]:
        """Erase, pause and "delete my data": handled here, whatever the case's state."""
        language = (
            language_of(words, stored.conversation_language)
            or stored.conversation_language
            or detect_language(words, context)[0]
        )
        replies = await run_in_threadpool(
            self._apply_safety, stored, incoming.channel, language, status
        )
        if stored.safety is Safety.DELETE and status != MessageStatus.PENDING.value:
            # The web chat has its answer in this response: nothing is left to send.
            await run_in_threadpool(delete_person, stored.contact_id)
        self._on_change()
        log.info(
            "safety_command",
            extra={
                "fields": {
                    "message_id": stored.message_id,
                    "command": stored.safety.value if stored.safety else None,
                }
            },
        )
        return replies

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
            replies = await self._answer(incoming, stored, status)
            if stored.words and stored.safety is None and asks_where(stored.words):
                await run_in_threadpool(_caution, stored.case_id, stored.words)
            return replies

    @staticmethod
    def _duplicate(incoming: Incoming, message_id: int, replies: list[Reply]) -> list[Reply]:
        DUPLICATES.labels(incoming.channel).inc()
        log.info("duplicate", extra={"fields": {"message_id": message_id}})
        return replies

    async def _answer(self, incoming: Incoming, stored: _Stored, status: str) -> list[Reply]:
        words = stored.words
        text = rasa_text(incoming, words)
        replies: list[Reply] = []
        language: str | None = stored.conversation_language
        unsure = False
        context = ScreeningContext(
            language_code=incoming.hints.get("language_code"),
            calling_code=incoming.hints.get("calling_code"),
            conversation_language=stored.conversation_language,
        )
        if stored.safety is not None and not (
            stored.blocked and stored.safety in (Safety.ASK_DELETE, Safety.DELETE, Safety.DELETING)
        ):
            return await self._safety(incoming, stored, status, words, context)
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
            replies = _replies(raw)
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


def _replies(raw: list[dict[str, Any]]) -> list[Reply]:
    """Rasa's messages as replies; a ``custom`` ``beacon`` mark applies to the text before it."""
    replies: list[Reply] = []
    for m in raw:
        custom = m.get("custom")
        if isinstance(custom, dict) and custom.get("beacon"):
            if replies:
                replies[-1] = replace(replies[-1], safety=str(custom["beacon"]))
        elif m.get("text") or m.get("buttons"):
            replies.append(Reply(str(m.get("text") or ""), _buttons(m.get("buttons"))))
    return replies


def _marked(
    session: Session,
    contact: Contact,
    case: Case,
    replies: list[Reply],
    language: str | None,
    channel: str,
    now: datetime,
) -> list[Reply]:
    """Applies the replies' ``beacon`` marks (see ``domain.yml``); returns what to send."""
    sent: list[Reply] = []
    for reply in replies:
        if reply.safety == "sensitive" and contact.erase_told_at is None:
            # Once, before the first sensitive question: how to erase this chat.
            erase = word(language, "erase").upper()
            hint = render("utter_erase_hint", language, channel, {"erase": erase})
            sent.append(Reply(str(hint["text"])))
            contact.erase_told_at = now
        if reply.safety == "reassured":
            case.reassured_at = now
        if reply.safety == "pause":
            # "Stop writing to me": this answer goes out, then nothing until they write.
            contact.paused_at = now
            reply = replace(reply, safety=safety.DESPITE_PAUSE)
            safety.record(session, case, "paused", now)
        elif reply.safety not in safety.GOES_OUT_WHEN_PAUSED:
            reply = replace(reply, safety=None)
        sent.append(reply)
    return sent


def _caution(case_id: int, words: str) -> None:
    """Someone else asks where a person is: they may be looking for an escapee.

    The console shows the caution; the responder decides what is shared, never the bot.
    """
    with session_scope() as session:
        case = session.get(Case, case_id)
        if case is None or case.impersonation_caution:
            return
        if case.reporter == "other" or screen(words).reporter == "other":
            case.impersonation_caution = True
            log.info("impersonation_caution", extra={"fields": {"case_id": case_id}})


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
