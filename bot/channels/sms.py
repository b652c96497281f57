"""The SMS channel, through Twilio: the webhooks people's texts arrive on, and what Beacon sends.

The gateway owns the channel (Rasa's Twilio connector is not used).

Inbound, ``POST /twilio/sms`` (Twilio's messaging webhook), in this order:

1. A request without ``X-Twilio-Signature`` is refused (403) before its body
   is read. The body (at most :data:`MAX_BODY` bytes) must be a form
   (``application/x-www-form-urlencoded``, read with ``parse_qsl``), else 400.
2. The signature is checked with twilio's ``RequestValidator`` against the
   configured public URL (``BEACON_TWILIO_SMS_URL``, default
   ``<BEACON_PUBLIC_URL>/twilio/sms``): behind a proxy, the URL Twilio signed
   is not the one the gateway sees. Forged, 403 and nothing is stored.
3. ``MessageSid`` and ``From`` are required (400 with a message saying what
   is missing). The message is stored keyed by its ``MessageSid`` (a
   redelivery is acknowledged and not processed again) and the inbox answers
   it in the background; the webhook answers at once with empty TwiML
   (``<Response />``): replies go out through the REST API, not TwiML.

Carriers' keywords (:mod:`bot.channels.sms_inbound`): STOP (and STOPALL,
UNSUBSCRIBE, CANCEL, END, QUIT, ...) opts the person out: the message is kept,
the assistant does not read it, and nothing more is sent to them (Twilio
blocks it too, and sends the carriers' confirmation itself). START (START,
YES, UNSTOP) from a person who opted out opts them in again, silently (Twilio
confirms); from anyone else it is an ordinary message (a "yes" answers the
assistant's question). HELP and INFO get a short help text in the person's
language.

Outbound (:meth:`SmsChannel.send`, called by the relay): one message through
Twilio's Messages API with the asynchronous client, with ``StatusCallback``
set to ``POST /twilio/status`` (``BEACON_TWILIO_STATUS_URL``), whose
callbacks (signed and checked like the webhook) record ``delivered``,
``undelivered`` and ``failed`` on the message. Twilio itself splits a text
into SMS segments; a text over its 1,600-character limit is sent as several
messages. Errors become the relay's: 429, 5xx and a connection that never
reached Twilio are transient; 21610 (the person sent STOP) opts the person
out and is not retried; an invalid or unreachable number is unreachable; a
request that may have reached Twilio but got no answer is not retried (it
could send the SMS twice). Buttons are not sent: SMS variants of responses
say their choices in words (``domain.yml``, ``channel: sms``).

MMS media are kept as a reference (their API paths); a responder opens one
from the console, and :meth:`SmsChannel.fetch_attachment` fetches it from
Twilio then, with the account's credentials.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from bot.channels import sms_inbound
from bot.channels.base import SAFE_TYPES
from bot.channels.push import TransientSendError, UnreachableError
from bot.channels.sms_inbound import DELIVERY_ORDER, MEDIA_PATH, Keyword, MalformedWebhook
from bot.channels.split import SplitSender
from bot.channels.twilio_http import async_client, close_async, sender
from bot.channels.webchat import BadRequest as BodyError
from bot.channels.webchat import read_body
from bot.metrics import DELIVERY, INBOX, REJECTED
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.channels.inbox import Inbox

log = logging.getLogger(__name__)

SMS_PATH = "/twilio/sms"
STATUS_PATH = "/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"
#: Twilio's webhooks are a few kilobytes.
MAX_BODY = 64 * 1024
#: Twilio's limit on a message body, in characters.
MAX_TEXT = 1600
#: Seconds a call to Twilio's API may take.
TIMEOUT_S = 15.0
#: The largest medium fetched for the console (Twilio accepts up to 5 MB per MMS).
MAX_MEDIA_BYTES = 20 * 1024 * 1024
#: How long a status callback waits for the relay to record the message's SID.
STATUS_WAIT_S = 5.0
#: How long the parts of a split message that did go out are remembered for a retry.
PARTIAL_TTL_S = 6 * 3600.0
#: Twilio error codes: the person sent STOP; the number is not a (mobile) number.
UNSUBSCRIBED = 21610
INVALID_NUMBER = frozenset({21211, 21612, 21614})
#: Network failures after which the request cannot have reached Twilio: safe to retry.
NEVER_SENT = (aiohttp.ClientConnectorError,)
EMPTY_TWIML = str(MessagingResponse())


class DeliveryUncertain(Exception):
    """Twilio may or may not have accepted the message (no answer came): not retried."""


def send_error(exc: Exception) -> Exception:
    """The relay's view of a failed Messages API call (see :mod:`bot.channels.push`)."""
    if isinstance(exc, TwilioRestException):
        status, code = int(exc.status), exc.code
        if status == 429:
            return TransientSendError("rate_limited")
        if status >= 500:
            return TransientSendError("server_error")
        if code == UNSUBSCRIBED:
            return UnreachableError("opted_out")
        if code in INVALID_NUMBER:
            return UnreachableError("invalid_number")
    elif isinstance(exc, NEVER_SENT):
        return TransientSendError("network")
    elif isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError)):
        return DeliveryUncertain(type(exc).__name__)
    return exc


class SmsChannel:
    """The SMS channel: ``POST /twilio/sms`` and ``/twilio/status`` in, :meth:`send` out."""

    name = "sms"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._validator = RequestValidator(settings.twilio_auth_token)
        self._inbox: Inbox | None = None
        self._client: Client | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._split = SplitSender(MAX_TEXT, PARTIAL_TTL_S)
        self._sender = sender(settings.twilio_from)

    # --- lifecycle ----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route(SMS_PATH, self.webhook, methods=["POST"]),
            Route(STATUS_PATH, self.status, methods=["POST"]),
        ]

    async def start(self, inbox: Inbox) -> None:
        """Opens the Twilio and media clients (no request is made)."""
        self._inbox = inbox
        settings = self.settings
        self._client = async_client(
            settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base,
            TIMEOUT_S,
        )  # fmt: skip
        self._http = httpx.AsyncClient(
            auth=(settings.twilio_account_sid, settings.twilio_auth_token),
            follow_redirects=True,
            timeout=TIMEOUT_S,
        )
        if not settings.twilio_sms_url or not settings.twilio_status_url:
            log.warning(
                "sms_public_url_unset",
                extra={"fields": {"hint": "set BEACON_PUBLIC_URL or BEACON_TWILIO_SMS_URL"}},
            )
        log.info(
            "sms_ready",
            extra={"fields": {"status_callbacks": bool(settings.twilio_status_url)}},
        )

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        if self._client is not None:
            await close_async(self._client)
            self._client = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- inbound ------------------------------------------------------------------------------

    async def _signed_form(self, request: Request, public_url: str) -> MultiDict | Response:
        """The form of a request Twilio signed for ``public_url``, or the error response."""
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return _refused("forbidden", 403, "missing X-Twilio-Signature")
        try:
            body = await read_body(request, MAX_BODY)
            form = sms_inbound.parse_form(body, request.headers.get("content-type"))
        except BodyError as exc:
            return _refused("too_large", 413, str(exc))
        except MalformedWebhook as exc:
            return _refused("malformed", 400, str(exc))
        # Without a configured public URL, the URL as it reached the gateway (no proxy).
        if not self._validator.validate(public_url or str(request.url), form, signature):
            return _refused("forbidden", 403, "invalid X-Twilio-Signature")
        account = form.get("AccountSid")
        if account and account != self.settings.twilio_account_sid:
            return _refused("forbidden", 403, "another Twilio account")
        return form

    async def webhook(self, request: Request) -> Response:
        """``POST /twilio/sms``: one incoming SMS or MMS."""
        form = await self._signed_form(request, self.settings.twilio_sms_url)
        if isinstance(form, Response):
            return form
        try:
            incoming = sms_inbound.incoming_from(form, self.settings.twilio_api_base)
        except MalformedWebhook as exc:
            return _refused("malformed", 400, str(exc))
        inbox = self._inbox
        if inbox is None:
            return JSONResponse({"error": "not started"}, status_code=503)
        keyword = sms_inbound.keyword_of(incoming.text, form.get("OptOutType"))
        if keyword is Keyword.START and not await run_in_threadpool(
            sms_inbound.opted_out, incoming.address
        ):
            keyword = None  # "yes" from someone who never opted out: an ordinary message
        if keyword is None:
            await inbox.receive(incoming)
        else:
            result = await run_in_threadpool(sms_inbound.record_keyword, incoming, keyword)
            outcome = "duplicate" if result.duplicate else f"keyword_{keyword.value.lower()}"
            INBOX.labels(self.name, outcome).inc()
            log.info(
                "sms_keyword",
                extra={"fields": {"message_id": result.message_id, "keyword": keyword.value}},
            )
            if not result.duplicate:
                self._background(inbox.relay.deliver(result.case_id))
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def status(self, request: Request) -> Response:
        """``POST /twilio/status``: a status callback for a message Beacon sent."""
        form = await self._signed_form(request, self.settings.twilio_status_url)
        if isinstance(form, Response):
            return form
        try:
            sid = sms_inbound.required(form, "MessageSid")
            status = sms_inbound.required(form, "MessageStatus").lower()
        except MalformedWebhook as exc:
            return _refused("malformed", 400, str(exc))
        error_code = form.get("ErrorCode") or None
        deadline = time.monotonic() + STATUS_WAIT_S
        # The callback may come before the relay has recorded the SID Twilio answered with.
        while not await run_in_threadpool(sms_inbound.record_delivery, sid, status, error_code):
            if time.monotonic() > deadline:
                log.info("sms_status_unknown_message", extra={"fields": {"status": status}})
                return Response(status_code=204)
            await asyncio.sleep(0.2)
        DELIVERY.labels(self.name, status if status in DELIVERY_ORDER else "other").inc()
        return Response(status_code=204)

    def _background(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- outbound -----------------------------------------------------------------------------

    async def send(self, address: str, text: str, buttons: list[dict[str, str]]) -> str | None:
        """Sends ``text`` to the number ``address``; returns the (last) message SID."""
        client = self._client
        if client is None:
            raise TransientSendError("sms_not_started")
        extra: dict[str, Any] = dict(self._sender)
        if self.settings.twilio_status_url:
            extra["status_callback"] = self.settings.twilio_status_url

        async def send_part(part: str, last: bool) -> str:
            try:
                sent = await client.messages.create_async(to=address, body=part, **extra)
            except (TwilioRestException, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = send_error(exc)
                if isinstance(error, UnreachableError) and error.reason == "opted_out":
                    await run_in_threadpool(sms_inbound.opt_out_address, address)
                raise error from exc
            return str(sent.sid)

        return await self._split.send(address, text, send_part)

    async def fetch_attachment(self, attachment: dict[str, Any]) -> tuple[bytes, str]:
        """Downloads the (first) medium of an MMS from Twilio, with the account's credentials.

        Twilio answers with a redirect to a short-lived storage URL; the
        credentials are not sent there.

        Returns:
            The bytes and a content type safe to serve (``application/octet-stream``
            unless it is a common image, audio, video or PDF type).
        """
        media = attachment.get("media")
        first = media[0] if isinstance(media, list) and media else {}
        path = str(first.get("path") or "")
        found = MEDIA_PATH.match(path)
        if found is None or found.group(1) != self.settings.twilio_account_sid:
            raise LookupError("no medium to fetch")
        if self._http is None:
            raise TransientSendError("sms_not_started")
        async with self._http.stream("GET", self.settings.twilio_api_base + path) as response:
            response.raise_for_status()
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_MEDIA_BYTES:
                    raise ValueError("medium too large")
        mime = str(first.get("mime_type") or "").lower()
        return bytes(data), mime if mime in SAFE_TYPES else "application/octet-stream"


def _refused(reason: str, status: int, message: str) -> Response:
    REJECTED.labels("sms", reason).inc()
    return JSONResponse({"error": message}, status_code=status)
