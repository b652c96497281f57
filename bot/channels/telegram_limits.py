"""Limits of the Telegram Bot API that more than the Telegram channel needs to know."""

from __future__ import annotations

from datetime import timedelta

#: Message ids in one ``deleteMessages`` call.
DELETE_BATCH = 100
#: How long after sending a message can be deleted (Telegram: 48 hours), with a margin.
DELETABLE_FOR = timedelta(hours=47, minutes=30)
