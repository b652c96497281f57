"""Push-channel messages are stored before they are answered, and answered exactly once.

The inbox (``bot/channels/inbox.py``) with the real conversation code, a
stand-in Rasa on 127.0.0.1 and a push channel that records what it sends.
A "crash" is a message stored by one inbox that never got to answer it; a
new inbox (the restarted gateway) must answer it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from sqlalchemy import select

from bot.channels.inbox import Inbox
from bot.conversation import Conversations, Incoming
from bot.db import session_scope
from bot.db.models import Direction, Message
from bot.handoff.relay import Relay
from bot.rasa_client import RasaClient
from tests.standins import FakeRasa, free_port, serve

TOKEN = "test-internal-token"


class RecordingChannel:
    """A push channel that records every send, in order."""

    name = "telegram"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[dict[str, str]]]] = []

    async def send(self, address: str, text: str, buttons: list[dict[str, str]]) -> str | None:
        self.sent.append((address, text, buttons))
        return str(len(self.sent))


@dataclass
class Setup:
    rasa: FakeRasa
    url: str
    channel: RecordingChannel

    def inbox(self, client: RasaClient) -> Inbox:
        """A gateway process's inbox (a new one stands for a restart)."""
        relay = Relay({"telegram": self.channel})
        return Inbox(Conversations(client), relay, {"telegram"})


@pytest.fixture
def setup(db_url: str) -> Iterator[Setup]:
    rasa = FakeRasa(TOKEN)
    port = free_port()
    with serve(rasa.app(), port):
        yield Setup(rasa, f"http://127.0.0.1:{port}", RecordingChannel())


@pytest_asyncio.fixture
async def client(setup: Setup) -> AsyncIterator[RasaClient]:
    rasa_client = RasaClient(setup.url, TOKEN, timeout=5)
    yield rasa_client
    await rasa_client.aclose()


def hello(update_id: int, text: str = "hello") -> Incoming:
    return Incoming(
        channel="telegram",
        address="5550001",
        text=text,
        external_id=str(update_id),
        hints={"language_code": "th"},
    )


def inbound_statuses() -> list[str]:
    with session_scope() as session:
        return list(
            session.execute(
                select(Message.status)
                .where(Message.direction == Direction.IN.value)
                .order_by(Message.id)
            ).scalars()
        )


async def settle(inbox: Inbox) -> None:
    for _ in range(100):
        await asyncio.sleep(0.02)
        if not inbox._tasks:
            return
    await inbox.drain()


@pytest.mark.asyncio
async def test_a_message_is_stored_before_it_is_answered_then_answered_once(
    setup: Setup, client: RasaClient
) -> None:
    setup.rasa.delay = 0.3
    inbox = setup.inbox(client)
    accepted = await inbox.receive(hello(1))
    assert not accepted.duplicate
    # The webhook has its answer now; Rasa has not answered yet, the message is safe.
    assert inbound_statuses() == ["received"]
    assert setup.channel.sent == []
    await settle(inbox)
    assert inbound_statuses() == ["processed"]
    assert [text for _, text, _ in setup.channel.sent] == ["read: hello", "Is it safe?"]
    # Buttons reach the channel with the message they belong to.
    assert setup.channel.sent[1][2] == [{"title": "Yes", "payload": "/affirm"}]
    assert {address for address, _, _ in setup.channel.sent} == {"5550001"}
    # The channel's language prior was kept with the message and passed to Rasa.
    assert setup.rasa.calls[0]["metadata"]["language_code"] == "th"


@pytest.mark.asyncio
async def test_a_redelivered_update_is_acknowledged_and_not_answered_twice(
    setup: Setup, client: RasaClient
) -> None:
    setup.rasa.delay = 0.2
    inbox = setup.inbox(client)
    first = await inbox.receive(hello(7))
    again = await inbox.receive(hello(7))  # Telegram retries while we are still answering
    assert (first.duplicate, again.duplicate) == (False, True)
    await settle(inbox)
    later = await inbox.receive(hello(7))  # and once more after the answer went out
    await settle(inbox)
    assert later.duplicate
    assert len(setup.rasa.calls) == 1
    assert len(setup.channel.sent) == 2
    assert inbound_statuses() == ["processed"]


@pytest.mark.asyncio
async def test_after_a_crash_the_restarted_gateway_answers_exactly_once(
    setup: Setup, client: RasaClient
) -> None:
    crashed = setup.inbox(client)
    # The first process stored the message and died before answering it.
    await crashed.conversations.accept(hello(11, "they took my passport"))
    assert inbound_statuses() == ["received"]

    restarted = setup.inbox(client)
    # Telegram redelivers it while the new process recovers: still one answer.
    assert (await restarted.receive(hello(11, "they took my passport"))).duplicate
    assert await restarted.recover() == 1
    assert await restarted.recover() == 0
    await settle(restarted)
    assert inbound_statuses() == ["processed"]
    assert [t for _, t, _ in setup.channel.sent] == ["read: they took my passport", "Is it safe?"]
    assert len(setup.rasa.calls) == 1


@pytest.mark.asyncio
async def test_while_rasa_is_down_the_message_waits_and_is_answered_when_it_is_back(
    setup: Setup, client: RasaClient
) -> None:
    setup.rasa.fail = True
    inbox = setup.inbox(client)
    await inbox.receive(hello(21))
    await settle(inbox)
    assert inbound_statuses() == ["received"]
    assert setup.channel.sent == []
    setup.rasa.fail = False
    assert await inbox.recover() == 1
    assert inbound_statuses() == ["processed"]
    assert len(setup.channel.sent) == 2


@pytest.mark.asyncio
async def test_messages_from_one_person_are_answered_in_the_order_they_came(
    setup: Setup, client: RasaClient
) -> None:
    inbox = setup.inbox(client)
    for n, words in enumerate(["one", "two", "three"], start=100):
        await inbox.receive(hello(n, words))
    await settle(inbox)
    answered = [t for _, t, _ in setup.channel.sent if t.startswith("read: ")]
    assert answered == ["read: one", "read: two", "read: three"]
    assert [call["message"] for call in setup.rasa.calls] == ["one", "two", "three"]
