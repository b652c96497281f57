"""The Telegram channel: the webhook people's messages arrive on, and what Beacon sends back.

The gateway owns the channel (Rasa's Telegram connector is not used). It
runs a python-telegram-bot :class:`~telegram.ext.Application` without an
updater, as in python-telegram-bot's custom-webhook example: updates come in
through ``POST /telegram/webhook`` (Telegram's webhook, or ``beacon telegram
poll`` forwarding what it long-polls, see :mod:`bot.channels.telegram_poll`),
and :meth:`TelegramChannel.send` sends through the same ``Bot``.

Inbound, in this order:

1. ``X-Telegram-Bot-Api-Secret-Token`` is compared with the configured
   secret in constant time before the body is read: missing or wrong, 403
   and nothing is read or stored.
2. The body (at most :data:`MAX_BODY` bytes) must be a JSON object with an
   integer ``update_id``; anything else is 400 with a message saying what is
   wrong.
3. The handlers (:mod:`bot.channels.telegram_updates`) store the update as a
   message keyed by its ``update_id`` (a redelivery is acknowledged and not
   processed again) and the inbox answers it in the background; only then is
   the webhook answered 200. If the update could not be stored (the database
   is down) the answer is 503, so Telegram delivers it again.

Quick erase (:meth:`TelegramChannel.erase`, called by the relay when the
person writes "erase"): every message of the private chat younger than 48
hours, theirs and Beacon's, is deleted with ``deleteMessages``.

Outbound (:meth:`TelegramChannel.send`, called by the relay): a text longer
than Telegram's 4,096 characters is split (:mod:`bot.channels.split`) and
sent as several messages in order, reply buttons as an inline keyboard on the
last one, link previews off. Telegram's errors become the relay's: 429 with
``retry_after`` and 5xx or a connection that never reached Telegram are
transient; a person who blocked the bot (403) or a chat Telegram does not
know is unreachable; anything else fails the message. A request that may
have reached Telegram but got no answer (read timeout) is not retried, so a
message is never sent twice. When a split message fails part-way, a retry
sends only the parts that did not go out.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes

from bot.channels.base import SAFE_TYPES
from bot.channels.push import TransientSendError, UnreachableError
from bot.channels.split import SplitSender
from bot.channels.telegram_limits import DELETE_BATCH
from bot.channels.telegram_poll import SECRET_HEADER, WEBHOOK_PATH, file_base_url
from bot.channels.telegram_updates import UpdateHandlers, update_kind
from bot.channels.webchat import BadRequest as BodyError
from bot.channels.webchat import json_object, read_body
from bot.metrics import REJECTED
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.channels.inbox import Inbox

log = logging.getLogger(__name__)

#: Telegram's limit on a message's text, in UTF-16 code units.
MAX_TEXT = 4096
#: An update is a few kilobytes; a megabyte is far more than any real one.
MAX_BODY = 1024 * 1024
#: Telegram's limit on a button's callback data, in bytes.
MAX_CALLBACK_DATA = 64
#: Seconds a call to the Bot API may take.
TIMEOUT_S = 15.0
#: How long the parts of a split message that did go out are remembered for a retry.
PARTIAL_TTL_S = 6 * 3600.0
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
#: Network failures after which the request cannot have reached Telegram: safe to retry.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteTimeout)

TelegramApp = Application[Any, Any, Any, Any, Any, Any]


class DeliveryUncertain(Exception):
    """Telegram may or may not have delivered the message (no answer came): not retried."""


class MalformedUpdate(ValueError):
    """The webhook body is not a Telegram update; the message says why."""


def parse_update(body: bytes) -> dict[str, Any]:
    """The update in a webhook body.

    Raises:
        MalformedUpdate: not JSON, not an object, or without an integer ``update_id``.
    """
    try:
        data = json_object(body, "a JSON object (a Telegram Update)")
    except BodyError as exc:
        raise MalformedUpdate(str(exc)) from exc
    update_id = data.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int) or update_id < 0:
        raise MalformedUpdate("'update_id' is required and must be a non-negative integer")
    return data


def keyboard(buttons: list[dict[str, str]]) -> InlineKeyboardMarkup | None:
    """Reply buttons as an inline keyboard (two a row when there are many, e.g. languages)."""
    keys = [
        InlineKeyboardButton(b["title"], callback_data=b["payload"])
        for b in buttons
        if b.get("title") and 0 < len(b.get("payload", "").encode()) <= MAX_CALLBACK_DATA
    ]
    if not keys:
        return None
    width = 2 if len(keys) > 4 else 1
    return InlineKeyboardMarkup([keys[i : i + width] for i in range(0, len(keys), width)])


def send_error(exc: TelegramError) -> Exception:
    """The relay's view of a failed Bot API call (see :mod:`bot.channels.push`)."""
    if isinstance(exc, RetryAfter):
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return TransientSendError("rate_limited", retry_after=seconds)
    if isinstance(exc, Forbidden):
        return UnreachableError("blocked")
    if isinstance(exc, BadRequest):
        if "chat not found" in exc.message.lower():
            return UnreachableError("chat_not_found")
        return exc
    if isinstance(exc, NetworkError):  # TimedOut too
        cause = exc.__cause__
        if cause is None and not isinstance(exc, TimedOut):
            return TransientSendError("server_error")  # Telegram answered 5xx
        if isinstance(cause, NEVER_SENT):
            return TransientSendError("network")
        return DeliveryUncertain(type(cause).__name__ if cause else "timed_out")
    return exc


class TelegramChannel:
    """The Telegram channel: ``POST /telegram/webhook`` in, :meth:`send` out."""

    name = "telegram"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._secret = settings.telegram_webhook_secret.encode()
        self._inbox: Inbox | None = None
        self._ready = False
        self._init_lock: asyncio.Lock | None = None
        #: Updates whose handler failed (found by the error handler), by update_id.
        self._failed: dict[int, str] = {}
        self._parts = SplitSender(MAX_TEXT, PARTIAL_TTL_S)
        self.application: TelegramApp = (
            ApplicationBuilder()
            .token(settings.telegram_token)
            .base_url(settings.telegram_api_base)
            .base_file_url(file_base_url(settings.telegram_api_base))
            .updater(None)
            .connect_timeout(TIMEOUT_S)
            .read_timeout(TIMEOUT_S)
            .write_timeout(TIMEOUT_S)
            .build()
        )
        self.application.add_handlers(UpdateHandlers(lambda: self._inbox).handlers())
        self.application.add_error_handler(self._on_error)

    # --- lifecycle ----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [Route(WEBHOOK_PATH, self.webhook, methods=["POST"])]

    async def start(self, inbox: Inbox) -> None:
        """Connects to the Bot API (``getMe``); if Telegram is unreachable, tries again later."""
        self._inbox = inbox
        await self._ensure_ready()

    async def stop(self) -> None:
        if self._ready:
            self._ready = False
            await self.application.shutdown()

    async def _ensure_ready(self) -> bool:
        """Initialises the application once; False (logged) while Telegram cannot be reached."""
        if self._ready:
            return True
        if self._init_lock is None:
            self._init_lock = asyncio.Lock()
        async with self._init_lock:
            if self._ready:
                return True
            try:
                await self.application.initialize()
            except TelegramError as exc:
                log.warning("telegram_unavailable", extra={"fields": {"error": type(exc).__name__}})
                return False
            self._ready = True
            log.info("telegram_ready", extra={"fields": {}})
            return True

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A handler failed: the webhook answers 503 so that Telegram delivers the update again."""
        error = type(context.error).__name__
        if isinstance(update, Update):
            self._failed[update.update_id] = error
        log.warning(
            "telegram_update_failed",
            extra={"fields": {"type": update_kind(update), "error": error}},
        )

    # --- inbound ------------------------------------------------------------------------------

    def _authentic(self, request: Request) -> bool:
        given = request.headers.get(SECRET_HEADER)
        if not self._secret or given is None:
            return False
        return hmac.compare_digest(given.encode(), self._secret)

    async def webhook(self, request: Request) -> Response:
        """``POST /telegram/webhook``: one update from Telegram (or the poller)."""
        if not self._authentic(request):
            REJECTED.labels(self.name, "forbidden").inc()
            return JSONResponse({"error": "forbidden"}, status_code=403)
        try:
            data = parse_update(await read_body(request, MAX_BODY))
        except BodyError as exc:
            REJECTED.labels(self.name, "too_large").inc()
            return JSONResponse({"error": str(exc)}, status_code=413)
        except MalformedUpdate as exc:
            REJECTED.labels(self.name, "malformed").inc()
            return JSONResponse({"error": str(exc)}, status_code=400)
        if not await self._ensure_ready():
            return _unavailable("Telegram is not reachable yet")
        try:
            update = Update.de_json(data, self.application.bot)
        except (KeyError, TypeError, ValueError, AttributeError):
            REJECTED.labels(self.name, "malformed").inc()
            return JSONResponse({"error": "not a valid Telegram update"}, status_code=400)
        await self.application.process_update(update)
        failed = self._failed.pop(update.update_id, None)
        if failed is not None:
            return _unavailable("the update could not be stored; send it again")
        return JSONResponse({"ok": True})

    # --- outbound -----------------------------------------------------------------------------

    async def send(self, address: str, text: str, buttons: list[dict[str, str]]) -> str | None:
        """Sends ``text`` to the chat ``address``, split when long; returns the last message id."""
        if not await self._ensure_ready():
            raise TransientSendError("telegram_unavailable")
        markup = keyboard(buttons)

        async def send_part(part: str, last: bool) -> str:
            try:
                sent = await self.application.bot.send_message(
                    chat_id=address,
                    text=part,
                    reply_markup=markup if last else None,
                    link_preview_options=NO_PREVIEW,
                )
            except TelegramError as exc:
                raise send_error(exc) from exc
            return str(sent.message_id)

        # Every part's id: an erase deletes them all.
        return ",".join(await self._parts.send_parts(address, text, send_part))

    async def erase(self, address: str, message_ids: list[str]) -> int:
        """Deletes messages of the private chat ``address`` (``deleteMessages``, 100 a call).

        Telegram lets a bot delete its own messages and the person's in a
        private chat for 48 hours; older or unknown ids are skipped by Telegram.

        Returns:
            How many ids were asked to be deleted.
        """
        if not await self._ensure_ready():
            raise TransientSendError("telegram_unavailable")
        ids = sorted({int(i) for i in message_ids if i.isdigit()})
        for start in range(0, len(ids), DELETE_BATCH):
            try:
                await self.application.bot.delete_messages(
                    chat_id=address, message_ids=ids[start : start + DELETE_BATCH]
                )
            except TelegramError as exc:
                raise send_error(exc) from exc
        return len(ids)

    async def fetch_attachment(self, attachment: dict[str, Any]) -> tuple[bytes, str]:
        """Downloads a photo, voice note or file a person sent (``getFile``, then the file).

        Returns:
            The bytes and a content type safe to serve (``application/octet-stream``
            unless it is a common image, audio, video or PDF type).
        """
        file_id = attachment.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise LookupError("no file to fetch")
        if not await self._ensure_ready():
            raise TransientSendError("telegram_unavailable")
        telegram_file = await self.application.bot.get_file(file_id)
        data = bytes(await telegram_file.download_as_bytearray())
        mime = str(attachment.get("mime_type") or "")
        return data, mime if mime in SAFE_TYPES else "application/octet-stream"


def _unavailable(reason: str) -> Response:
    return JSONResponse({"error": reason}, status_code=503, headers={"Retry-After": "5"})
