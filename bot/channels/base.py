"""What a channel module (Telegram, SMS) gives the gateway.

A channel owns its routes (webhooks), opens its clients in :meth:`Channel.start`
and closes them in :meth:`Channel.stop`, hands every inbound message to the
:class:`~bot.channels.inbox.Inbox` (stored before it is answered), and sends
through :meth:`Channel.send` when the relay asks it to (see
:mod:`bot.channels.push` for how a send fails).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from bot.channels.inbox import Inbox


class Channel(Protocol):
    """A push channel the gateway runs."""

    name: str

    def routes(self) -> list[BaseRoute]:
        """The channel's HTTP routes (its webhooks)."""

    async def start(self, inbox: Inbox) -> None:
        """Opens clients and background work (polling); inbound goes to ``inbox``."""

    async def stop(self) -> None:
        """Closes what :meth:`start` opened."""

    async def send(self, address: str, text: str, buttons: list[dict[str, str]]) -> str | None:
        """Sends one message (see :class:`bot.channels.push.PushChannel`)."""
