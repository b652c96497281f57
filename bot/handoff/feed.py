"""The console's live feed: queue changes and new messages, as server-sent events.

Cases change in several processes (the action server queues them, the
gateway re-screens and relays, another gateway may take them), so the feed
reads the database: one poller per gateway process looks for new
``case_events`` and messages on open cases every ``interval`` seconds (and at
once when this process pokes it) and fans them out to every subscriber.
The tables are read by primary key, which is cheap on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from bot.db import session_scope
from bot.db.models import Case, CaseEvent, CaseStatus, Message

log = logging.getLogger(__name__)

#: Audit actions that do not change what a console shows.
QUIET_ACTIONS = frozenset({"viewed"})
HEARTBEAT_S = 15.0


@dataclass(frozen=True)
class FeedEvent:
    """One server-sent event: ``kind`` is ``queue`` or ``message``."""

    kind: str
    data: dict[str, Any]

    def encode(self) -> str:
        return f"event: {self.kind}\ndata: {json.dumps(self.data)}\n\n"


class Feed:
    """Polls the database for changes and fans them out to subscribers."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self._subscribers: set[asyncio.Queue[FeedEvent]] = set()
        self._wake = asyncio.Event()
        self._last_event = 0
        self._last_message = 0
        self._task: asyncio.Task[None] | None = None

    def _start_positions(self) -> tuple[int, int]:
        with session_scope() as session:
            last_event = session.execute(select(func.max(CaseEvent.id))).scalar() or 0
            last_message = session.execute(select(func.max(Message.id))).scalar() or 0
        return int(last_event), int(last_message)

    def _changes(self) -> list[FeedEvent]:
        events: list[FeedEvent] = []
        with session_scope() as session:
            rows = session.execute(
                select(CaseEvent.id, CaseEvent.case_id, CaseEvent.action)
                .where(CaseEvent.id > self._last_event)
                .order_by(CaseEvent.id)
                .limit(1000)
            ).all()
            for event_id, case_id, action in rows:
                self._last_event = event_id
                if action not in QUIET_ACTIONS:
                    events.append(FeedEvent("queue", {"case_id": case_id, "reason": action}))
            messages = session.execute(
                select(Message.id, Message.case_id, Case.status)
                .join(Case, Case.id == Message.case_id)
                .where(Message.id > self._last_message)
                .order_by(Message.id)
                .limit(1000)
            ).all()
            for message_id, case_id, status in messages:
                self._last_message = message_id
                if status != CaseStatus.BOT.value:
                    events.append(
                        FeedEvent("message", {"case_id": case_id, "message_id": message_id})
                    )
        return events

    async def start(self) -> None:
        self._last_event, self._last_message = await run_in_threadpool(self._start_positions)
        self._task = asyncio.create_task(self._run(), name="feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Look for changes now (this process just changed something)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                if self._subscribers:
                    for event in await run_in_threadpool(self._changes):
                        for queue in list(self._subscribers):
                            queue.put_nowait(event)
                else:
                    # Nobody listens: keep the positions current without fanning out.
                    self._last_event, self._last_message = await run_in_threadpool(
                        self._start_positions
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the feed must outlive a database hiccup
                log.warning("feed_poll_failed", extra={"fields": {"error": type(exc).__name__}})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()

    async def subscribe(self) -> AsyncIterator[str]:
        """Encoded server-sent events for one client, with heartbeats, until it leaves."""
        queue: asyncio.Queue[FeedEvent] = asyncio.Queue(maxsize=10000)
        self._subscribers.add(queue)
        try:
            yield ": connected\n\nretry: 2000\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_S)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield event.encode()
        finally:
            self._subscribers.discard(queue)
