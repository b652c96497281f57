"""What a channel module (Telegram, SMS) gives the gateway.

A channel owns its routes (webhooks), opens its clients in :meth:`Channel.start`
and closes them in :meth:`Channel.stop`, hands every inbound message to the
:class:`~bot.channels.inbox.Inbox` (stored before it is answered), and sends
through :meth:`Channel.send` when the relay asks it to (see
:mod:`bot.channels.push` for how a send fails).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from bot.channels.inbox import Inbox


#: Content types a downloaded attachment is served as; anything else is a plain download.
SAFE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "audio/ogg",
        "audio/mpeg",
        "audio/mp4",
        "video/mp4",
        "video/webm",
        "application/pdf",
    }
)


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


class AttachmentSource(Protocol):
    """A channel that can fetch what a person sent (optional; the console uses it).

    ``GET /console/api/messages/{id}/attachment`` calls ``fetch_attachment``
    with the ``attachment`` reference the channel put in the message's
    :class:`~bot.conversation.Incoming` (never names, numbers or places: that
    reference is not encrypted).
    """

    async def fetch_attachment(self, attachment: dict[str, Any]) -> tuple[bytes, str]:
        """The file's bytes and a content type safe to serve (else ``application/octet-stream``).

        Raises:
            Exception: any failure (the channel is down, the file is gone); the console says so.
        """
