"""SLA paging: on-call responders are paged when an urgent case waits unclaimed.

A queued ``critical`` case that nobody has claimed ``BEACON_PAGE_CRITICAL_AFTER_S``
seconds (default 2 minutes) after it started waiting pages the on-call
responders; a ``high`` case after ``BEACON_PAGE_HIGH_AFTER_S`` (default 1 hour).
``medium`` and ``low`` cases are never paged. Until someone claims the case the
page repeats with a doubling delay that starts at the tier's grace time and is
capped at ``BEACON_PAGE_BACKOFF_MAX_S``: a critical case is paged at 2, 4, 8,
16, 32 minutes after it started waiting, then every 30 minutes. Claiming stops
the pages; a case released or transferred back to the queue gets a fresh
grace time (:func:`bot.handoff.casework.release`). A tier whose grace time is
0 is never paged.

Every gateway process runs a :class:`PagingService`; the database decides who
sends a page. :func:`due_pages` takes each due page with a compare-and-set
``UPDATE`` (the case must still be queued with the paging state that was read)
and, on PostgreSQL, reads the candidates ``FOR UPDATE SKIP LOCKED``; so two
gateways never send the same page twice. The page is committed (``pages_sent``,
the next due time and a ``paged`` audit event) *before* it is sent: a process
that dies in between loses that one page, never duplicates it, and the next
one follows at the backoff.

A page goes to every configured :class:`Pager` (Telegram group, SMS): one
pager failing does not stop the others. A page that reached no pager at all
is retried after at most :data:`RETRY_AFTER_S` seconds with the same number,
so a short outage of the channels neither loses it nor advances the backoff.

A page says only the urgency, how long the case has waited and the console's
address: never a message, a name, a phone number or a chat id. Logs carry
case ids, pager names and error types only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, false, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from starlette.concurrency import run_in_threadpool
from telegram import Bot, LinkPreviewOptions
from telegram.error import TelegramError

from bot.channels.twilio_http import TWILIO_API_BASE, sender, sync_client
from bot.db import session_scope
from bot.db.models import Case, CaseEvent, CaseStatus, utcnow
from bot.i18n import SOURCE_LANGUAGE, console_text
from bot.metrics import PAGES
from bot.settings import Settings, get_settings

log = logging.getLogger(__name__)

QUEUED = CaseStatus.QUEUED.value
#: The tiers that are paged; the others wait for the queue.
PAGED_TIERS = ("critical", "high")
#: The actor of the ``paged`` audit events.
ACTOR = "pager"
#: A page that reached no pager is tried again after at most this many seconds.
RETRY_AFTER_S = 60
#: Pages taken per run at most (the rest are due on the next run).
BATCH = 100
#: Seconds a Telegram or Twilio request may take.
REQUEST_TIMEOUT_S = 10.0


class PagingError(Exception):
    """A pager could not deliver a page (the message says how much, never to whom)."""


class Pager(Protocol):
    """A way to reach the on-call responders (a Telegram group, SMS)."""

    #: Short name for logs and metrics (``telegram``, ``sms``).
    name: str

    async def start(self) -> None:
        """Opens what the pager needs; must not raise when its service is down."""

    async def send(self, text: str) -> None:
        """Sends ``text`` to the on-call responders.

        Raises:
            Exception: any failure; the caller records it and goes on.
        """

    async def close(self) -> None:
        """Releases what :meth:`start` opened."""


@dataclass(frozen=True)
class Page:
    """One page taken by this process: case ``case_id`` is paged the ``n``-th time.

    Attributes:
        case_id: The case's id.
        urgency: The case's urgency tier (``critical`` or ``high``).
        n: Which page this is for the current wait (1 for the first).
        waited_s: Seconds the case has waited in the queue.
        next_page_at: When the case is due again if nobody claims it.
    """

    case_id: int
    urgency: str
    n: int
    waited_s: float
    next_page_at: datetime


@dataclass(frozen=True)
class PageResult:
    """What became of a page: the names of the pagers that sent it and that failed."""

    page: Page
    sent: tuple[str, ...]
    failed: tuple[str, ...]

    @property
    def delivered(self) -> bool:
        return bool(self.sent)


def grace_s(urgency: str, settings: Settings | None = None) -> int:
    """Seconds a case of ``urgency`` may wait unclaimed before its first page (0: never)."""
    settings = settings or get_settings()
    if urgency == "critical":
        return max(settings.page_critical_after_s, 0)
    if urgency == "high":
        return max(settings.page_high_after_s, 0)
    return 0


def backoff_s(urgency: str, n: int, settings: Settings | None = None) -> int:
    """Seconds from the ``n``-th page of a case to the next one.

    The delay doubles from the tier's grace time (critical: 120, 240, 480 ...)
    and is capped at ``BEACON_PAGE_BACKOFF_MAX_S`` (no cap when that is 0).
    """
    settings = settings or get_settings()
    delay = grace_s(urgency, settings) << min(max(n - 1, 0), 32)
    cap = settings.page_backoff_max_s
    return min(delay, cap) if cap > 0 else delay


def _due(now: datetime, settings: Settings) -> ColumnElement[bool]:
    """SQL condition: a queued case of a paged tier whose next page is due at ``now``."""
    tiers: list[ColumnElement[bool]] = []
    for urgency in PAGED_TIERS:
        grace = grace_s(urgency, settings)
        if grace <= 0:
            continue
        tiers.append(
            and_(
                Case.urgency == urgency,
                or_(
                    Case.next_page_at <= now,
                    and_(
                        Case.next_page_at.is_(None),
                        Case.waiting_since <= now - timedelta(seconds=grace),
                    ),
                ),
            )
        )
    if not tiers:
        return false()  # paging is off for every tier
    return and_(Case.status == QUEUED, or_(*tiers))


def _unchanged(column: Any, value: Any) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column.is_(None) if value is None else column == value
    return condition


def due_pages(
    session: Session, now: datetime, settings: Settings | None = None, limit: int = BATCH
) -> list[Page]:
    """Takes the pages due at ``now``: queued critical and high cases past their due time.

    A case is due at ``next_page_at`` if set, else when its tier's grace time
    after ``waiting_since`` has passed. For each due case, ``pages_sent`` is
    incremented, ``next_page_at`` moved on by :func:`backoff_s`, and a
    ``paged`` audit event written, by a compare-and-set ``UPDATE``: a case
    another process paged (or a responder claimed) in the meantime is skipped.
    The caller commits before sending the pages.

    Args:
        session: The unit of work; commit it before sending.
        now: The current time (aware).
        settings: The paging settings (default: the process's).
        limit: At most this many pages are taken.

    Returns:
        The pages this call took, oldest case first.
    """
    settings = settings or get_settings()
    query = (
        select(Case.id, Case.urgency, Case.pages_sent, Case.next_page_at, Case.waiting_since)
        .where(_due(now, settings))
        .order_by(Case.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Skip rows a responder is claiming right now; the CAS below settles the rest.
        query = query.with_for_update(skip_locked=True, of=Case)
    pages: list[Page] = []
    for case_id, urgency, pages_sent, next_page_at, waiting_since in session.execute(query).all():
        n = (pages_sent or 0) + 1
        next_at = now + timedelta(seconds=backoff_s(urgency, n, settings))
        result = session.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.status == QUEUED,
                Case.urgency == urgency,
                Case.pages_sent == pages_sent,
                _unchanged(Case.next_page_at, next_page_at),
                _unchanged(Case.waiting_since, waiting_since),
            )
            .values(pages_sent=n, next_page_at=next_at)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            continue  # another gateway paged it, or a responder took it
        session.add(
            CaseEvent(
                case_id=case_id,
                actor=ACTOR,
                action="paged",
                from_status=QUEUED,
                to_status=QUEUED,
                detail={"n": n},
            )
        )
        waited = (now - waiting_since).total_seconds() if waiting_since else 0.0
        pages.append(Page(case_id, urgency, n, max(waited, 0.0), next_at))
    session.flush()
    return pages


def retry_soon(session: Session, page: Page, now: datetime) -> bool:
    """Makes a page that reached no pager due again soon, with the same number.

    Only if the case is still as :func:`due_pages` left it (queued, not paged
    again, not claimed). Returns True if it was rescheduled.
    """
    delay = min(RETRY_AFTER_S, max((page.next_page_at - now).total_seconds(), 0.0))
    result = session.execute(
        update(Case)
        .where(
            Case.id == page.case_id,
            Case.status == QUEUED,
            Case.pages_sent == page.n,
            Case.next_page_at == page.next_page_at,
        )
        .values(pages_sent=page.n - 1, next_page_at=now + timedelta(seconds=delay))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)


def page_text(page: Page, settings: Settings | None = None) -> str:
    """The text of a page, in ``BEACON_PAGING_LANGUAGE``.

    Only the urgency, the minutes waited and the console's address: never a
    message, a name, a phone number or a chat id.
    """
    settings = settings or get_settings()

    def render(language: str) -> str:
        return console_text(
            language,
            "page_text",
            urgency=console_text(language, f"urgency_{page.urgency}"),
            minutes=max(1, round(page.waited_s / 60)),
            url=f"{settings.gateway_url}/console",
        )

    try:
        return render(settings.paging_language)
    except (KeyError, IndexError, ValueError):
        # A translation with broken placeholders must not cost a page.
        return render(SOURCE_LANGUAGE)


class TelegramPager:
    """Pages a Telegram chat (the responders' group) through the Bot API."""

    name = "telegram"

    def __init__(
        self, token: str, chat_id: str, base_url: str = "https://api.telegram.org/bot"
    ) -> None:
        """Builds the pager; nothing is sent or opened until :meth:`start`.

        Args:
            token: The bot's token (never logged).
            chat_id: The group's chat id (``-100...``) or ``@channel`` name.
            base_url: The Bot API base, the token is appended (a stand-in in tests).
        """
        self._bot = Bot(token, base_url=base_url)
        self._chat_id = chat_id

    async def start(self) -> None:
        """Opens the HTTP client and checks the token with ``getMe``.

        A failure is logged, not raised: the gateway starts anyway and every
        page is still tried.
        """
        try:
            await self._bot.initialize()
        except TelegramError as exc:
            log.warning("paging_telegram_unverified", extra={"fields": {"error": _kind(exc)}})

    async def send(self, text: str) -> None:
        """Sends ``text`` to the chat, without a link preview."""
        await self._bot.send_message(
            chat_id=self._chat_id,
            text=text,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            read_timeout=REQUEST_TIMEOUT_S,
            connect_timeout=REQUEST_TIMEOUT_S,
        )

    async def close(self) -> None:
        """Closes the HTTP client."""
        await self._bot.shutdown()


class SmsPager:
    """Pages on-call phone numbers by SMS through Twilio's Messages API."""

    name = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_: str,
        to: Sequence[str],
        api_base: str = TWILIO_API_BASE,
    ) -> None:
        """Builds the pager.

        Args:
            account_sid: The Twilio account SID.
            auth_token: The account's auth token (never logged).
            from_: The sending number (E.164), sender id or Messaging Service SID.
            to: The on-call numbers (E.164); never logged.
            api_base: Twilio's API base URL (a stand-in in tests).
        """
        self._client = sync_client(account_sid, auth_token, api_base, REQUEST_TIMEOUT_S)
        self._from = from_
        self._to = tuple(to)

    async def start(self) -> None:
        """Nothing to open: each request uses Twilio's pooled HTTP session."""

    def _send_one(self, number: str, text: str) -> None:
        self._client.messages.create(to=number, body=text, **sender(self._from))

    async def send(self, text: str) -> None:
        """Sends ``text`` to every on-call number (in worker threads, in parallel).

        Raises:
            PagingError: a number's message was not accepted, after all were tried.
        """
        results = await asyncio.gather(
            *(asyncio.to_thread(self._send_one, number, text) for number in self._to),
            return_exceptions=True,
        )
        failed = 0
        for index, result in enumerate(results):
            if isinstance(result, BaseException):
                failed += 1
                log.warning(
                    "page_sms_failed",
                    extra={
                        "fields": {
                            "recipient": index,  # its position in BEACON_PAGING_SMS_TO
                            "error": _kind(result),
                            "code": getattr(result, "code", None),
                        }
                    },
                )
        if failed:
            raise PagingError(f"{failed} of {len(self._to)} SMS not accepted")

    async def close(self) -> None:
        """Closes Twilio's HTTP session."""
        session = getattr(self._client.http_client, "session", None)
        if session is not None:
            session.close()


def _kind(exc: BaseException) -> str:
    """An error's type name: errors may quote numbers, tokens or texts, so never their text."""
    return type(exc).__name__


def pagers_from_settings(settings: Settings | None = None) -> list[Pager]:
    """The pagers the settings configure: Telegram if a token and chat are set, SMS if
    an account, a sender and at least one number are set."""
    settings = settings or get_settings()
    pagers: list[Pager] = []
    if settings.paging_telegram_token and settings.paging_telegram_chat_id:
        pagers.append(
            TelegramPager(
                settings.paging_telegram_token,
                settings.paging_telegram_chat_id,
                base_url=settings.telegram_api_base,
            )
        )
    if (
        settings.twilio_account_sid
        and settings.twilio_auth_token
        and settings.twilio_from
        and settings.paging_sms_to
    ):
        pagers.append(
            SmsPager(
                settings.twilio_account_sid,
                settings.twilio_auth_token,
                settings.twilio_from,
                settings.paging_sms_to,
                api_base=settings.twilio_api_base,
            )
        )
    return pagers


class PagingService:
    """Finds due pages and sends them to every pager, every ``paging_interval_s``."""

    def __init__(self, pagers: Sequence[Pager], settings: Settings | None = None) -> None:
        self.pagers = list(pagers)
        self.settings = settings or get_settings()

    def _take(self, now: datetime) -> list[Page]:
        with session_scope() as session:
            return due_pages(session, now, self.settings)

    def _retry_soon(self, page: Page, now: datetime) -> bool:
        with session_scope() as session:
            return retry_soon(session, page, now)

    async def _send(self, pager: Pager, page: Page, text: str) -> bool:
        try:
            await pager.send(text)
        except Exception as exc:  # one pager's failure never stops the others
            PAGES.labels(pager.name, "failed").inc()
            log.warning(
                "page_failed",
                extra={
                    "fields": {
                        "case_id": page.case_id,
                        "n": page.n,
                        "pager": pager.name,
                        "error": _kind(exc),
                    }
                },
            )
            return False
        PAGES.labels(pager.name, "sent").inc()
        return True

    async def run_once(self, now: datetime | None = None) -> list[PageResult]:
        """Takes the pages due at ``now`` (one committed unit of work) and sends them.

        Args:
            now: The current time (default: the clock); tests pass a fake one.

        Returns:
            What became of each page this process took.
        """
        if not self.pagers:
            return []
        now = now or utcnow()
        pages = await run_in_threadpool(self._take, now)
        results: list[PageResult] = []
        for page in pages:
            text = page_text(page, self.settings)
            outcomes = await asyncio.gather(*(self._send(p, page, text) for p in self.pagers))
            sent = tuple(p.name for p, ok in zip(self.pagers, outcomes, strict=True) if ok)
            failed = tuple(p.name for p, ok in zip(self.pagers, outcomes, strict=True) if not ok)
            fields: dict[str, Any] = {
                "case_id": page.case_id,
                "urgency": page.urgency,
                "n": page.n,
                "waited_s": round(page.waited_s),
                "sent": list(sent),
                "failed": list(failed),
            }
            if sent:
                log.info("paged", extra={"fields": fields})
            else:
                fields["retry"] = await run_in_threadpool(self._retry_soon, page, now)
                log.error("page_undelivered", extra={"fields": fields})
            results.append(PageResult(page, sent, failed))
        return results

    async def start(self) -> None:
        """Starts every pager (errors are logged: the others still page)."""
        results = await asyncio.gather(*(p.start() for p in self.pagers), return_exceptions=True)
        for pager, result in zip(self.pagers, results, strict=True):
            if isinstance(result, BaseException):
                log.warning(
                    "pager_start_failed",
                    extra={"fields": {"pager": pager.name, "error": _kind(result)}},
                )

    async def close(self) -> None:
        """Closes every pager (errors are logged)."""
        for pager in self.pagers:
            try:
                await pager.close()
            except Exception as exc:
                log.warning(
                    "pager_close_failed",
                    extra={"fields": {"pager": pager.name, "error": _kind(exc)}},
                )

    async def run(self, stop: asyncio.Event) -> None:
        """Starts the pagers, pages every ``paging_interval_s`` until ``stop`` is set, closes."""
        await self.start()
        log.info(
            "paging_on",
            extra={
                "fields": {
                    "pagers": [p.name for p in self.pagers],
                    "interval_s": self.settings.paging_interval_s,
                }
            },
        )
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
                except Exception as exc:  # paging must outlive a database hiccup
                    log.warning("paging_run_failed", extra={"fields": {"error": _kind(exc)}})
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), timeout=max(self.settings.paging_interval_s, 1)
                    )
        finally:
            await self.close()
