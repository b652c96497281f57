"""SLA paging: who is paged when, with what backoff, by which pager, saying what.

The clock is fake (every run gets ``now``); the database is real (SQLite and,
in CI, PostgreSQL); Telegram and Twilio are stand-ins on 127.0.0.1 that the
real python-telegram-bot and twilio libraries talk to.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.console.auth import create_responder
from bot.db import session_scope
from bot.db.models import Case, CaseEvent, Contact
from bot.handoff import casework, paging, queue
from bot.handoff.casework import Serves
from bot.handoff.paging import PagingService, SmsPager, TelegramPager
from bot.settings import load_settings
from tests.standins import (
    FakeRasa,
    FakeTelegram,
    FakeTwilio,
    RecordingPager,
    fake_actions_app,
    free_port,
    serve,
)

T0 = datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc)
TG_TOKEN = "7000000001:AAH-test-token"
TG_CHAT = "-1001234567890"
TW_SID = "AC" + "0" * 31 + "1"
TW_TOKEN = "twilio-test-auth-token"
TW_FROM = "+15005550006"
ON_CALL = ("+66811111111", "+855122222222")


def s(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def make_case(n: int, urgency: str, waiting_since: datetime = T0, status: str = "queued") -> int:
    with session_scope() as session:
        contact = queue.get_or_create_contact(session, "webchat", f"person-{n}")
        case = Case(
            contact_id=contact.id,
            channel="webchat",
            status=status,
            urgency=urgency,
            language="en",
            waiting_since=waiting_since,
        )
        queue.requeue(case)
        session.add(case)
        session.flush()
        return int(case.id)


def make_responder(username: str) -> Serves:
    with session_scope() as session:
        return Serves.of(create_responder(session, username, "correct horse battery"))


def paged_at(service: PagingService, now: datetime) -> list[int]:
    """Runs the pager at ``now``; the ids of the cases it paged."""
    return [result.page.case_id for result in asyncio.run(service.run_once(now))]


def paging_state(case_id: int) -> tuple[int, datetime | None]:
    with session_scope() as session:
        case = session.get(Case, case_id)
        return case.pages_sent, case.next_page_at


def paged_events(case_id: int) -> list[tuple[str, dict]]:
    with session_scope() as session:
        return [
            (e.actor, e.detail)
            for e in session.execute(
                select(CaseEvent)
                .where(CaseEvent.case_id == case_id, CaseEvent.action == "paged")
                .order_by(CaseEvent.id)
            ).scalars()
        ]


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured log record with its structured fields, as one text."""
    return "\n".join(
        f"{record.getMessage()} {getattr(record, 'fields', '')}" for record in caplog.records
    )


def pages_metric(pager: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("beacon_pages_total", {"pager": pager, "outcome": outcome})
    return value or 0.0


def test_backoff_doubles_from_the_tiers_grace_and_is_capped(db_url: str) -> None:
    assert [paging.backoff_s("critical", n) for n in range(1, 8)] == [
        120, 240, 480, 960, 1800, 1800, 1800,
    ]  # fmt: skip
    assert [paging.backoff_s("high", n) for n in range(1, 3)] == [1800, 1800]
    assert paging.grace_s("medium") == paging.grace_s("low") == 0


def test_critical_is_paged_after_two_minutes_then_with_backoff_until_claimed(db_url: str) -> None:
    case_id = make_case(1, "critical")
    pager = RecordingPager()
    service = PagingService([pager])
    assert paged_at(service, s(119)) == [], "not before the grace time"
    # First page at 2 min, then +2, +4, +8, +16 min, then every 30 min (the cap).
    due = [120, 240, 480, 960, 1920, 3720, 5520]
    for n, at in enumerate(due, start=1):
        assert paged_at(service, s(at - 1)) == [], f"page {n} not before it is due"
        assert paged_at(service, s(at)) == [case_id], f"page {n} at {at} s"
        assert paged_at(service, s(at)) == [], "never twice for one due time"
        assert paging_state(case_id) == (n, s(at + paging.backoff_s("critical", n)))
    assert len(pager.texts) == len(due)

    ana = make_responder("ana")
    with session_scope() as session:
        casework.claim(session, case_id, ana, now=s(5600))
    assert paging_state(case_id) == (0, None)
    assert paged_at(service, s(86400)) == [], "a claimed case is never paged"

    # Released: a fresh grace time from the release, then the backoff from the start.
    with session_scope() as session:
        casework.release(session, case_id, ana, now=s(90000))
    assert paged_at(service, s(90119)) == []
    assert paged_at(service, s(90120)) == [case_id]
    assert paging_state(case_id) == (1, s(90240))
    assert paged_at(service, s(90240)) == [case_id]

    # Resolved: never paged again.
    with session_scope() as session:
        casework.resolve(session, case_id, make_responder("ben"), now=s(90300))
    assert paged_at(service, s(200000)) == []

    events = paged_events(case_id)
    assert [detail["n"] for _actor, detail in events] == [1, 2, 3, 4, 5, 6, 7, 1, 2]
    assert {actor for actor, _detail in events} == {"pager"}


def test_a_transferred_case_gets_a_fresh_grace_time(db_url: str) -> None:
    case_id = make_case(1, "critical")
    service = PagingService([RecordingPager()])
    assert paged_at(service, s(120)) == [case_id]
    ana = make_responder("ana")
    make_responder("ben")
    with session_scope() as session:
        casework.claim(session, case_id, ana, now=s(200))
        casework.transfer(session, case_id, ana, to_responder="ben", now=s(300))
    assert paged_at(service, s(419)) == []
    assert paged_at(service, s(420)) == [case_id]
    assert paging_state(case_id)[0] == 1


def test_high_is_paged_after_an_hour_medium_and_low_never(db_url: str) -> None:
    week_ago = T0 - timedelta(days=7)
    high = make_case(1, "high")
    medium = make_case(2, "medium", week_ago)
    low = make_case(3, "low", week_ago)
    bot_critical = make_case(4, "critical", week_ago, status="bot")
    service = PagingService([RecordingPager()])
    assert paged_at(service, s(120)) == []
    assert paged_at(service, s(3599)) == []
    assert paged_at(service, s(3600)) == [high]
    assert paging_state(high) == (1, s(3600 + 1800)), "high repeats at the 30 min cap"
    assert paged_at(service, s(5400)) == [high]
    assert paged_at(service, s(86400 * 30)) == [high]
    for never in (medium, low, bot_critical):
        assert paging_state(never) == (0, None)
        assert paged_events(never) == []


def test_a_case_whose_urgency_rises_to_critical_is_paged_by_the_critical_clock(
    db_url: str,
) -> None:
    case_id = make_case(1, "medium")
    service = PagingService([RecordingPager()])
    assert paged_at(service, s(600)) == []
    with session_scope() as session:
        case = session.get(Case, case_id)
        case.urgency = "critical"
    assert paged_at(service, s(600)) == [case_id], "it has waited 10 min, more than 2"


def test_a_tier_with_grace_zero_is_never_paged(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_PAGE_HIGH_AFTER_S", "0")
    settings = load_settings()
    high = make_case(1, "high")
    critical = make_case(2, "critical")
    service = PagingService([RecordingPager()], settings)
    assert paged_at(service, s(86400)) == [critical]
    assert paging_state(high) == (0, None)


def test_a_page_says_nothing_about_the_person(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BEACON_PUBLIC_URL", "https://beacon.example.org")
    settings = load_settings()
    secret_bits = ["Somchai", "Jaidee", "+66 81 234 5678", "812345678", "KK Park", "98765432"]
    with session_scope() as session:
        inbound = queue.record_inbound(
            session,
            channel="telegram",
            address="98765432",
            text="I am Somchai Jaidee, call my sister +66 81 234 5678, they beat me in KK Park",
            external_id="tg-1",
        )
        case = queue.escalate(
            session,
            inbound.contact.public_id,
            urgency="critical",
            indicators=["violence"],
            language="th",
            reporter="self",
            channel="telegram",
            country="MM",
            location="KK Park, building 7",
        )
        case_id, waiting_since = case.id, case.waiting_since
    pagers = [RecordingPager("telegram"), RecordingPager("sms")]
    service = PagingService(pagers, settings)
    with caplog.at_level(logging.DEBUG):
        results = asyncio.run(service.run_once(waiting_since + timedelta(seconds=150)))
    assert [r.page.case_id for r in results] == [case_id]
    texts = pagers[0].texts + pagers[1].texts
    assert (
        texts
        == [
            "Beacon: a Critical case has waited 2 min without a responder. "
            "Open https://beacon.example.org/console"
        ]
        * 2
    )
    log_text = logged(caplog)
    for bit in secret_bits:
        assert all(bit not in text for text in texts), bit
        assert bit not in log_text, bit
    assert f"'case_id': {case_id}" in log_text


def test_the_page_text_follows_the_paging_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEACON_PUBLIC_URL", "https://beacon.example.org")
    page = paging.Page(1, "high", 1, 3600.0, s(0))
    monkeypatch.setenv("BEACON_PAGING_LANGUAGE", "id")
    indonesian = paging.page_text(page, load_settings())
    assert "60 menit" in indonesian and indonesian.endswith("https://beacon.example.org/console")
    monkeypatch.setenv("BEACON_PAGING_LANGUAGE", "xx")
    assert paging.page_text(page, load_settings()) == (
        "Beacon: a High case has waited 60 min without a responder. "
        "Open https://beacon.example.org/console"
    ), "a language without a catalog falls back to English"


def test_a_broken_translation_falls_back_to_english(monkeypatch: pytest.MonkeyPatch) -> None:
    real = paging.console_text

    def broken(language: str | None, key: str, **values: object) -> str:
        if language == "th" and key == "page_text":
            raise KeyError("minuts")
        return real(language, key, **values)

    monkeypatch.setattr(paging, "console_text", broken)
    monkeypatch.setenv("BEACON_PAGING_LANGUAGE", "th")
    text = paging.page_text(paging.Page(1, "critical", 1, 180.0, s(0)), load_settings())
    assert text.startswith("Beacon: a Critical case has waited 3 min")


def test_two_gateways_never_send_the_same_page_twice(db_url: str) -> None:
    ids = {make_case(n, ("critical", "high")[n % 2]) for n in range(40)}
    first, second = RecordingPager("one"), RecordingPager("two")
    service_a, service_b = PagingService([first]), PagingService([second])

    async def both(now: datetime) -> list[int]:
        a, b = await asyncio.gather(service_a.run_once(now), service_b.run_once(now))
        return [r.page.case_id for r in (*a, *b)]

    paged = asyncio.run(both(s(3600)))
    assert sorted(paged) == sorted(ids), "every due case paged exactly once"
    assert len(first.texts) + len(second.texts) == 40

    # Eight workers taking pages at once, at every later due time.
    def take(now: datetime) -> list[int]:
        with session_scope() as session:
            return [page.case_id for page in paging.due_pages(session, now)]

    for now in (s(3600 + 1800), s(3600 + 3600)):
        with ThreadPoolExecutor(max_workers=8) as pool:
            taken = [i for result in pool.map(take, [now] * 8) for i in result]
        assert sorted(taken) == sorted(ids)
    with session_scope() as session:
        events = session.execute(
            select(CaseEvent.case_id, CaseEvent.detail).where(CaseEvent.action == "paged")
        ).all()
    assert len(events) == 120
    assert sorted((case_id, detail["n"]) for case_id, detail in events) == sorted(
        (case_id, n) for case_id in ids for n in (1, 2, 3)
    )


def test_a_page_that_reached_no_pager_is_retried_soon_with_the_same_number(
    db_url: str,
) -> None:
    case_id = make_case(1, "critical")
    pager = RecordingPager()
    pager.fail = True
    service = PagingService([pager])
    before = pages_metric("recording", "failed")
    (result,) = asyncio.run(service.run_once(s(1920)))  # the case would be on page 1
    assert result.sent == () and result.failed == ("recording",)
    assert pages_metric("recording", "failed") == before + 1
    assert paging_state(case_id) == (0, s(1920 + 60)), "retried in a minute, backoff kept"
    assert paged_at(service, s(1979)) == []
    pager.fail = False
    assert paged_at(service, s(1980)) == [case_id]
    assert paging_state(case_id) == (1, s(1980 + 120))
    assert [detail["n"] for _actor, detail in paged_events(case_id)] == [1, 1]


def test_a_page_that_failed_is_not_retried_once_the_case_is_claimed(db_url: str) -> None:
    case_id = make_case(1, "critical")

    class ClaimingPager(RecordingPager):
        async def send(self, text: str) -> None:
            # A responder takes the case while the page is on its way.
            def claim() -> None:
                with session_scope() as session:
                    casework.claim(session, case_id, make_responder("ana"), now=s(121))

            await asyncio.to_thread(claim)
            raise ConnectionError("down")

    service = PagingService([ClaimingPager()])
    (result,) = asyncio.run(service.run_once(s(120)))
    assert not result.delivered
    assert paging_state(case_id) == (0, None)


@pytest.fixture
def telegram() -> Iterator[tuple[FakeTelegram, str]]:
    fake = FakeTelegram(TG_TOKEN, TG_CHAT)
    port = free_port()
    with serve(fake.app(), port):
        yield fake, f"http://127.0.0.1:{port}/bot"


@pytest.fixture
def twilio() -> Iterator[tuple[FakeTwilio, str]]:
    fake = FakeTwilio(TW_SID, TW_TOKEN)
    port = free_port()
    with serve(fake.app(), port):
        yield fake, f"http://127.0.0.1:{port}"


@pytest.fixture
def paging_env(
    monkeypatch: pytest.MonkeyPatch,
    telegram: tuple[FakeTelegram, str],
    twilio: tuple[FakeTwilio, str],
) -> None:
    """Both pagers configured, pointing at the stand-ins."""
    for name, value in {
        "BEACON_PUBLIC_URL": "https://beacon.example.org",
        "BEACON_PAGING_TELEGRAM_TOKEN": TG_TOKEN,
        "BEACON_PAGING_TELEGRAM_CHAT_ID": TG_CHAT,
        "BEACON_TELEGRAM_API_BASE": telegram[1],
        "BEACON_TWILIO_API_BASE": twilio[1],
        "BEACON_TWILIO_ACCOUNT_SID": TW_SID,
        "BEACON_TWILIO_AUTH_TOKEN": TW_TOKEN,
        "BEACON_TWILIO_FROM": TW_FROM,
        "BEACON_PAGING_SMS_TO": ",".join(ON_CALL),
    }.items():
        monkeypatch.setenv(name, value)


async def test_telegram_pager_sends_through_the_bot_api(
    telegram: tuple[FakeTelegram, str],
) -> None:
    fake, base = telegram
    pager = TelegramPager(TG_TOKEN, TG_CHAT, base_url=base)
    await pager.start()
    await pager.send("Beacon: test page")
    await pager.close()
    assert fake.calls == ["getMe", "sendMessage"]
    (sent,) = fake.sent
    assert sent["chat_id"] == TG_CHAT
    assert sent["text"] == "Beacon: test page"
    assert '"is_disabled": true' in sent["link_preview_options"]


async def test_telegram_pager_raises_on_a_rejected_token(
    telegram: tuple[FakeTelegram, str], caplog: pytest.LogCaptureFixture
) -> None:
    _fake, base = telegram
    pager = TelegramPager("7000000001:wrong", TG_CHAT, base_url=base)
    await pager.start()  # logged, not raised: the gateway starts anyway
    with pytest.raises(Exception, match=r"Unauthorized|rejected"):
        await pager.send("Beacon: test page")
    await pager.close()
    assert "paging_telegram_unverified" in logged(caplog)
    assert "wrong" not in logged(caplog), "the token is never logged"


async def test_sms_pager_sends_one_message_per_number_through_twilio(
    twilio: tuple[FakeTwilio, str],
) -> None:
    fake, base = twilio
    pager = SmsPager(TW_SID, TW_TOKEN, TW_FROM, ON_CALL, api_base=base)
    await pager.start()
    await pager.send("Beacon: test page")
    await pager.close()
    assert sorted(m["To"] for m in fake.messages) == sorted(ON_CALL)
    assert fake.auth == [(TW_SID, TW_TOKEN)] * 2, "HTTP basic auth with the account's credentials"
    assert {m["From"] for m in fake.messages} == {TW_FROM}
    assert {m["Body"] for m in fake.messages} == {"Beacon: test page"}


async def test_sms_pager_raises_when_twilio_refuses_and_logs_no_number(
    twilio: tuple[FakeTwilio, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, base = twilio
    pager = SmsPager(TW_SID, "wrong-token", TW_FROM, ON_CALL, api_base=base)
    with caplog.at_level(logging.DEBUG), pytest.raises(paging.PagingError, match="2 of 2"):
        await pager.send("Beacon: test page")
    assert fake.messages == []
    log_text = logged(caplog)
    assert "'code': 20003" in log_text, "Twilio's error code is logged"
    for secret in (*ON_CALL, "wrong-token", TW_TOKEN):
        assert secret not in log_text


def test_pagers_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert paging.pagers_from_settings(load_settings()) == []
    monkeypatch.setenv("BEACON_PAGING_TELEGRAM_TOKEN", TG_TOKEN)
    assert paging.pagers_from_settings(load_settings()) == [], "no chat id: no Telegram pager"
    monkeypatch.setenv("BEACON_PAGING_TELEGRAM_CHAT_ID", TG_CHAT)
    assert [p.name for p in paging.pagers_from_settings(load_settings())] == ["telegram"]
    for name, value in {
        "BEACON_TWILIO_ACCOUNT_SID": TW_SID,
        "BEACON_TWILIO_AUTH_TOKEN": TW_TOKEN,
        "BEACON_TWILIO_FROM": TW_FROM,
    }.items():
        monkeypatch.setenv(name, value)
    assert [p.name for p in paging.pagers_from_settings(load_settings())] == ["telegram"]
    monkeypatch.setenv("BEACON_PAGING_SMS_TO", " +66811111111, ,+855122222222 ")
    assert load_settings().paging_sms_to == ON_CALL
    assert [p.name for p in paging.pagers_from_settings(load_settings())] == ["telegram", "sms"]


def test_pages_go_out_by_telegram_and_sms_with_the_real_libraries(
    db_url: str,
    paging_env: None,
    telegram: tuple[FakeTelegram, str],
    twilio: tuple[FakeTwilio, str],
) -> None:
    settings = load_settings()
    case_id = make_case(1, "critical")
    service = PagingService(paging.pagers_from_settings(settings), settings)

    async def go() -> list[paging.PageResult]:
        await service.start()
        try:
            return await service.run_once(s(125))
        finally:
            await service.close()

    (result,) = asyncio.run(go())
    assert result.page.case_id == case_id and result.sent == ("telegram", "sms")
    text = (
        "Beacon: a Critical case has waited 2 min without a responder. "
        "Open https://beacon.example.org/console"
    )
    (tg,) = telegram[0].sent
    assert (tg["chat_id"], tg["text"]) == (TG_CHAT, text)
    assert sorted((m["To"], m["From"], m["Body"]) for m in twilio[0].messages) == sorted(
        (number, TW_FROM, text) for number in ON_CALL
    )


@pytest.mark.parametrize("down", ["telegram", "sms"])
def test_one_pager_failing_does_not_stop_the_other(
    db_url: str,
    paging_env: None,
    telegram: tuple[FakeTelegram, str],
    twilio: tuple[FakeTwilio, str],
    down: str,
) -> None:
    settings = load_settings()
    case_id = make_case(1, "critical")
    if down == "telegram":
        telegram[0].fail = True
    else:
        twilio[0].fail = True
    up = "sms" if down == "telegram" else "telegram"
    before = {
        (pager, outcome): pages_metric(pager, outcome)
        for pager in ("telegram", "sms")
        for outcome in ("sent", "failed")
    }
    service = PagingService(paging.pagers_from_settings(settings), settings)
    (result,) = asyncio.run(service.run_once(s(120)))
    assert (result.sent, result.failed) == ((up,), (down,))
    assert pages_metric(down, "failed") == before[(down, "failed")] + 1
    assert pages_metric(up, "sent") == before[(up, "sent")] + 1
    assert pages_metric(down, "sent") == before[(down, "sent")]
    if down == "telegram":
        assert len(twilio[0].messages) == 2 and telegram[0].sent == []
    else:
        assert len(telegram[0].sent) == 1 and twilio[0].messages == []
    assert paging_state(case_id) == (1, s(240)), "delivered somewhere: the backoff goes on"


def test_the_gateway_pages_in_the_background(
    db_url: str,
    paging_env: None,
    monkeypatch: pytest.MonkeyPatch,
    telegram: tuple[FakeTelegram, str],
    twilio: tuple[FakeTwilio, str],
) -> None:
    monkeypatch.setenv("BEACON_PAGING_INTERVAL_S", "1")
    rasa_port, actions_port = free_port(), free_port()
    monkeypatch.setenv("BEACON_RASA_PORT", str(rasa_port))
    monkeypatch.setenv("BEACON_ACTIONS_PORT", str(actions_port))
    from bot.app import create_app

    case_id = make_case(1, "critical", datetime.now(timezone.utc) - timedelta(minutes=3))
    with (
        serve(FakeRasa("test-internal-token").app(), rasa_port),
        serve(fake_actions_app(), actions_port),
        TestClient(create_app(load_settings())),
    ):
        for _ in range(100):
            if telegram[0].sent and len(twilio[0].messages) == 2:
                break
            time.sleep(0.1)
    assert len(telegram[0].sent) == 1
    assert len(twilio[0].messages) == 2
    assert paging_state(case_id)[0] == 1


def test_the_gateway_says_when_paging_is_off(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rasa_port, actions_port = free_port(), free_port()
    monkeypatch.setenv("BEACON_RASA_PORT", str(rasa_port))
    monkeypatch.setenv("BEACON_ACTIONS_PORT", str(actions_port))
    from bot.app import create_app

    with caplog.at_level(logging.WARNING), TestClient(create_app(load_settings())) as client:
        assert not hasattr(client.app.state, "paging")  # type: ignore[attr-defined]
    assert [r.getMessage() for r in caplog.records].count("paging_off") == 1


def test_contact_data_is_not_needed_to_page(db_url: str) -> None:
    """Paging reads only the cases table: a contact row without an address pages fine."""
    case_id = make_case(1, "critical")
    with session_scope() as session:
        contact = session.get(Contact, session.get(Case, case_id).contact_id)
        contact.address = None
    assert paged_at(PagingService([RecordingPager()]), s(120)) == [case_id]


def test_basic_auth_reached_twilio(twilio: tuple[FakeTwilio, str]) -> None:
    """The stand-in checks HTTP basic auth like Twilio: a raw request proves it."""
    import httpx

    _fake, base = twilio
    url = f"{base}/2010-04-01/Accounts/{TW_SID}/Messages.json"
    good = base64.b64encode(f"{TW_SID}:{TW_TOKEN}".encode()).decode()
    form = {"To": ON_CALL[0], "From": TW_FROM, "Body": "x"}
    assert httpx.post(url, data=form, headers={"Authorization": "Basic eDp5"}).status_code == 401
    answer = httpx.post(url, data=form, headers={"Authorization": f"Basic {good}"})
    assert answer.status_code == 201
    assert answer.json()["status"] == "queued" and answer.json()["sid"].startswith("SM")
