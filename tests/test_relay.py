"""What Beacon writes reaches the person on their channel: in order, once, with its status.

Covers the relay's contract with push channels (``bot/channels/push.py``):
order per case, retries with backoff that keep the order, unreachable people,
messages interrupted by a crash (never re-sent), SMS opt-outs.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels.push import TransientSendError, UnreachableError
from bot.console.auth import create_responder
from bot.db import session_scope
from bot.db.models import CaseEvent, Contact, Message, utcnow
from bot.handoff import casework, queue
from bot.handoff.casework import Serves
from bot.handoff.relay import Relay, RetryPolicy


class FakePush:
    """A push channel that records what it sends and fails as told, per text."""

    name = "telegram"

    def __init__(self, fail_on: str = "", errors: list[Exception] | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail_on = fail_on
        self.errors = list(errors or [])
        self.calls = 0

    async def send(self, address: str, text: str, buttons: list[dict[str, str]]) -> str | None:
        await asyncio.sleep(0)
        self.calls += 1
        if self.fail_on and self.fail_on in text:
            if self.errors:
                raise self.errors.pop(0)
            raise ConnectionError("channel down")
        self.sent.append((address, text))
        return f"tg-{len(self.sent)}"


def claimed_case(channel: str = "telegram") -> tuple[int, Serves]:
    with session_scope() as session:
        inbound = queue.record_inbound(
            session, channel=channel, address="chat-77", text="help me", external_id="m-1"
        )
        queue.escalate(
            session, inbound.contact.public_id, urgency="high", indicators=["violence"],
            language="en", reporter="self", channel=channel,
        )  # fmt: skip
        serves = Serves.of(create_responder(session, "ana", "correct horse battery"))
        case_id = inbound.case.id
    with session_scope() as session:
        casework.claim(session, case_id, serves)
    return case_id, serves


def statuses(case_id: int) -> list[tuple[str, str, str | None]]:
    with session_scope() as session:
        return [
            (m.body, m.status, m.provider_id)
            for m in session.execute(
                select(Message)
                .where(Message.case_id == case_id, Message.author_id.is_not(None))
                .order_by(Message.id)
            ).scalars()
        ]


@pytest.mark.asyncio
async def test_replies_are_sent_in_order_with_their_status(db_url: str) -> None:
    case_id, serves = claimed_case()
    for text in ("first", "second", "third"):
        with session_scope() as session:
            casework.reply(session, case_id, serves, text)
    assert [s[1] for s in statuses(case_id)] == ["pending"] * 3
    push = FakePush()
    relay = Relay({"telegram": push})
    # Two deliveries at once (two replies in quick succession) still send each once, in order.
    sent = await asyncio.gather(relay.deliver(case_id), relay.deliver(case_id))
    assert sum(sent) == 3
    assert push.sent == [("chat-77", "first"), ("chat-77", "second"), ("chat-77", "third")]
    assert statuses(case_id) == [
        ("first", "sent", "tg-1"),
        ("second", "sent", "tg-2"),
        ("third", "sent", "tg-3"),
    ]


@pytest.mark.asyncio
async def test_a_failed_send_is_recorded_and_does_not_block_the_rest(db_url: str) -> None:
    case_id, serves = claimed_case()
    for text in ("one", "two (fails)", "three"):
        with session_scope() as session:
            casework.reply(session, case_id, serves, text)
    push = FakePush(fail_on="fails")
    assert await Relay({"telegram": push}).sweep() == 2
    assert [(body, status) for body, status, _ in statuses(case_id)] == [
        ("one", "sent"),
        ("two (fails)", "failed"),
        ("three", "sent"),
    ]


@pytest.mark.asyncio
async def test_web_chat_messages_wait_for_the_page_to_fetch_them(db_url: str) -> None:
    case_id, serves = claimed_case(channel="webchat")
    with session_scope() as session:
        casework.reply(session, case_id, serves, "hello from the team")
    assert await Relay({"telegram": FakePush()}).sweep() == 0
    assert statuses(case_id) == [("hello from the team", "pending", None)]


def reply_all(case_id: int, serves: Serves, *texts: str) -> None:
    for text in texts:
        with session_scope() as session:
            casework.reply(session, case_id, serves, text)


def nth_reply(session: Session, case_id: int, n: int = 0) -> Message:
    """The case's ``n``-th responder message (bodies are encrypted: found by order)."""
    return (
        session.execute(
            select(Message)
            .where(Message.case_id == case_id, Message.author_id.is_not(None))
            .order_by(Message.id)
        )
        .scalars()
        .all()[n]
    )


def make_due_now(case_id: int) -> None:
    """The fake clock: every retry of the case is due now."""
    with session_scope() as session:
        for message in session.execute(select(Message).where(Message.case_id == case_id)).scalars():
            if message.next_attempt_at is not None:
                message.next_attempt_at = utcnow()


@pytest.mark.asyncio
async def test_a_transient_error_is_retried_later_and_keeps_the_order(db_url: str) -> None:
    case_id, serves = claimed_case()
    reply_all(case_id, serves, "one (flaky)", "two")
    push = FakePush(fail_on="flaky", errors=[TransientSendError("429", retry_after=30)])
    relay = Relay({"telegram": push})
    assert await relay.sweep() == 0
    # "two" waits behind "one": a person must never read the second message first.
    assert push.sent == []
    assert [(b, st) for b, st, _ in statuses(case_id)] == [
        ("one (flaky)", "pending"),
        ("two", "pending"),
    ]
    with session_scope() as session:
        first = nth_reply(session, case_id)
        waited = (first.next_attempt_at - utcnow()).total_seconds()
        assert first.attempts == 1
    assert 25 <= waited <= 30, "retry_after from the channel is honoured"
    assert await relay.sweep() == 0, "not before its time"
    make_due_now(case_id)
    push.fail_on = ""
    assert await relay.sweep() == 2
    assert [t for _, t in push.sent] == ["one (flaky)", "two"]


@pytest.mark.asyncio
async def test_backoff_doubles_and_gives_up_after_the_last_attempt(db_url: str) -> None:
    case_id, serves = claimed_case()
    reply_all(case_id, serves, "never (down)")
    push = FakePush(fail_on="down", errors=[TransientSendError("502")] * 3)
    relay = Relay({"telegram": push}, RetryPolicy(max_attempts=3, base_s=2, cap_s=600))
    delays = []
    for _ in range(3):
        await relay.sweep()
        with session_scope() as session:
            message = nth_reply(session, case_id)
            if message.next_attempt_at is not None:
                delays.append(round((message.next_attempt_at - utcnow()).total_seconds()))
        make_due_now(case_id)
    assert delays == [2, 4]
    assert statuses(case_id) == [("never (down)", "failed", None)]
    assert push.calls == 3


@pytest.mark.asyncio
async def test_a_person_who_blocked_the_bot_is_marked_unreachable(db_url: str) -> None:
    case_id, serves = claimed_case()
    reply_all(case_id, serves, "are you there (blocked)")
    push = FakePush(fail_on="blocked", errors=[UnreachableError("bot was blocked by the user")])
    assert await Relay({"telegram": push}).sweep() == 0
    assert [st for _, st, _ in statuses(case_id)] == ["failed"]
    with session_scope() as session:
        contact = session.execute(select(Contact)).scalar_one()
        assert contact.unreachable_since is not None
        assert session.execute(
            select(CaseEvent.action).where(CaseEvent.action == "unreachable")
        ).scalars().all() == ["unreachable"]
    # A later successful send (they unblocked) clears it.
    reply_all(case_id, serves, "hello again")
    assert await Relay({"telegram": FakePush()}).sweep() == 1
    with session_scope() as session:
        assert session.execute(select(Contact)).scalar_one().unreachable_since is None


@pytest.mark.asyncio
async def test_a_send_interrupted_by_a_crash_is_never_sent_again(db_url: str) -> None:
    case_id, serves = claimed_case()
    reply_all(case_id, serves, "in flight", "after")
    with session_scope() as session:
        first = nth_reply(session, case_id)
        first.status = "sending"  # the gateway died while the channel's API had it
    relay = Relay({"telegram": FakePush()})
    assert relay.recover_interrupted() == 1
    assert await relay.sweep() == 1
    assert relay.channels["telegram"].sent == [("chat-77", "after")]  # type: ignore[attr-defined]
    with session_scope() as session:
        first = session.get(Message, first.id)
        assert (first.status, first.error) == ("failed", "interrupted")


@pytest.mark.asyncio
async def test_nothing_is_sent_to_a_person_who_opted_out(db_url: str) -> None:
    case_id, serves = claimed_case()
    with session_scope() as session:
        session.execute(select(Contact)).scalar_one().opted_out = True
    reply_all(case_id, serves, "hello")
    push = FakePush()
    assert await Relay({"telegram": push}).sweep() == 0
    assert push.sent == []
    with session_scope() as session:
        message = nth_reply(session, case_id)
        assert (message.status, message.error) == ("failed", "opted_out")
