"""One inbound message, from any channel, through Beacon.

1. The message is stored (encrypted) before anything else happens, keyed by
   the channel's message id so that a redelivery is never handled twice.
2. Its language is detected with the channel's priors and passed to Rasa in
   ``metadata`` with the channel.
3. Rasa's replies are stored with the message and returned to the channel.

A message that Rasa could not answer stays stored as ``received``; sending it
again with the same id (a retry) processes it then.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.db import session_scope
from bot.db.models import Message, MessageStatus
from bot.handoff import queue
from bot.i18n.nlg import button_payloads
from bot.metrics import DUPLICATES, MESSAGES, RASA_FAILURES
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.screening import ScreeningContext, detect_language, normalize, screen

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """A message as a channel received it."""

    channel: str
    address: str
    text: str
    external_id: str | None = None
    payload: str | None = None
    hints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """One bot message for the channel to deliver."""

    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "buttons": self.buttons}


@dataclass(frozen=True)
class _Stored:
    message_id: int
    case_id: int
    case_open: bool
    sender: str
    conversation_language: str | None
    replies: list[Reply] | None


def button(incoming: Incoming) -> str | None:
    """The payload of a button Beacon sent, or None: anything else is not kept or obeyed."""
    return incoming.payload if incoming.payload in button_payloads() else None


def rasa_text(incoming: Incoming, words: str) -> str:
    """What Rasa reads: a known button payload, or the person's (normalised) words.

    A leading ``/`` typed by a person is never taken as an intent command.
    """
    return button(incoming) or words.lstrip("/").strip()


class Conversations:
    """Handles inbound messages for every channel."""

    def __init__(self, rasa: RasaClient) -> None:
        self._rasa = rasa
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _store(self, incoming: Incoming) -> _Stored:
        with session_scope() as session:
            found = queue.record_inbound(
                session,
                channel=incoming.channel,
                address=incoming.address,
                text=incoming.text,
                external_id=incoming.external_id,
                payload={"button": pressed} if (pressed := button(incoming)) else None,
            )
            return _Stored(
                found.message.id,
                found.case.id,
                found.case.status in queue.OPEN_STATUSES,
                found.contact.public_id,
                found.contact.language,
                _stored_replies(session, found.message),
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

    def _replies_if_processed(self, message_id: int) -> list[Reply] | None:
        with session_scope() as session:
            return _stored_replies(session, session.get(Message, message_id))

    def _store_replies(self, message_id: int, replies: list[Reply]) -> None:
        with session_scope() as session:
            inbound = session.get(Message, message_id)
            queue.record_replies(
                session, inbound, [r.as_dict() for r in replies], MessageStatus.SENT.value
            )

    async def handle(self, incoming: Incoming) -> list[Reply]:
        """Stores, screens and answers one message; returns the replies to deliver.

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
            return await self._answer(incoming, stored)

    @staticmethod
    def _duplicate(incoming: Incoming, message_id: int, replies: list[Reply]) -> list[Reply]:
        DUPLICATES.labels(incoming.channel).inc()
        log.info("duplicate", extra={"fields": {"message_id": message_id}})
        return replies

    async def _answer(self, incoming: Incoming, stored: _Stored) -> list[Reply]:
        words = normalize(incoming.text).text
        text = rasa_text(incoming, words)
        replies: list[Reply] = []
        if text:
            context = ScreeningContext(
                language_code=incoming.hints.get("language_code"),
                calling_code=incoming.hints.get("calling_code"),
                conversation_language=stored.conversation_language,
            )
            if stored.case_open and button(incoming) is None:
                language = await run_in_threadpool(self._rescreen, stored.case_id, words, context)
            else:
                language, _ = detect_language(words, context)
            metadata = {"channel": incoming.channel, "language": language, **incoming.hints}
            try:
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
        await run_in_threadpool(self._store_replies, stored.message_id, replies)
        MESSAGES.labels(incoming.channel, "out").inc(len(replies))
        log.info(
            "answered",
            extra={"fields": {"message_id": stored.message_id, "replies": len(replies)}},
        )
        return replies


def _stored_replies(session: Session, message: Message) -> list[Reply] | None:
    """The replies already given to ``message``, or None if it was not processed yet."""
    if message.status != MessageStatus.PROCESSED.value:
        return None
    return [
        Reply(m.body, list((m.payload or {}).get("buttons") or []))
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
