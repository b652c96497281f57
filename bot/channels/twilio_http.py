"""Twilio REST clients for Beacon: quiet, with a timeout, and pointable at a stand-in.

The twilio library builds ``https://api.twilio.com/...`` URLs itself; when
``BEACON_TWILIO_API_BASE`` names another base (a stand-in in tests), the HTTP
clients here swap the scheme and host (and prefix a path) before each
request. The SMS channel uses the asynchronous client (aiohttp, so the event
loop never blocks on Twilio); SLA paging uses the synchronous one in worker
threads.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

#: Where the twilio library sends its requests.
TWILIO_API_BASE = "https://api.twilio.com"


def rebase(url: str, base: str) -> str:
    """``url`` (an ``api.twilio.com`` URL) moved onto ``base``, path and query kept."""
    target = urlsplit(base.rstrip("/"))
    parts = urlsplit(url)
    return urlunsplit(
        (target.scheme, target.netloc, target.path + parts.path, parts.query, parts.fragment)
    )


def sender(from_: str) -> dict[str, str]:
    """The Messages API parameter for ``BEACON_TWILIO_FROM``.

    A Messaging Service SID (``MG...``, needed for Advanced Opt-Out) goes in
    ``MessagingServiceSid``; a number or an alphanumeric sender id in ``From``.
    """
    return {"messaging_service_sid": from_} if from_.startswith("MG") else {"from_": from_}


def quiet_logger() -> logging.Logger:
    """The twilio library's request log, kept at WARNING.

    Twilio logs every request's URL (with the account SID) at INFO.
    """
    quiet = logging.getLogger("bot.twilio")
    quiet.setLevel(logging.WARNING)
    return quiet


class RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's synchronous HTTP client, sending to another base URL."""

    def __init__(self, base: str, timeout: float, logger: logging.Logger) -> None:
        super().__init__(timeout=timeout, logger=logger)
        self._base = base

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return super().request(method, rebase(url, self._base), *args, **kwargs)


class AsyncHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Twilio's asynchronous HTTP client with its timeout applied and an optional other base.

    The library's client passes each call's ``timeout`` (``None`` from the
    resource methods) to aiohttp, where ``None`` means no timeout at all: the
    client's own timeout is used instead.
    """

    def __init__(self, base: str, timeout: float, logger: logging.Logger) -> None:
        super().__init__(timeout=timeout, logger=logger)
        self._base = base.rstrip("/")

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if self._base != TWILIO_API_BASE:
            url = rebase(url, self._base)
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        return await super().request(method, url, *args, **kwargs)


def sync_client(account_sid: str, auth_token: str, api_base: str, timeout: float) -> Client:
    """A twilio ``Client`` for worker threads."""
    if api_base.rstrip("/") == TWILIO_API_BASE:
        http: TwilioHttpClient = TwilioHttpClient(timeout=timeout, logger=quiet_logger())
    else:
        http = RebasedHttpClient(api_base, timeout, quiet_logger())
    return Client(account_sid, auth_token, http_client=http)


def async_client(account_sid: str, auth_token: str, api_base: str, timeout: float) -> Client:
    """A twilio ``Client`` whose ``*_async`` methods run on the event loop.

    Call it with the loop running (it opens an aiohttp session); close it with
    :func:`close_async`.
    """
    http = AsyncHttpClient(api_base, timeout, quiet_logger())
    return Client(account_sid, auth_token, http_client=http)


async def close_async(client: Client) -> None:
    """Closes the aiohttp session of a client made by :func:`async_client`."""
    await client.http_client.close()
