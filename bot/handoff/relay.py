"""Delivers what Beacon writes to a person, on the channel they wrote on, in order.

Everything outbound (the bot's replies on push channels, responders'
messages) is stored ``pending`` first, so nothing is lost if a channel or the
gateway is down, then delivered:

- push channels (Telegram, SMS) implement :class:`~bot.channels.push.PushChannel`;
  :meth:`Relay.deliver` sends a case's pending messages oldest first, one case
  at a time. A message is marked ``sending`` before the channel's API is
  called and ``sent`` (with the channel's id) after; a transient error puts it
  back to ``pending`` with a later ``next_attempt_at`` (exponential backoff,
  or the channel's ``retry_after``), and later messages of the case wait
  behind it so the order holds. After ``max_attempts`` it is ``failed``.
- A message found ``sending`` at start-up was interrupted by a crash: the
  channel may or may not have delivered it, so it is never sent again (that
  could duplicate it) but marked ``failed`` with error ``interrupted``, which
  the console shows.
- A channel that says the person cannot be reached (they blocked the bot)
  marks the contact unreachable, which the console shows, and fails the
  message.
- The web chat is a pull channel: the person's page fetches its pending
  messages (:func:`collect_pulled`), which marks them ``delivered``.
- A person who paused (wrote "later", "busy" or "erase") gets nothing, not
  even a responder's reply, until they write again; the messages wait
  ``pending``. Only the marks of :mod:`bot.safety.state` go out meanwhile:
  the erase itself (Telegram deletes the chat's messages), the answer to the
  command, and the confirmation of a deletion, after which the person's data
  is deleted (:func:`bot.privacy.deletion.delete_person`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.channels.push import ErasingChannel, PushChannel, TransientSendError, UnreachableError
from bot.channels.telegram_limits import DELETABLE_FOR
from bot.db import session_scope
from bot.db.models import Case, CaseEvent, Contact, Direction, Message, MessageStatus, utcnow
from bot.handoff.queue import address_key
from bot.metrics import RELAYED
from bot.privacy.deletion import delete_person
from bot.safety.state import ERASE_JOB, GOES_OUT_WHEN_PAUSED, THEN_DELETE

log = logging.getLogger(__name__)

PENDING = MessageStatus.PENDING.value
SENDING = MessageStatus.SENDING.value


def mark_unreachable(
    session: Session, contact: Contact, case: Case | None, actor: str, channel: str
) -> None:
    """Marks ``contact`` unreachable (once, until they write again) and notes it on ``case``.

    The console shows the mark on every case of the contact; the event says
    when and on which channel it happened.
    """
    if contact.unreachable_since is not None:
        return
    contact.unreachable_since = utcnow()
    if case is not None:
        session.add(
            CaseEvent(
                case_id=case.id,
                actor=actor,
                action="unreachable",
                from_status=case.status,
                to_status=case.status,
                detail={"channel": channel},
            )
        )


@dataclass(frozen=True)
class _Due:
    message_id: int
    channel: str
    address: str
    text: str
    buttons: list[dict[str, str]]
    attempts: int
    safety: str | None = None
    contact_id: int = 0
    #: For an erase: the channel's ids of the chat's messages that may still be deleted.
    erase_ids: tuple[str, ...] = ()


@dataclass
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    max_attempts: int = 8
    base_s: float = 2.0
    cap_s: float = 600.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        backoff = min(self.cap_s, self.base_s * 2.0 ** max(0, attempts - 1))
        return float(max(backoff, retry_after or 0.0))


class Relay:
    """Delivers pending outbound messages on push channels, per case in order."""

    def __init__(
        self,
        channels: dict[str, PushChannel] | None = None,
        retry: RetryPolicy | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.channels = dict(channels or {})
        self.retry = retry or RetryPolicy()
        self._on_change = on_change or (lambda: None)
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    # --- database steps (each its own unit of work) ----------------------------------------

    def _claim_next(self, case_id: int, now: datetime) -> _Due | bool | None:
        """Marks the case's oldest pending message ``sending``.

        Returns it, None when nothing is pending, or False when the oldest one
        is waiting for its retry time (later ones wait behind it).
        """
        with session_scope() as session:
            case = session.get(Case, case_id)
            if case is None:
                return None  # deleted (the person asked for their data to be deleted)
            contact = session.get(Contact, case.contact_id)
            paused = contact.paused_at is not None
            pending = session.execute(
                select(Message)
                .where(
                    Message.case_id == case_id,
                    Message.direction == Direction.OUT.value,
                    Message.status == PENDING,
                    Message.channel.in_(list(self.channels)),
                )
                .order_by(Message.id)
                # Paused: held until the person writes again; only safety steps go out.
                .limit(PAUSED_LOOKAHEAD if paused else 1)
            ).scalars()
            if paused:
                pending = (m for m in pending if _mark(m) in GOES_OUT_WHEN_PAUSED)
            message = next(iter(pending), None)
            if message is None:
                return None
            if message.next_attempt_at is not None and message.next_attempt_at > now:
                return False
            mark = _mark(message)
            if contact.opted_out:
                message.status = MessageStatus.FAILED.value
                message.error = "opted_out"
                message.processed_at = now
                return _Due(message.id, message.channel, "", "", [], -1, mark, contact.id)
            erase_ids = _deletable(session, contact, now) if mark == ERASE_JOB else ()
            claimed = session.execute(
                update(Message)
                .where(Message.id == message.id, Message.status == PENDING)
                .values(status=SENDING, attempts=Message.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                return False  # another gateway process took it
            buttons = list((message.payload or {}).get("buttons") or [])
            return _Due(
                message.id,
                message.channel,
                contact.address or "",
                message.body,
                buttons,
                message.attempts + 1,
                mark,
                contact.id,
                erase_ids,
            )

    def _sent(self, message_id: int, provider_id: str | None) -> None:
        with session_scope() as session:
            message = session.get(Message, message_id)
            message.status = MessageStatus.SENT.value
            message.provider_id = provider_id
            message.error = None
            message.next_attempt_at = None
            message.processed_at = utcnow()
            contact = session.get(Contact, session.get(Case, message.case_id).contact_id)
            contact.unreachable_since = None

    def _retry_later(self, message_id: int, attempts: int, exc: TransientSendError) -> bool:
        """Back to pending with a later attempt; False (and failed) when out of attempts."""
        now = utcnow()
        with session_scope() as session:
            message = session.get(Message, message_id)
            message.error = exc.reason[:255]
            if attempts >= self.retry.max_attempts:
                message.status = MessageStatus.FAILED.value
                message.next_attempt_at = None
                message.processed_at = now
                return False
            message.status = PENDING
            wait = self.retry.delay(attempts, exc.retry_after)
            message.next_attempt_at = now + timedelta(seconds=wait)
            return True

    def _failed(self, message_id: int, error: str, unreachable: bool) -> None:
        now = utcnow()
        with session_scope() as session:
            message = session.get(Message, message_id)
            message.status = MessageStatus.FAILED.value
            message.error = error[:255]
            message.processed_at = now
            if unreachable:
                case = session.get(Case, message.case_id)
                contact = session.get(Contact, case.contact_id)
                mark_unreachable(session, contact, case, "relay", message.channel)

    # --- delivery --------------------------------------------------------------------------

    async def deliver(self, case_id: int) -> int:
        """Sends the case's due pending messages on its push channel; returns how many were sent.

        Web chat (a pull channel) is left to the person's page.
        """
        lock = self._locks.setdefault(case_id, asyncio.Lock())
        sent = 0
        async with lock:
            while True:
                due = await run_in_threadpool(self._claim_next, case_id, utcnow())
                if not isinstance(due, _Due):
                    return sent
                if due.attempts < 0:
                    RELAYED.labels(due.channel, "opted_out").inc()
                    await self._after(due, "opted_out")
                    continue
                outcome = await self._send(due)
                await self._after(due, outcome)
                self._on_change()
                if outcome == "sent":
                    sent += 1
                elif outcome == "retry":
                    return sent

    @staticmethod
    async def _after(due: _Due, outcome: str) -> None:
        """A deletion's confirmation went out, or cannot: the person's data is deleted now."""
        if due.safety == THEN_DELETE and outcome != "retry":
            await run_in_threadpool(delete_person, due.contact_id)

    async def _send(self, due: _Due) -> str:
        channel = self.channels[due.channel]
        fields: dict[str, object] = {"message_id": due.message_id, "attempt": due.attempts}
        try:
            if due.safety == ERASE_JOB:
                provider_id = None
                if isinstance(channel, ErasingChannel):
                    await channel.erase(due.address, list(due.erase_ids))
            else:
                provider_id = await channel.send(due.address, due.text, due.buttons)
        except TransientSendError as exc:
            again = await run_in_threadpool(self._retry_later, due.message_id, due.attempts, exc)
            outcome = "retry" if again else "failed"
            log.warning("relay_transient", extra={"fields": {**fields, "reason": exc.reason}})
        except UnreachableError as exc:
            await run_in_threadpool(self._failed, due.message_id, exc.reason, True)
            outcome = "unreachable"
            log.warning("relay_unreachable", extra={"fields": {**fields, "reason": exc.reason}})
        except Exception as exc:  # a channel's failure is recorded, never raised
            await run_in_threadpool(self._failed, due.message_id, type(exc).__name__, False)
            outcome = "failed"
            log.warning("relay_failed", extra={"fields": {**fields, "error": type(exc).__name__}})
        else:
            await run_in_threadpool(self._sent, due.message_id, provider_id)
            outcome = "sent"
        RELAYED.labels(due.channel, outcome).inc()
        return outcome

    def _cases_with_pending(self) -> list[int]:
        now = utcnow()
        with session_scope() as session:
            return list(
                session.execute(
                    select(Message.case_id)
                    .where(
                        Message.direction == Direction.OUT.value,
                        Message.status == PENDING,
                        Message.channel.in_(list(self.channels)),
                        or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
                    )
                    .distinct()
                ).scalars()
            )

    def recover_interrupted(self) -> int:
        """Marks messages left ``sending`` by a crash failed (``interrupted``); never re-sends."""
        with session_scope() as session:
            result = session.execute(
                update(Message)
                .where(Message.status == SENDING)
                .values(
                    status=MessageStatus.FAILED.value, error="interrupted", processed_at=utcnow()
                )
                .execution_options(synchronize_session=False)
            )
            count = int(result.rowcount or 0)
        if count:
            log.warning("relay_interrupted", extra={"fields": {"messages": count}})
        return count

    async def sweep(self) -> int:
        """Delivers every due pending message on push channels (written by the CLI,
        waiting for a retry, or left by a restart); returns how many were sent."""
        if not self.channels:
            return 0
        sent = 0
        for case_id in await run_in_threadpool(self._cases_with_pending):
            sent += await self.deliver(case_id)
        return sent

    async def run(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        """Sweeps until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as exc:  # the relay must outlive a database hiccup
                log.warning("relay_sweep_failed", extra={"fields": {"error": type(exc).__name__}})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


#: Pending messages looked at for a safety step while the person is paused.
PAUSED_LOOKAHEAD = 200


def _mark(message: Message) -> str | None:
    """The :mod:`bot.safety.state` mark of an outbound message, if any."""
    mark = (message.payload or {}).get("safety")
    return str(mark) if mark else None


def _deletable(session: Session, contact: Contact, now: datetime) -> tuple[str, ...]:
    """The channel's ids of the contact's messages (both ways) young enough to delete."""
    rows = session.execute(
        select(Message.provider_id)
        .join(Case, Case.id == Message.case_id)
        .where(
            Case.contact_id == contact.id,
            Message.channel == contact.channel,
            Message.provider_id.is_not(None),
            Message.created_at >= now - DELETABLE_FOR,
        )
    ).scalars()
    return tuple(sorted({part for row in rows for part in str(row).split(",") if part}))


def collect_pulled(session: Session, channel: str, address: str, after: int) -> list[Message]:
    """Outbound messages a pull channel's client has not fetched yet, oldest first.

    Returns the responders' messages (pending, or already delivered but with
    an id after ``after``) of every case of the contact, and marks them delivered.
    """
    contact = session.execute(
        select(Contact).where(
            Contact.channel == channel, Contact.address_hash == address_key(channel, address)
        )
    ).scalar_one_or_none()
    if contact is None or contact.paused_at is not None:
        # Paused: responders' messages wait until the person writes again.
        return []
    messages = list(
        session.execute(
            select(Message)
            .join(Case, Case.id == Message.case_id)
            .where(
                Case.contact_id == contact.id,
                Message.direction == Direction.OUT.value,
                Message.reply_to_id.is_(None),
                Message.id > after,
                Message.status.in_((MessageStatus.PENDING.value, MessageStatus.DELIVERED.value)),
            )
            .order_by(Message.id)
            .limit(100)
        ).scalars()
    )
    now = utcnow()
    for message in messages:
        if message.status == MessageStatus.PENDING.value:
            message.status = MessageStatus.DELIVERED.value
            message.processed_at = now
    session.flush()
    return messages
