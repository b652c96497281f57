"""The responder console in headless Chromium: keyboard only, and on a phone screen.

The gateway is real (its live feed and relay running), with a stand-in Rasa on
127.0.0.1; cases are queued the way the action server queues them. The full
walk-through with the real stack is in ``tests/test_e2e.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import create_app
from bot.console.auth import create_responder
from bot.db import session_scope
from bot.db.models import Case, Contact, utcnow
from bot.handoff import queue
from bot.i18n import console_strings
from bot.settings import load_settings
from tests.standins import FakeRasa, free_port, serve
from tests.test_console_api import serve_with_lifespan

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a long night shift password"
TOKEN = "browser-test-token"

if not Path(CHROMIUM).exists() and not os.environ.get("BEACON_REQUIRE_BROWSER"):
    pytest.skip("Debian's chromium is not installed (make browser)", allow_module_level=True)


@pytest.fixture
def gateway(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    rasa_port, port = free_port(), free_port()
    monkeypatch.setenv("BEACON_INTERNAL_TOKEN", TOKEN)
    monkeypatch.setenv("BEACON_RASA_PORT", str(rasa_port))
    monkeypatch.setenv("BEACON_ACTIONS_PORT", str(free_port()))
    with (
        serve(FakeRasa(TOKEN).app(), rasa_port),
        serve_with_lifespan(create_app(load_settings()), port),
    ):
        yield f"http://127.0.0.1:{port}"


def person_writes(url: str, sender: str, words: str, **case: Any) -> int:
    """A person writes on the web chat and the assistant hands the case over."""
    response = httpx.post(f"{url}/webchat/messages", json={"sender": sender, "text": words})
    assert response.status_code == 200, response.text
    with session_scope() as session:
        contact = queue.get_or_create_contact(session, "webchat", sender)
        opened = queue.escalate(session, contact.public_id, channel="webchat", **case)
        return int(opened.id)


def add_responder(username: str, **kw: Any) -> None:
    with session_scope() as session:
        create_responder(session, username, PASSWORD, **kw)


@pytest.fixture
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Any, url: str, username: str, password: str = PASSWORD) -> None:
    """Logs in through the form (in the browser's language, English here)."""
    strings = console_strings("en")
    page.goto(f"{url}/console/login")
    page.get_by_label(strings["username"]).fill(username)
    page.get_by_label(strings["password"]).fill(password)
    page.get_by_label(strings["password"]).press("Enter")
    page.wait_for_url(f"{url}/console")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_responder_works_a_case_with_the_keyboard_alone(gateway: str, chromium: Any) -> None:
    from playwright.sync_api import expect

    add_responder("dara", languages=["th"], ui_language="th")
    strings = console_strings("th")
    person_writes(
        gateway,
        "w-medium",
        "งานไม่ได้เงินเลย",
        urgency="medium",
        indicators=["wages_withheld"],
        language="th",
        reporter="self",
    )
    critical = person_writes(
        gateway,
        "w-critical",
        "ช่วยด้วย เขาตีฉัน เลือดออก",
        urgency="critical",
        indicators=["violence", "medical_emergency"],
        language="th",
        reporter="self",
    )
    page = chromium.new_page()
    log_in(page, gateway, "dara")
    rows = page.locator("#queue .case-row")
    expect(rows).to_have_count(2)
    # The labels are in the responder's language (Thai), whatever the person wrote.
    expect(rows.first).to_contain_text(strings["urgency_critical"])

    page.locator("body").press("n")  # N: take the next case, the critical one
    heading = page.locator("#case-heading")
    expect(heading).to_contain_text(str(critical))
    expect(page.locator("#case-view")).to_contain_text(strings["indicator_medical_emergency"])

    page.locator("body").press("r")  # R: to the reply box
    expect(page.locator("#reply-text")).to_be_focused()
    page.keyboard.type("เราอยู่ที่นี่ ปลอดภัยไหม")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#transcript li.msg-out").last).to_contain_text("เราอยู่ที่นี่")
    poll = httpx.post(f"{gateway}/webchat/poll", json={"sender": "w-critical", "after": 0})
    assert [m["text"] for m in poll.json()["messages"]][-1] == "เราอยู่ที่นี่ ปลอดภัยไหม"

    # Tab reaches the case actions; Release by keyboard puts the case back at its place.
    release = page.locator("#release")
    release.focus()
    page.keyboard.press("Enter")
    expect(rows.first).to_contain_text(strings["unclaimed"])
    expect(rows).to_have_count(2)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_console_fits_a_phone_screen_one_pane_at_a_time(gateway: str, chromium: Any) -> None:
    from playwright.sync_api import expect

    add_responder("mya", languages=["en"])
    case_id = person_writes(
        gateway,
        "w-phone",
        "they took my passport and I cannot leave the compound",
        urgency="high",
        indicators=["documents_retained", "movement_restricted"],
        language="en",
        reporter="self",
    )
    phone = chromium.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    ).new_page()
    log_in(phone, gateway, "mya")
    row = phone.locator("#queue .case-row")
    expect(row).to_have_count(1)
    expect(phone.locator("#case-view")).to_be_hidden()
    fits = "document.documentElement.scrollWidth <= window.innerWidth"
    assert phone.evaluate(fits), "the queue scrolls sideways on a phone"

    row.tap()
    expect(phone.locator("#case-heading")).to_contain_text(str(case_id))
    expect(phone.locator("#queue-panel")).to_be_hidden()
    expect(phone.locator("mark[data-indicator]").first).to_be_visible()
    assert phone.evaluate(fits), "the case view scrolls sideways on a phone"
    box = phone.locator("#claim").bounding_box()
    assert box is not None and box["height"] >= 40, "the Claim button is too small to tap"

    phone.locator("#back").tap()
    expect(phone.locator("#queue-panel")).to_be_visible()
    expect(phone.locator("#case-view")).to_be_hidden()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_supervisor_sees_an_other_language_case_of_their_office_and_blocks_its_sender(
    gateway: str, chromium: Any
) -> None:
    from playwright.sync_api import expect

    add_responder("ana", languages=["th"], offices=["KH"])
    add_responder("sam", languages=["th"], offices=["KH"], role="supervisor")
    strings = console_strings("en")
    thai = dict(urgency="medium", language="th", reporter="self", country="Cambodia")
    person_writes(gateway, "w-th", "งานไม่ได้เงินเลย", indicators=["wages_withheld"], **thai)
    vietnamese = dict(thai, language="vi")
    case_id = person_writes(
        gateway, "w-vi", "họ giữ hộ chiếu của tôi", indicators=["documents_retained"], **vietnamese
    )

    responder = chromium.new_page()
    log_in(responder, gateway, "ana")
    expect(responder.locator("#queue .case-row")).to_have_count(1)
    expect(responder.locator(f'#queue .case-row[data-case-id="{case_id}"]')).to_have_count(0)
    expect(responder.locator("#accounts-tab")).to_be_hidden()

    page = chromium.new_page()
    log_in(page, gateway, "sam")
    expect(page.locator("#queue .case-row")).to_have_count(2)
    page.locator(f'#queue .case-row[data-case-id="{case_id}"]').click()
    expect(page.locator("#case-heading")).to_contain_text(str(case_id))
    page.locator("#block").click()
    page.get_by_label(strings["block_duration"]).select_option(label=strings["block_duration_24h"])
    page.get_by_label(strings["block_reason"]).select_option(label=strings["block_reason_spam"])
    page.locator("#block-submit").click()
    expect(page.locator("#case-status")).to_have_text(strings["done_blocked"].format(id=case_id))
    expect(page.locator("#case-summary")).to_contain_text(strings["block_reason_spam"])
    expect(page.locator("#unblock")).to_be_visible()
    expect(page.locator("#block")).to_be_hidden()
    row = page.locator(f'#queue .case-row[data-case-id="{case_id}"]')
    expect(row).to_contain_text(strings["blocked_badge"])

    sent = httpx.post(f"{gateway}/webchat/messages", json={"sender": "w-vi", "text": "hello?"})
    assert sent.json()["messages"] == [], "a blocked sender gets no answer"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_admin_creates_an_account_on_the_accounts_page(gateway: str, chromium: Any) -> None:
    from playwright.sync_api import expect

    add_responder("ada", role="admin")
    strings = console_strings("en")
    page = chromium.new_page()
    log_in(page, gateway, "ada")
    page.locator("#accounts-tab").click()
    expect(page.locator("#account-rows tr")).to_have_count(1)
    page.get_by_label(strings["account_username"], exact=True).fill("dara")
    role = page.get_by_label(strings["account_role"], exact=True)
    expect(role).to_have_value("responder")
    role.select_option(label=strings["role_supervisor"])
    page.get_by_label(strings["account_offices"], exact=True).fill("kh, th")
    page.locator("#account-create").click()
    password = page.locator("#account-password-value")
    expect(password).to_be_visible()
    expect(page.locator("#account-rows tr")).to_have_count(2)
    dara = page.locator('#account-rows tr[data-username="dara"]')
    expect(dara.locator("select")).to_have_value("supervisor")
    expect(dara.locator("input").nth(1)).to_have_value("KH, TH")
    expect(page.locator("#account-events")).to_contain_text(strings["account_event_created"])

    other = chromium.new_page()
    log_in(other, gateway, "dara", password.inner_text())
    expect(other.locator("#whoami")).to_contain_text(strings["role_supervisor"])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_responder_records_consent_and_only_then_may_export_a_referral(
    gateway: str, chromium: Any
) -> None:
    from playwright.sync_api import expect

    add_responder("lin", languages=["vi"])
    strings = console_strings("en")
    case_id = person_writes(
        gateway,
        "w-consent",
        "họ giữ hộ chiếu của tôi, tôi không được đi",
        urgency="high",
        indicators=["documents_retained"],
        language="vi",
        reporter="other",
        country="Myanmar",
        location="KK Park, building C",
    )
    with session_scope() as session:
        case = session.get(Case, case_id)
        case.impersonation_caution = True
        session.get(Contact, case.contact_id).paused_at = utcnow()

    page = chromium.new_page()
    log_in(page, gateway, "lin")
    page.locator(f'#queue .case-row[data-case-id="{case_id}"]').click()
    expect(page.locator("#case-heading")).to_contain_text(str(case_id))
    banners = page.locator("#safety-banners")
    expect(banners).to_contain_text(strings["safety_impersonation"])
    expect(banners).to_contain_text(strings["safety_paused"].split("{time}")[0])
    # Before any consent: the blocked state, and nothing to export.
    blocked = page.locator("#sharing-blocked")
    expect(blocked).to_have_text(strings["sharing_none"])
    expect(page.locator("#sharing a.export")).to_have_count(0)
    expect(page.locator("#consent-open")).to_be_hidden()  # only whoever holds the case

    page.locator("#claim").click()
    page.locator("#consent-open").click()
    page.get_by_label(strings["consent_basis_consent"], exact=True).check()
    page.get_by_label(strings["consent_given_by"], exact=True).select_option("guardian")
    page.get_by_label(strings["consent_recipient_kind"], exact=True).select_option("embassy")
    page.get_by_label(strings["consent_recipient"], exact=True).fill("Embassy of Viet Nam, Yangon")
    page.get_by_label(strings["data_item_location"], exact=True).check()
    page.locator("#consent-submit").click()
    expect(page.locator("#case-status")).to_have_text(
        strings["done_consent_recorded"].format(id=case_id)
    )
    expect(blocked).to_be_hidden()
    recipient = "Embassy of Viet Nam, Yangon"
    json_link = page.get_by_role(
        "link", name=strings["export_json_for"].format(recipient=recipient)
    )
    pdf_link = page.get_by_role("link", name=strings["export_pdf_for"].format(recipient=recipient))
    expect(json_link).to_be_visible()
    expect(pdf_link).to_be_visible()
    expect(page.locator("#consents")).to_contain_text(strings["basis_consent_guardian"])

    with page.expect_download() as download:
        json_link.click()
    document = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert set(document["data"]) == {"summary", "location"}
    assert document["recipient"] == {"kind": "embassy", "name": recipient}
    expect(page.locator("#events")).to_contain_text(strings["event_exported"])

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role(
        "button", name=strings["consent_withdraw_for"].format(recipient=recipient)
    ).click()
    expect(blocked).to_have_text(strings["sharing_none_valid"])
    expect(page.locator("#sharing a.export")).to_have_count(0)
