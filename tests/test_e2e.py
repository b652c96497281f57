"""End to end: the real gateway, Rasa server and action server, started by ``beacon up``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.i18n.nlg import render
from bot.safety.commands import word
from bot.settings import ROOT
from tests.e2e_stack import BEACON, Stack, start_stack

pytestmark = pytest.mark.e2e

URGENT = "help they took my passport and beat me, I am bleeding"
UNPROMPTED_WORDS = ("trafficking", "police", "rescue")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack") / "var")
    try:
        seconds = running.wait_healthy()
        print(f"\nstack healthy after {seconds:.1f} s")
        yield running
    finally:
        running.stop()


def text(name: str, language: str) -> str:
    return str(render(name, language, "webchat", {})["text"])


def hint(language: str) -> str:
    """The erase hint, naming the erase word of ``language``."""
    erase = word(language, "erase").upper()
    return str(render("utter_erase_hint", language, "webchat", {"erase": erase})["text"])


def test_the_urgent_message_gets_a_calm_reply_and_one_critical_case(stack: Stack) -> None:
    started = time.monotonic()
    replies = stack.chat("e2e-urgent", URGENT, id="u-1")
    print(f"\nurgent chat turn: {time.monotonic() - started:.2f} s")
    assert [r["text"] for r in replies] == [text("utter_handoff_critical", "en")]
    assert not any(word in replies[0]["text"].lower() for word in UNPROMPTED_WORDS)
    cases = json.loads(stack.beacon("queue", "list", "--json"))
    assert len(cases) == 1
    [case] = cases
    assert case["urgency"] == "critical" and case["status"] == "queued"
    assert {"documents_retained", "violence", "medical_emergency"} <= set(case["indicators"])
    assert case["language"] == "en" and case["channel"] == "webchat" and case["reporter"] == "self"
    assert case["waiting_since"]


@pytest.mark.parametrize(
    ("language", "greeting"), [("en", "hello"), ("id", "halo kak, selamat malam"), ("th", "สวัสดีค่ะ")]
)
def test_a_greeting_is_answered_discreetly_in_the_same_language(
    stack: Stack, language: str, greeting: str
) -> None:
    replies = stack.chat(f"e2e-greet-{language}", greeting)
    assert [r["text"] for r in replies] == [text("utter_greet", language)]


def test_a_worker_asking_for_help_is_queued_and_asked_the_safety_questions(stack: Stack) -> None:
    sender = "e2e-worker"
    first = stack.chat(sender, "I need help, the job was fake and I cannot leave")
    assert [r["text"] for r in first] == [
        text("utter_handoff", "en"),
        # Once, before the first sensitive question: how to erase the chat.
        hint("en"),
        text("utter_ask_safe_to_talk", "en"),
    ]
    assert stack.chat(sender, "Yes", payload="/affirm")[0]["text"] == text(
        "utter_ask_location", "en"
    )
    assert stack.chat(sender, "Poipet")[0]["text"] == text("utter_ask_hurt", "en")
    assert stack.chat(sender, "No", payload="/deny")[0]["text"] == text(
        "utter_ask_passport_held", "en"
    )
    last = stack.chat(sender, "Yes", payload="/affirm")
    assert last[0]["text"] == text("utter_handoff_update", "en")
    cases = {c["id"]: c for c in json.loads(stack.beacon("queue", "list", "--json"))}
    worker = [c for c in cases.values() if "deception" in c["indicators"]]
    assert len(worker) == 1
    assert worker[0]["urgency"] == "high"
    assert {"movement_restricted", "documents_retained"} <= set(worker[0]["indicators"])


def test_a_relative_is_told_what_happens_and_warned_about_money(stack: Stack) -> None:
    replies = stack.chat(
        "e2e-family", "anak saya kerja di Kamboja dan sudah 3 minggu tidak bisa dihubungi"
    )
    assert [r["text"] for r in replies] == [text("utter_handoff_family", "id")]
    cases = json.loads(stack.beacon("queue", "list", "--json"))
    assert any(c["reporter"] == "other" and c["language"] == "id" for c in cases)


def test_asking_for_a_person_always_works(stack: Stack) -> None:
    replies = stack.chat("e2e-human", "ขอคุยกับคนจริงๆ ได้ไหมคะ")
    assert [r["text"] for r in replies] == [
        text("utter_handoff", "th"),
        hint("th"),
        text("utter_ask_safe_to_talk", "th"),
    ]


def test_beacon_chat_talks_to_the_gateway_from_a_terminal(stack: Stack) -> None:
    result = subprocess.run(
        [BEACON, "chat", "--url", stack.url],
        input="hello\nI want to talk to a real person\n1\n",
        capture_output=True,
        text=True,
        env=stack.env,
        timeout=120,
        check=True,
    )
    assert text("utter_greet", "en") in result.stdout
    assert text("utter_ask_safe_to_talk", "en") in result.stdout
    assert "[1] Yes" in result.stdout
    assert text("utter_ask_location", "en") in result.stdout


def test_every_service_answers_health_and_metrics(stack: Stack) -> None:
    gateway = httpx.get(f"{stack.url}/healthz", timeout=10).json()
    assert gateway["checks"] == {"gateway": True, "database": True, "rasa": True, "actions": True}
    assert "beacon_rasa_request_seconds" in httpx.get(f"{stack.url}/metrics", timeout=10).text
    actions = f"http://127.0.0.1:{stack.env['BEACON_ACTIONS_PORT']}"
    assert httpx.get(f"{actions}/healthz", timeout=10).status_code == 200
    assert (
        'beacon_actions_total{action="action_screen"'
        in httpx.get(f"{actions}/metrics", timeout=10).text
    )


CHROMIUM = "/usr/bin/chromium"
#: `make test` and `make test-e2e` install Chromium first and set BEACON_REQUIRE_BROWSER=1,
#: so there a missing browser fails the browser tests instead of skipping them.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("BEACON_REQUIRE_BROWSER"),
    reason="Debian's chromium is not installed (make browser)",
)


@needs_chromium
@pytest.mark.parametrize(
    ("locale", "language", "greeting"),
    [("en-US", "en", "hello"), ("id-ID", "id", "halo"), ("th-TH", "th", "สวัสดีครับ")],
)
def test_the_chat_page_holds_a_conversation_in_a_browser(
    stack: Stack, tmp_path: Path, locale: str, language: str, greeting: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from bot.i18n import ui_strings

    strings = ui_strings(language)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        try:
            page = browser.new_context(locale=locale).new_page()
            page.goto(f"{stack.url}/chat")
            expect(page.locator("html")).to_have_attribute("lang", language)
            page.get_by_label(strings["message_label"]).fill(greeting)
            page.get_by_role("button", name=strings["send"]).click()
            log = page.get_by_role("log")
            expect(log.locator("li.bot").first).to_contain_text(text("utter_greet", language))
            page.get_by_label(strings["message_label"]).fill(
                {
                    "en": "I need help, I am trapped",
                    "id": "tolong saya butuh bantuan, saya terjebak",
                    "th": "ช่วยด้วยค่ะ ฉันติดอยู่ที่นี่ ออกไปไหนไม่ได้",
                }[language]
            )
            page.keyboard.press("Enter")
            expect(log.locator("li.bot").nth(2)).to_contain_text(hint(language))
            question = text("utter_ask_safe_to_talk", language)
            expect(log.locator("li.bot").nth(3)).to_contain_text(question)
            yes = render("utter_ask_safe_to_talk", language, "webchat", {})["buttons"][0]["title"]
            log.get_by_role("button", name=yes, exact=True).last.click()
            expect(log.locator("li.bot").nth(4)).to_contain_text(
                text("utter_ask_location", language)
            )
            page.screenshot(path=str(tmp_path / f"chat-{language}.png"), full_page=True)
        finally:
            browser.close()


@needs_chromium
def test_a_responder_takes_a_critical_case_from_the_live_queue_in_a_browser(
    stack: Stack,
) -> None:
    """The issue's walk-through: log in, see the case arrive live, take, reply, resolve."""
    from playwright.sync_api import expect, sync_playwright

    from bot.i18n import console_strings, ui_strings

    stack.beacon(
        "responder", "add", "ana", "--name", "Ana", "--languages", "en,th", "--password-stdin",
        input="a long night shift password\n",
    )  # fmt: skip
    # Earlier tests left cases waiting: ana clears what she sees first.
    for _ in range(100):
        seen = json.loads(stack.beacon("queue", "list", "--as", "ana", "--json"))
        if not seen:
            break
        case = seen[0]
        if case["status"] == "queued":
            case = json.loads(stack.beacon("queue", "take-next", "--as", "ana", "--json"))
        stack.beacon("queue", "resolve", str(case["id"]), "--as", "ana")
    console = console_strings("en")
    chat = ui_strings("en")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            responder = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
            responder.goto(f"{stack.url}/console/login")
            responder.get_by_label(console["username"]).fill("ana")
            responder.get_by_label(console["password"]).fill("a long night shift password")
            responder.get_by_role("button", name=console["login"]).click()
            expect(responder.locator("#take-next")).to_be_visible()
            expect(responder.locator("#live-status")).to_be_hidden(timeout=5000)

            worker = browser.new_context(locale="en-US").new_page()
            worker.goto(f"{stack.url}/chat")
            worker.get_by_label(chat["message_label"]).fill(URGENT)
            with worker.expect_response("**/webchat/messages"):
                worker.get_by_role("button", name=chat["send"]).click()
            # The case is queued when the worker's reply is back: it must be live within 1 s.
            row = responder.locator("#queue .case-row.urgency-critical")
            expect(row).to_have_count(1, timeout=1000)

            responder.locator("#take-next").click()
            view = responder.locator("#case-view")
            expect(view).to_contain_text(console["urgency_critical"])
            expect(view.locator("mark[data-indicator]").first).to_be_visible()
            responder.locator("#reply-text").fill("I am Ana from the team. Are you safe to write?")
            responder.locator("#reply-text").press("Control+Enter")
            expect(responder.locator("#transcript li.msg-out").last).to_contain_text("I am Ana")

            log = worker.get_by_role("log")
            expect(log).to_contain_text("I am Ana from the team", timeout=10000)

            worker.get_by_label(chat["message_label"]).fill("yes I can write now")
            worker.keyboard.press("Enter")
            expect(responder.locator("#transcript li.msg-in").last).to_contain_text(
                "yes I can write now", timeout=5000
            )
            view.evaluate("node => node.scrollTo(0, 0)")
            responder.screenshot(path=str(ROOT / "docs" / "console.png"))

            # The dashboard draws pictures: what waits, time to claim, indicators, countries,
            # languages; this case was claimed, so time to claim has a point for today.
            responder.locator("#dashboard-tab").click()
            charts = responder.locator("#charts svg[role=img]")
            expect(charts).to_have_count(5)
            expect(responder.locator("#charts circle").first).to_be_attached()
            responder.screenshot(path=str(ROOT / "docs" / "dashboard.png"))
            responder.locator("#cases-tab").click()

            responder.once("dialog", lambda dialog: dialog.accept())
            responder.locator("#resolve").click()
            expect(row).to_have_count(0, timeout=5000)

            worker.get_by_label(chat["message_label"]).fill("hello")
            worker.keyboard.press("Enter")
            expect(log.locator("li.bot").last).to_contain_text(
                text("utter_greet", "en"), timeout=20000
            )
        finally:
            browser.close()


def test_no_message_text_or_chat_id_reaches_any_log(stack: Stack) -> None:
    """Every process's output (gateway, Rasa, actions, supervisor) after the conversations."""
    assert len(stack.said) >= 5, "the earlier tests of this module talk to the stack"
    logged = stack.log.read_text(encoding="utf-8", errors="replace")
    assert logged.strip(), "the stack logged nothing at all: the scan would prove nothing"
    for sender, words in stack.said:
        assert sender not in logged, f"a chat id reached the logs: {sender!r}"
        if len(words) >= 8:  # "hello" may be any word in a log line; sentences may not
            assert words not in logged, f"message text reached the logs: {words!r}"


def test_a_child_that_dies_is_restarted(stack: Stack) -> None:
    before = stack.children()
    assert set(before) == {"actions", "rasa", "gateway"}
    os.kill(before["actions"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = stack.children().get("actions")
        if now and now != before["actions"] and stack.health() == 200:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the action server was not restarted")
    assert stack.chat("e2e-after-restart", "hello")[0]["text"] == text("utter_greet", "en")


def test_sigterm_stops_everything(stack: Stack) -> None:
    children = stack.children()
    assert stack.stop() == 0
    for pid in children.values():
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )
