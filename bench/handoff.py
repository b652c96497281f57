"""Handoff benchmarks: urgent message to the console's live feed, and "take next" at scale.

Usage:
    .venv/bin/python bench/handoff.py feed [messages]
    .venv/bin/python bench/handoff.py take-next [open_cases] [takes]   # needs PostgreSQL

``feed`` starts the real stack (`beacon up`, trained model required), logs a
responder into the console, opens the live feed (server-sent events) and
sends urgent web chat messages one at a time, each from a new person. It
measures from the moment a message is sent to the moment the feed announces
its case (``event: queue``, reason ``escalated``). Target: p99 <= 1 s.

``take-next`` fills a fresh PostgreSQL schema (``BEACON_TEST_DATABASE_URL``,
default postgresql://postgres@127.0.0.1:5432/test) with open cases of mixed
urgency, language and office, then times ``take_next`` (one unit of work:
the locked select, the update, the audit row and the commit) for a routed
responder. Target: p99 <= 20 ms with 10,000 open cases.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from queue import Empty, Queue

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.console import stats

URGENT = "help they took my passport and beat me, I am bleeding"
PASSWORD = "benchmark responder password"


def percentile(values: list[float], q: float) -> float:
    return stats.percentile(values, q) or 0.0


def _listen(url: str, cookies: httpx.Cookies, out: Queue[tuple[float, dict[str, object]]]) -> None:
    try:
        with (
            httpx.Client(cookies=cookies, timeout=None) as client,
            client.stream("GET", f"{url}/console/api/events") as response,
        ):
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "queue":
                    out.put((time.perf_counter(), json.loads(line[6:])))
    except httpx.TransportError:
        return  # the stack stopped at the end of the run


def feed(messages: int) -> None:
    from tests.e2e_stack import start_stack

    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp) / "var")
        try:
            stack.wait_healthy()
            stack.beacon("responder", "add", "bench", "--password-stdin", input=PASSWORD + "\n")
            client = httpx.Client(base_url=stack.url, follow_redirects=False, timeout=30)
            page = client.get("/console/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf, "no CSRF field on the login page"
            done = client.post(
                "/console/login",
                data={"username": "bench", "password": PASSWORD, "csrf": csrf.group(1)},
            )
            assert done.status_code == 303, done.text
            events: Queue[tuple[float, dict[str, object]]] = Queue()
            threading.Thread(
                target=_listen, args=(stack.url, client.cookies, events), daemon=True
            ).start()
            time.sleep(1.0)
            latencies = []
            for i in range(messages):
                sender = f"bench-{secrets.token_hex(4)}"
                started = time.perf_counter()
                httpx.post(
                    f"{stack.url}/webchat/messages",
                    json={"sender": sender, "text": URGENT},
                    timeout=60,
                ).raise_for_status()
                while True:
                    try:
                        at, data = events.get(timeout=10)
                    except Empty:
                        raise SystemExit(f"message {i}: no feed event within 10 s") from None
                    if data.get("reason") == "escalated":
                        latencies.append(at - started)
                        break
        finally:
            stack.stop()
    print(f"urgent message -> case in the live feed ({messages} messages, real stack):")
    print(
        f"  p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )


def take_next(open_cases: int, takes: int) -> None:
    from sqlalchemy import create_engine, insert, select, text

    base = os.environ.get("BEACON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(base, future=True)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    os.environ["BEACON_DATABASE_URL"] = url
    os.environ.setdefault("BEACON_VAR_DIR", tempfile.mkdtemp())
    try:
        from bot.db import dispose_all, session_scope
        from bot.db.migrate import upgrade
        from bot.db.models import Case, Contact, Responder
        from bot.handoff import casework, queue

        upgrade(url)
        now = datetime.now(timezone.utc)
        tiers = ("low", "medium", "high", "critical")
        languages = ("th", "my", "km", "id", "vi", "en", "zh", "tl")
        offices = ("KH", "MM", "LA", "TH", None)
        with session_scope() as session:
            session.execute(
                insert(Contact),
                [
                    {"public_id": f"p{i}", "channel": "telegram", "address_hash": f"h{i}"}
                    for i in range(open_cases)
                ],
            )
            ids = dict(session.execute(select(Contact.public_id, Contact.id)).all())
            rows = []
            for i in range(open_cases):
                urgency = tiers[0 if i % 10 < 4 else 1 if i % 10 < 7 else 2 if i % 10 < 9 else 3]
                waiting = now - timedelta(seconds=(i * 37) % 86400)
                rows.append(
                    {
                        "contact_id": ids[f"p{i}"],
                        "channel": "telegram",
                        "status": "queued",
                        "urgency": urgency,
                        "language": languages[i % len(languages)],
                        "office": offices[i % len(offices)],
                        "waiting_since": waiting,
                        "queue_key": queue.queue_key(urgency, waiting, 60),
                        "indicators": [],
                    }
                )
            session.execute(insert(Case), rows)
            session.execute(
                insert(Responder),
                [{"username": "bench", "display_name": "bench", "password_hash": "x",
                  "languages": ["th", "en"], "offices": ["KH", "TH"]}],
            )  # fmt: skip
            serves = casework.Serves.of(session.execute(select(Responder)).scalar_one())
        with admin.begin() as connection:
            connection.execute(text(f'ANALYZE "{schema}".cases'))
        timings = []
        for _ in range(takes):
            started = time.perf_counter()
            with session_scope() as session:
                casework.take_next(session, serves)
            timings.append(time.perf_counter() - started)
        dispose_all()
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    print(
        f"take next on PostgreSQL, {open_cases} open cases, {takes} takes (routed: th/en, KH/TH):"
    )
    print(
        f"  p50 {statistics.median(timings) * 1000:.1f} ms, "
        f"p99 {percentile(timings, 99) * 1000:.1f} ms, max {max(timings) * 1000:.1f} ms"
    )


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("feed", "take-next"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "feed":
        feed(int(sys.argv[2]) if len(sys.argv) > 2 else 50)
    else:
        take_next(
            int(sys.argv[2]) if len(sys.argv) > 2 else 10_000,
            int(sys.argv[3]) if len(sys.argv) > 3 else 500,
        )


if __name__ == "__main__":
    main()
