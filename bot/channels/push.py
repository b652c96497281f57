"""What a push channel (Telegram, SMS) offers the relay, and how its sends fail.

A push channel sends one message to one address and returns the channel's
id for it. It raises :class:`TransientSendError` when trying again later may
work (HTTP 429 with ``retry_after``, 5xx, a network error),
:class:`UnreachableError` when the person cannot be reached on this channel
(they blocked the bot, the number cannot receive), and anything else for a
permanent failure of this one message.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class TransientSendError(Exception):
    """The send may work later; ``retry_after`` is the channel's own hint, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class UnreachableError(Exception):
    """The person cannot be reached on this channel (blocked the bot, unknown number)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PushChannel(Protocol):
    """A channel Beacon sends on."""

    name: str

    async def send(self, address: str, text: str, buttons: list[dict[str, str]]) -> str | None:
        """Sends ``text`` (with reply ``buttons`` where the channel has them) to ``address``.

        Returns:
            The channel's id of the sent message (the last part, when split).

        Raises:
            TransientSendError: try again later.
            UnreachableError: the person cannot be reached on this channel.
        """


@runtime_checkable
class ErasingChannel(PushChannel, Protocol):
    """A push channel that can delete a chat's messages from the person's phone."""

    async def erase(self, address: str, message_ids: list[str]) -> int:
        """Deletes the messages ``message_ids`` of the chat ``address``; returns how many.

        Raises:
            TransientSendError: try again later.
            UnreachableError: the person cannot be reached on this channel.
        """
