"""``beacon telegram poll``, ``set-webhook`` and ``info``: running the Telegram channel.

Webhook mode (a public ``https://`` URL): ``beacon telegram set-webhook``
registers ``<BEACON_PUBLIC_URL>/telegram/webhook`` with Telegram, with the
secret token the gateway checks, the update types Beacon handles, and
``drop_pending_updates=False`` (what waited while the webhook changed is
still delivered).

Polling mode (no public URL): :func:`poll` deletes any webhook, then
long-polls ``getUpdates`` and forwards each update, unchanged and in order, to
the local gateway's ``/telegram/webhook`` with the secret header: the same
handler as in webhook mode. The offset (which tells Telegram an update is
done) only moves past an update once the gateway answered it 200, i.e. once
it is stored; if the gateway or this process dies in between, Telegram hands
the update out again and the gateway recognises it by its ``update_id``. An
update the gateway rejects as malformed (400) is skipped; any other failure
is retried with backoff. ``beacon up`` runs this as a supervised process when
Telegram is on and ``BEACON_TELEGRAM_MODE`` is ``poll``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx
from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, TelegramError

from bot.settings import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
WEBHOOK_PATH = "/telegram/webhook"
#: The update types Beacon asks Telegram for (webhook and polling alike).
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]

#: Seconds Telegram holds a getUpdates call open when nothing is waiting.
POLL_TIMEOUT_S = 50
MAX_BACKOFF_S = 30.0


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row: 0.5, 1, 2 ... up to 30."""
    return min(MAX_BACKOFF_S, 0.5 * 2.0 ** min(failures - 1, 8))


def file_base_url(api_base: str) -> str:
    """The Bot API's file download base for ``api_base`` (``.../bot`` -> ``.../file/bot``)."""
    base = api_base.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("/bot")] + "/file/bot"
    return base + "/file/bot"


def make_bot(settings: Settings) -> Bot:
    """A Bot API client for the configured token and API base."""
    return Bot(
        settings.telegram_token,
        base_url=settings.telegram_api_base,
        base_file_url=file_base_url(settings.telegram_api_base),
    )


def local_webhook_url(settings: Settings) -> str:
    """The gateway's webhook on this machine (the poller never goes through the proxy)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    return f"http://{host}:{settings.port}{WEBHOOK_PATH}"


class Forwarder:
    """Long-polls Telegram and hands each update to the gateway, in order."""

    def __init__(
        self, settings: Settings, bot: Bot | None = None, http: httpx.AsyncClient | None = None
    ) -> None:
        self.settings = settings
        self.bot = bot or make_bot(settings)
        self.http = http or httpx.AsyncClient(timeout=30.0)
        self.url = local_webhook_url(settings)
        self.offset: int | None = None
        self.stopping = asyncio.Event()

    async def forward(self, update: dict[str, Any]) -> bool:
        """Posts one update to the gateway; True when it is done with (stored, or malformed)."""
        response = await self.http.post(
            self.url,
            json=update,
            headers={SECRET_HEADER: self.settings.telegram_webhook_secret},
        )
        if response.status_code == 200:
            return True
        if response.status_code in (400, 413):
            log.warning(
                "telegram_poll_rejected",
                extra={
                    "fields": {
                        "update_id": update.get("update_id"),
                        "status": response.status_code,
                    }
                },
            )
            return True  # it will never be accepted: do not block the ones behind it
        log.warning(
            "telegram_poll_gateway",
            extra={"fields": {"status": response.status_code}},
        )
        return False

    async def once(self, timeout: int = POLL_TIMEOUT_S) -> int:
        """One getUpdates call and the forwarding of what it returned; returns how many."""
        updates: tuple[Update, ...] = await self.bot.get_updates(
            offset=self.offset,
            timeout=timeout,
            allowed_updates=ALLOWED_UPDATES,
            read_timeout=timeout + 15,
        )
        done = 0
        for update in updates:
            if not await self.forward(update.to_dict()):
                raise ConnectionError("the gateway did not take the update")
            self.offset = update.update_id + 1
            done += 1
        return done

    async def prepare(self) -> None:
        """Checks the token (``getMe``) and deletes any webhook: a bot has one or the other."""
        await self.bot.initialize()
        await self.bot.delete_webhook(drop_pending_updates=False)
        log.info("telegram_polling", extra={"fields": {"gateway": self.url}})

    async def _unless_stopped(self, step: Coroutine[Any, Any, object]) -> bool:
        """Runs ``step``; False (and ``step`` cancelled) if :attr:`stopping` is set first."""
        work = asyncio.ensure_future(step)
        stop = asyncio.ensure_future(self.stopping.wait())
        finished, _ = await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        if work not in finished:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            return False
        stop.cancel()
        work.result()  # raises what the step raised
        return True

    async def run(self) -> None:
        """Polls until :attr:`stopping` is set; outlives Telegram's and the gateway's outages.

        Raises:
            InvalidToken: Telegram refused the token (nothing to retry).
        """
        failures = 0
        prepared = False
        while not self.stopping.is_set():
            try:
                if not prepared:
                    if not await self._unless_stopped(self.prepare()):
                        break
                    prepared = True
                if not await self._unless_stopped(self.once()):
                    break
                failures = 0
                continue
            except InvalidToken:
                raise
            except Conflict:
                # Another poller, or a webhook set meanwhile: Telegram serves one consumer.
                log.warning("telegram_poll_conflict", extra={"fields": {}})
                prepared = False
            except (TelegramError, httpx.HTTPError, ConnectionError) as exc:
                log.warning("telegram_poll_retry", extra={"fields": {"error": type(exc).__name__}})
            failures += 1
            delay = backoff(failures)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)

    async def aclose(self) -> None:
        await self.http.aclose()
        with contextlib.suppress(TelegramError, RuntimeError):
            await self.bot.shutdown()


async def _poll(settings: Settings) -> int:
    forwarder = Forwarder(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, forwarder.stopping.set)
    try:
        await forwarder.run()
    except InvalidToken:
        print(
            "beacon: Telegram refused BEACON_TELEGRAM_TOKEN (check it with BotFather)",
            file=sys.stderr,
        )
        return 2
    finally:
        await forwarder.aclose()
    return 0


def _telegram_is_on(settings: Settings) -> bool:
    if not settings.telegram_enabled:
        print(
            "beacon: Telegram is off: set BEACON_TELEGRAM_TOKEN (see .env.example)", file=sys.stderr
        )
    return settings.telegram_enabled


def _ask_telegram(settings: Settings, call: Callable[[Bot], Awaitable[str]], failed: str) -> int:
    """Runs one command's Bot API calls and prints what they found (or why they failed)."""
    if not _telegram_is_on(settings):
        return 2

    async def run() -> str:
        async with make_bot(settings) as bot:
            return await call(bot)

    try:
        found = asyncio.run(run())
    except TelegramError as exc:
        print(f"beacon: {failed}: {exc.message}", file=sys.stderr)
        return 1
    print(found)
    return 0


def poll(settings: Settings) -> int:
    """``beacon telegram poll``: forwards Telegram's updates to the local gateway until stopped."""
    if not _telegram_is_on(settings):
        return 2
    return asyncio.run(_poll(settings))


def set_webhook(settings: Settings) -> int:
    """``beacon telegram set-webhook``: Telegram posts updates to the public URL from now on."""
    if settings.telegram_enabled and not settings.public_url.startswith("https://"):
        print(
            "beacon: Telegram delivers webhooks to https:// URLs only. Set BEACON_PUBLIC_URL to "
            "the https address of this gateway, or use polling (BEACON_TELEGRAM_MODE=poll, "
            "started by `beacon up`).",
            file=sys.stderr,
        )
        return 2
    url = f"{settings.public_url}{WEBHOOK_PATH}"

    async def register(bot: Bot) -> str:
        await bot.set_webhook(
            url=url,
            secret_token=settings.telegram_webhook_secret,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
        return f"webhook set: {url} (secret token set, updates: {', '.join(ALLOWED_UPDATES)})"

    return _ask_telegram(settings, register, "Telegram refused the webhook")


def info(settings: Settings) -> int:
    """``beacon telegram info``: the bot's name, its webhook and what Telegram holds for it."""

    async def describe(bot: Bot) -> str:
        webhook = await bot.get_webhook_info()
        found = {
            "bot": f"@{bot.username}",
            "mode": settings.telegram_mode,
            "webhook_url": webhook.url or None,
            "pending_updates": webhook.pending_update_count,
            "last_error": webhook.last_error_message,
        }
        return "\n".join(f"{k:16} {v if v is not None else '-'}" for k, v in found.items())

    return _ask_telegram(settings, describe, "Telegram did not answer")


def main() -> None:
    """``python -m bot.channels.telegram_poll``: the poller as ``beacon up`` runs it."""
    from bot import logs
    from bot.settings import get_settings

    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    sys.exit(poll(settings))


if __name__ == "__main__":
    main()
