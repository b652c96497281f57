"""The push channels' inbound path: stored first, answered after, recovered on restart.

A Telegram or Twilio webhook is answered as soon as its message is stored
(:meth:`Inbox.receive`), so the provider never waits on Rasa and never
redelivers because Beacon was slow. The message is then processed in the
background: screened, answered by Rasa (or held while a person has the case),
its replies stored ``pending``, and the relay delivers them.

Nothing is lost in between: a message stays ``received`` until its replies
are stored in the same unit of work that marks it ``processed``. At start-up
(and every ``interval`` seconds, for messages Rasa could not answer)
:meth:`Inbox.recover` processes every ``received`` push message again, oldest
first. A redelivered update is found by its id (Telegram's ``update_id``,
Twilio's ``MessageSid``) and never processed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from datetime import timedelta

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bot.conversation import Accepted, Conversations, Incoming
from bot.db import session_scope
from bot.db.models import Case, Contact, Direction, Message, MessageStatus, utcnow
from bot.handoff.relay import Relay
from bot.metrics import INBOX
from bot.rasa_client import RasaUnavailable

log = logging.getLogger(__name__)


def stored_incoming(message_id: int) -> Incoming | None:
    """The inbound message as its channel delivered it, rebuilt from the database."""
    with session_scope() as session:
        message = session.get(Message, message_id)
        if message is None or message.direction != Direction.IN.value:
            return None
        contact = session.get(Contact, session.get(Case, message.case_id).contact_id)
        kept = message.payload or {}
        return Incoming(
            channel=message.channel,
            address=contact.address or "",
            text=message.body,
            external_id=message.external_id,
            payload=kept.get("button"),
            hints=dict(kept.get("hints") or {}),
            attachment=kept.get("attachment"),
        )


class Inbox:
    """Accepts push-channel messages and processes them in the background."""

    def __init__(self, conversations: Conversations, relay: Relay, channels: set[str]) -> None:
        self.conversations = conversations
        self.relay = relay
        self.channels = set(channels)
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    async def receive(self, incoming: Incoming) -> Accepted:
        """Stores the message and schedules its processing; returns at once.

        A redelivery (same channel message id) is acknowledged and not processed again.
        """
        accepted = await self.conversations.accept(incoming)
        if accepted.duplicate:
            INBOX.labels(incoming.channel, "duplicate").inc()
            log.info("inbox_duplicate", extra={"fields": {"message_id": accepted.message_id}})
            return accepted
        INBOX.labels(incoming.channel, "accepted").inc()
        self._schedule(accepted.message_id)
        return accepted

    def _schedule(self, message_id: int) -> None:
        if message_id in self._in_flight:
            return
        self._in_flight.add(message_id)
        task = asyncio.create_task(self.process(message_id), name=f"inbox-{message_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def process(self, message_id: int) -> None:
        """Answers the message and any earlier unanswered ones of the same person, in order.

        A person's messages are answered one at a time, oldest first, whatever
        order the background tasks run in; if one cannot be answered now (Rasa
        is down), the later ones wait behind it.
        """
        self._in_flight.add(message_id)
        try:
            contact_id = await run_in_threadpool(_contact_of, message_id)
            if contact_id is None:
                return
            lock = self._locks.setdefault(contact_id, asyncio.Lock())
            async with lock:
                for waiting in await run_in_threadpool(self._unanswered_of, contact_id):
                    if not await self._answer_one(waiting):
                        break
        finally:
            self._in_flight.discard(message_id)

    async def _answer_one(self, message_id: int) -> bool:
        """Answers one stored message and hands its replies to the relay; False if deferred."""
        incoming = await run_in_threadpool(stored_incoming, message_id)
        if incoming is None:
            return True
        try:
            await self.conversations.handle(incoming, push=True)
        except RasaUnavailable:
            INBOX.labels(incoming.channel, "deferred").inc()
            return False  # kept as received: recover() tries again
        except Exception as exc:  # never lose the message: it stays received
            INBOX.labels(incoming.channel, "deferred").inc()
            log.exception(
                "inbox_failed",
                extra={"fields": {"message_id": message_id, "error": type(exc).__name__}},
            )
            return False
        INBOX.labels(incoming.channel, "processed").inc()
        case_id = await run_in_threadpool(_case_of, message_id)
        if case_id is not None:
            await self.relay.deliver(case_id)
        return True

    def _unanswered_of(self, contact_id: int) -> list[int]:
        with session_scope() as session:
            return list(
                session.execute(
                    select(Message.id)
                    .join(Case, Case.id == Message.case_id)
                    .where(
                        Case.contact_id == contact_id,
                        Message.direction == Direction.IN.value,
                        Message.status == MessageStatus.RECEIVED.value,
                        Message.channel.in_(sorted(self.channels)),
                    )
                    .order_by(Message.id)
                ).scalars()
            )

    def _unprocessed(self, older_than_s: float) -> list[int]:
        before = utcnow() - timedelta(seconds=older_than_s)
        with session_scope() as session:
            return list(
                session.execute(
                    select(Message.id)
                    .where(
                        Message.direction == Direction.IN.value,
                        Message.status == MessageStatus.RECEIVED.value,
                        Message.channel.in_(sorted(self.channels)),
                        Message.created_at <= before,
                    )
                    .order_by(Message.id)
                    .limit(500)
                ).scalars()
            )

    async def recover(self, older_than_s: float = 0.0) -> int:
        """Processes every stored, unanswered push message (oldest first); returns how many."""
        if not self.channels:
            return 0
        found = await run_in_threadpool(self._unprocessed, older_than_s)
        ids = [i for i in found if i not in self._in_flight]
        for message_id in ids:
            await self.process(message_id)
        if ids:
            log.info("inbox_recovered", extra={"fields": {"messages": len(ids)}})
        return len(ids)

    async def run(self, stop: asyncio.Event, interval: float = 10.0) -> None:
        """Recovers at start, then retries deferred messages every ``interval`` seconds."""
        older_than = 0.0
        while not stop.is_set():
            try:
                await self.recover(older_than)
            except Exception as exc:  # outlive a database hiccup
                log.warning("inbox_recover_failed", extra={"fields": {"error": type(exc).__name__}})
            older_than = interval
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def drain(self, timeout: float = 5.0) -> None:
        """Waits (a little) for messages being processed, at shutdown."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


def _contact_of(message_id: int) -> int | None:
    with session_scope() as session:
        message = session.get(Message, message_id)
        if message is None:
            return None
        return int(session.get(Case, message.case_id).contact_id)


def _case_of(message_id: int) -> int | None:
    with session_scope() as session:
        message = session.get(Message, message_id)
        return None if message is None else int(message.case_id)
