"""Channels: how people reach Beacon.

The web chat (``webchat``) is always on. Telegram (``telegram``) and SMS
(``sms``, through Twilio) are on when their credentials are set and off
otherwise; :func:`build_channels` builds the ones that are on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.channels.base import Channel
    from bot.settings import Settings


def build_channels(settings: Settings) -> list[Channel]:
    """The push channels that have credentials in ``settings``."""
    channels: list[Channel] = []
    if settings.telegram_enabled:
        from bot.channels.telegram import TelegramChannel

        channels.append(TelegramChannel(settings))
    if settings.sms_enabled:
        from bot.channels.sms import SmsChannel

        channels.append(SmsChannel(settings))
    return channels
