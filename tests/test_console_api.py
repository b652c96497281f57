"""The responder console's pages and JSON API, as ``docs/console-api.md`` promises them.

The gateway is real, with its database on SQLite and (when
``BEACON_TEST_DATABASE_URL`` is set) PostgreSQL; Rasa is a stand-in on
127.0.0.1 that speaks its REST channel and tracker API. People write through
``POST /webchat/messages``; a case is put in the queue the way the action
server does it, with ``bot.handoff.queue.escalate`` on the same database.
Responders log in through the login form and use the API with their session
cookie and CSRF token, as the console page does.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.app import create_app
from bot.console.auth import create_responder
from bot.db import session_scope
from bot.db.models import Case, CaseEvent, CaseNote, Contact, Message, Responder, ResponderSession
from bot.db.models import utcnow as db_now
from bot.handoff import queue
from bot.i18n import console_strings, console_text
from bot.i18n.nlg import render
from bot.settings import load_settings
from tests.standins import FakeRasa, free_port, serve

TOKEN = "test-internal-token"
PASSWORD = "correct horse battery"
SESSION_COOKIE = "beacon_console"
WORDS = {"th": "ช่วยด้วย", "vi": "giúp tôi với", "en": "help me please"}
#: The fields of a case summary, a message, a note and an event (docs/console-api.md).
SUMMARY_FIELDS = {
    "id", "status", "urgency", "urgency_label", "indicators", "indicator_labels", "reporter",
    "reporter_label", "language", "language_name", "channel", "country", "office",
    "waiting_since", "waiting_seconds", "claimed_by", "assigned_to", "mine", "last_message_at",
    "bot_form_open", "unreachable",
}  # fmt: skip
MESSAGE_FIELDS = {"id", "direction", "author", "text", "highlights", "status", "at", "attachment"}
NOTE_FIELDS = {"id", "author", "text", "at"}
EVENT_FIELDS = {"action", "actor", "from", "to", "at"}
RESET_SEQUENCE = [
    ("active_loop", None),
    ("reset_slots", None),
    ("resume", None),
    ("action", "action_listen"),
]


# --- stand-ins and the running gateway ------------------------------------------------------


class _PathLog:
    """ASGI middleware: notes the path of every request, in arrival order."""

    def __init__(self, app: ASGIApp, paths: list[str]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


class OrderedRasa(FakeRasa):
    """The Rasa stand-in, also recording the order of all requests (resets vs. messages)."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.paths: list[str] = []

    def app(self) -> Starlette:
        inner = super().app()
        inner.add_middleware(_PathLog, paths=self.paths)
        return inner


@pytest.fixture
def rasa() -> OrderedRasa:
    return OrderedRasa(TOKEN)


@contextmanager
def running_gateway(rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The gateway (lifespan on) with Rasa on a free port; settings read from the environment."""
    rasa_port = free_port()
    monkeypatch.setenv("BEACON_RASA_PORT", str(rasa_port))
    monkeypatch.setenv("BEACON_ACTIONS_PORT", str(free_port()))
    with serve(rasa.app(), rasa_port), TestClient(create_app(load_settings())) as client:
        yield client


@pytest.fixture
def client(db_url: str, rasa: OrderedRasa, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with running_gateway(rasa, monkeypatch) as test_client:
        yield test_client


@contextmanager
def serve_with_lifespan(app: Starlette, port: int) -> Iterator[None]:
    """Like ``tests.standins.serve`` but runs the app's lifespan (the live feed starts there)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws="none",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- people, responders, sessions -----------------------------------------------------------


def add_responder(
    username: str,
    *,
    languages: list[str] | None = None,
    offices: list[str] | None = None,
    ui_language: str = "en",
) -> None:
    with session_scope() as session:
        create_responder(
            session,
            username,
            PASSWORD,
            languages=languages,
            offices=offices,
            ui_language=ui_language,
        )


def chat(client: TestClient, sender: str, words: str, **extra: object) -> list[dict[str, Any]]:
    """The person writes on the web chat; returns the replies they see at once."""
    response = client.post("/webchat/messages", json={"sender": sender, "text": words, **extra})
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def public_id(sender: str) -> str:
    """The pseudonymous id Rasa knows the web chat ``sender`` by."""
    with session_scope() as session:
        return str(queue.get_or_create_contact(session, "webchat", sender).public_id)


def escalate(sender: str, *, urgency: str, indicators: list[str], language: str, **kw: Any) -> int:
    with session_scope() as session:
        case = queue.escalate(
            session,
            queue.get_or_create_contact(session, "webchat", sender).public_id,
            urgency=urgency,
            indicators=indicators,
            language=language,
            reporter="self",
            channel="webchat",
            **kw,
        )
        return int(case.id)


def open_case(
    client: TestClient,
    sender: str,
    *,
    urgency: str = "medium",
    indicators: tuple[str, ...] = ("violence",),
    language: str = "th",
    country: str | None = "Cambodia",
    words: str | None = None,
) -> int:
    """A person writes, then the assistant hands their case to the queue."""
    chat(client, sender, words or WORDS[language])
    return escalate(
        sender, urgency=urgency, indicators=list(indicators), language=language, country=country
    )


INPUT_CSRF = re.compile(r"<input\b[^>]*\bname=\"csrf\"[^>]*>")
META_CSRF = re.compile(r"<meta\b[^>]*\bname=\"csrf-token\"[^>]*>")


def _attribute(tag: str, name: str) -> str:
    found = re.search(rf'\b{name}="([^"]*)"', tag)
    assert found, f"no {name} in {tag}"
    return unescape(found.group(1))


def login_csrf(client: TestClient | httpx.Client, accept_language: str = "en") -> str:
    """Opens the login page (which sets the ``beacon_csrf`` cookie); returns its hidden token."""
    page = client.get("/console/login", headers={"accept-language": accept_language})
    assert page.status_code == 200
    tag = INPUT_CSRF.search(page.text)
    assert tag, "the login form has a hidden csrf field"
    return _attribute(tag.group(0), "value")


def try_login(
    client: TestClient, username: str, password: str = PASSWORD, accept_language: str = "en"
) -> httpx.Response:
    csrf = login_csrf(client, accept_language)
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf": csrf},
        headers={"accept-language": accept_language},
        follow_redirects=False,
    )


def session_cookie(response: httpx.Response) -> str | None:
    """The raw ``Set-Cookie`` header of the console session, if the response sets one."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{SESSION_COOKIE}="):
            return header
    return None


def page_csrf(html: str) -> str:
    tag = META_CSRF.search(html)
    assert tag, "the console page carries <meta name=csrf-token>"
    return _attribute(tag.group(0), "content")


@dataclass
class Console:
    """One logged-in responder using the API (their own cookie and CSRF token)."""

    client: TestClient
    token: str
    csrf: str

    def headers(self, csrf: str | None = None) -> dict[str, str]:
        headers = {"cookie": f"{SESSION_COOKIE}={self.token}"}
        if csrf is not None:
            headers["x-csrf-token"] = csrf
        return headers

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.headers())

    def post(self, path: str, body: object = None) -> httpx.Response:
        return self.client.post(
            f"/console/api/{path}", json=body or {}, headers=self.headers(self.csrf)
        )

    def case(self, case_id: int) -> dict[str, Any]:
        response = self.get(f"/console/api/cases/{case_id}")
        assert response.status_code == 200, response.text
        detail: dict[str, Any] = response.json()
        return detail

    def take_next(self) -> httpx.Response:
        return self.post("take-next")


def log_in(client: TestClient, username: str) -> Console:
    response = try_login(client, username)
    assert response.status_code == 303, response.text
    token = response.cookies[SESSION_COOKIE]
    # One TestClient serves several responders: each request carries its own cookie.
    client.cookies.clear()
    page = client.get("/console", headers={"cookie": f"{SESSION_COOKIE}={token}"})
    assert page.status_code == 200
    return Console(client, token, page_csrf(page.text))


def case_row(case_id: int) -> Case:
    with session_scope() as session:
        case: Case = session.get(Case, case_id)
        return case


def actions(case_id: int) -> list[tuple[str, str]]:
    with session_scope() as session:
        return [
            (e.action, e.actor)
            for e in session.execute(
                select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            ).scalars()
        ]


def responder_messages(case_id: int) -> list[tuple[str, str]]:
    with session_scope() as session:
        return [
            (m.body, m.status)
            for m in session.execute(
                select(Message)
                .where(Message.case_id == case_id, Message.author_id.is_not(None))
                .order_by(Message.id)
            ).scalars()
        ]


def poll(client: TestClient, sender: str, after: int = 0) -> list[dict[str, Any]]:
    response = client.post("/webchat/poll", json={"sender": sender, "after": after})
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def is_subsequence(wanted: list[Any], seen: list[Any]) -> bool:
    rest = iter(seen)
    return all(item in rest for item in wanted)


# --- login ----------------------------------------------------------------------------------


def test_the_right_password_opens_a_strict_http_only_session(client: TestClient) -> None:
    add_responder("ana")
    response = try_login(client, "ana")
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = session_cookie(response)
    assert cookie is not None
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/" in flags
    assert "secure" not in flags, "plain http (no https BEACON_PUBLIC_URL): no Secure flag"
    token = response.cookies[SESSION_COOKIE]
    me = client.get("/console/api/me", headers={"cookie": f"{SESSION_COOKIE}={token}"})
    assert me.status_code == 200
    assert me.json()["username"] == "ana"


def test_the_session_cookie_is_secure_behind_https(
    db_url: str, rasa: OrderedRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_PUBLIC_URL", "https://beacon.example.org")
    add_responder("ana")
    with running_gateway(rasa, monkeypatch) as https_client:
        response = try_login(https_client, "ana")
    assert response.status_code == 303
    cookie = session_cookie(response)
    assert cookie is not None
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert {"secure", "httponly", "samesite=strict"} <= set(flags)


def test_a_wrong_password_and_an_unknown_user_get_the_same_translated_answer(
    client: TestClient,
) -> None:
    add_responder("ana")
    wrong = try_login(client, "ana", "not the password at all", accept_language="th")
    unknown = try_login(client, "nobody", PASSWORD, accept_language="th")
    failed = console_text("th", "login_failed")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert failed in response.text
        assert session_cookie(response) is None
    assert INPUT_CSRF.search(wrong.text), "the form is shown again"
    # The two pages differ only in their fresh CSRF token: nothing tells the user exists.
    assert INPUT_CSRF.sub("", wrong.text) == INPUT_CSRF.sub("", unknown.text)
    english = try_login(client, "ana", "not the password at all", accept_language="en")
    assert console_text("en", "login_failed") in english.text


def test_a_login_without_the_forms_csrf_token_is_refused(client: TestClient) -> None:
    add_responder("ana")
    login_csrf(client)  # the beacon_csrf cookie is set
    right = {"username": "ana", "password": PASSWORD}
    missing = client.post("/console/login", data=right, follow_redirects=False)
    wrong = client.post("/console/login", data={**right, "csrf": "made-up"}, follow_redirects=False)
    token = login_csrf(client)
    client.cookies.clear()  # the field, but not the cookie it must match
    no_cookie = client.post("/console/login", data={**right, "csrf": token}, follow_redirects=False)
    for response in (missing, wrong, no_cookie):
        assert response.status_code == 403
        assert console_text("en", "error_csrf") in response.text
        assert session_cookie(response) is None
    with session_scope() as session:
        assert session.execute(select(func.count(ResponderSession.id))).scalar() == 0


def test_five_wrong_passwords_lock_the_account_until_the_lockout_ends(
    client: TestClient,
) -> None:
    add_responder("ana")
    codes = [try_login(client, "ana", f"wrong password {n}").status_code for n in range(4)]
    assert codes == [401, 401, 401, 401]
    fifth = try_login(client, "ana", "wrong password 5")
    assert fifth.status_code == 429
    assert console_text("en", "login_locked", minutes=15) in fifth.text
    locked = try_login(client, "ana", PASSWORD)
    assert locked.status_code == 429, "the right password does not open a locked account"
    assert session_cookie(locked) is None
    with session_scope() as session:
        ana = session.execute(select(Responder).where(Responder.username == "ana")).scalar_one()
        assert ana.locked_until is not None
        # The lockout time passes.
        ana.locked_until = db_now() - timedelta(seconds=1)
    unlocked = try_login(client, "ana", PASSWORD)
    assert unlocked.status_code == 303
    assert session_cookie(unlocked) is not None


def test_the_database_keeps_neither_passwords_nor_session_tokens(client: TestClient) -> None:
    add_responder("ana")
    response = try_login(client, "ana")
    token = response.cookies[SESSION_COOKIE]
    with session_scope() as session:
        [password_hash] = session.execute(text("SELECT password_hash FROM responders")).scalars()
        [token_hash] = session.execute(text("SELECT token_hash FROM responder_sessions")).scalars()
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash
    assert token_hash != token
    assert token not in token_hash


def test_logging_out_needs_the_csrf_token_and_ends_the_session(client: TestClient) -> None:
    add_responder("ana")
    ana = log_in(client, "ana")
    refused = client.post("/console/logout", headers=ana.headers(), follow_redirects=False)
    assert refused.status_code == 403
    assert ana.get("/console/api/me").status_code == 200
    out = client.post("/console/logout", headers=ana.headers(ana.csrf), follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/console/login"
    assert ana.get("/console/api/me").status_code == 401


# --- sessions and CSRF on the API -----------------------------------------------------------

CASE_ROUTES = ["claim", "release", "transfer", "resolve", "reply", "notes"]
API_ROUTES = [
    ("GET", "/console/api/me"),
    ("GET", "/console/api/queue"),
    ("GET", "/console/api/responders"),
    ("GET", "/console/api/stats"),
    ("GET", "/console/api/events"),
    ("GET", "/console/api/cases/1"),
    ("POST", "/console/api/take-next"),
    *[("POST", f"/console/api/cases/1/{route}") for route in CASE_ROUTES],
]


def test_every_api_route_needs_a_session(client: TestClient) -> None:
    add_responder("ana")
    case_id = open_case(client, "w-1")
    # A session that has expired is no session either.
    expired = log_in(client, "ana")
    with session_scope() as session:
        for row in session.execute(select(ResponderSession)).scalars():
            row.expires_at = db_now() - timedelta(minutes=1)
    expected = {"error": console_text("en", "error_not_logged_in")}
    for cookie in (None, "made-up-token", expired.token):
        headers = {"cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
        for method, path in API_ROUTES:
            response = client.request(method, path, headers=headers, json={"text": "hi"})
            assert response.status_code == 401, (method, path, cookie)
            assert response.json() == expected
    assert case_row(case_id).status == "queued"


def test_the_console_page_sends_a_visitor_without_a_session_to_the_login(
    client: TestClient,
) -> None:
    response = client.get("/console", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


def test_the_console_page_carries_the_responder_strings_and_csrf_token(
    client: TestClient,
) -> None:
    add_responder("ana", languages=["th"], offices=["KH"], ui_language="th")
    ana = log_in(client, "ana")
    page = ana.get("/console")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page_csrf(page.text) == ana.csrf
    main = re.search(r"<main\b[^>]*\bid=\"console\"[^>]*>", page.text)
    assert main, "the page has <main id=console>"
    me = json.loads(_attribute(main.group(0), "data-me"))
    assert me == {
        "username": "ana",
        "display_name": "ana",
        "languages": ["th"],
        "offices": ["KH"],
        "ui_language": "th",
        "role": "responder",
    }
    strings = json.loads(_attribute(main.group(0), "data-strings"))
    assert strings["urgency_critical"] == console_strings("th")["urgency_critical"]


def test_a_post_without_the_sessions_csrf_token_changes_nothing(client: TestClient) -> None:
    add_responder("ana")
    add_responder("bob")
    case_id = open_case(client, "w-1")
    ana = log_in(client, "ana")
    bob = log_in(client, "bob")
    bodies: dict[str, object] = {
        "transfer": {"office": "TH"},
        "reply": {"text": "hello"},
        "notes": {"text": "a note"},
    }
    posts = [("take-next", {})] + [(f"cases/{case_id}/{r}", bodies.get(r, {})) for r in CASE_ROUTES]
    before = actions(case_id)
    for header in (None, "made-up", bob.csrf):
        for path, body in posts:
            response = client.post(f"/console/api/{path}", json=body, headers=ana.headers(header))
            assert response.status_code == 403, (path, header)
            assert response.json() == {"error": console_text("en", "error_csrf")}
    case = case_row(case_id)
    assert (case.status, case.claimed_by, case.office) == ("queued", None, "KH")
    assert actions(case_id) == before
    assert responder_messages(case_id) == []
    with session_scope() as session:
        assert session.execute(select(func.count(CaseNote.id))).scalar() == 0
    # With the token, the same request works.
    assert ana.post(f"cases/{case_id}/claim").status_code == 200


# --- the queue and routing ------------------------------------------------------------------


def test_a_responder_sees_their_languages_and_offices_and_every_critical_case(
    client: TestClient,
) -> None:
    add_responder("ana", languages=["th"], offices=["KH"])
    add_responder("bob")  # no languages or offices: serves all
    th_kh = open_case(client, "w-th", language="th", country="Cambodia")
    vi_kh = open_case(client, "w-vi", language="vi", country="Cambodia")
    th_vn = open_case(client, "w-th-vn", language="th", country="Vietnam")
    critical = open_case(client, "w-crit", urgency="critical", language="vi", country="Vietnam")
    ana, bob = log_in(client, "ana"), log_in(client, "bob")

    cases = ana.get("/console/api/queue").json()["cases"]
    assert [c["id"] for c in cases] == [critical, th_kh]
    assert all(set(c) >= SUMMARY_FIELDS for c in cases)
    mine = cases[1]
    assert (mine["language"], mine["office"], mine["country"]) == ("th", "KH", "Cambodia")
    assert (mine["status"], mine["urgency"], mine["mine"], mine["claimed_by"]) == (
        "queued",
        "medium",
        False,
        None,
    )
    assert [c["id"] for c in bob.get("/console/api/queue").json()["cases"]] == [
        critical,
        th_kh,
        vi_kh,
        th_vn,
    ]
    for other in (vi_kh, th_vn):
        assert ana.post(f"cases/{other}/claim").status_code in (403, 409)
        assert case_row(other).status == "queued"
    taken = [ana.take_next().json()["case"]["id"], ana.take_next().json()["case"]["id"]]
    assert taken == [critical, th_kh]
    assert ana.take_next().status_code == 404, "the vi case and the VN case are not offered"


def test_take_next_serves_the_critical_case_first_then_by_urgency(client: TestClient) -> None:
    add_responder("ana", languages=["th"], offices=["KH"], ui_language="th")
    low = open_case(client, "w-low", urgency="low")
    high = open_case(client, "w-high", urgency="high")
    critical = open_case(client, "w-crit", urgency="critical")
    medium = open_case(client, "w-med", urgency="medium")
    ana = log_in(client, "ana")
    assert [c["id"] for c in ana.get("/console/api/queue").json()["cases"]] == [
        critical,
        high,
        medium,
        low,
    ]
    taken = []
    for _ in range(4):
        response = ana.take_next()
        assert response.status_code == 200
        case = response.json()["case"]
        assert (case["status"], case["mine"], case["claimed_by"]) == ("claimed", True, "ana")
        taken.append(case["id"])
    assert taken == [critical, high, medium, low]
    empty = ana.take_next()
    assert empty.status_code == 404
    assert empty.json() == {"error": console_text("th", "error_nothing_to_take")}


def test_claiming_a_case_someone_else_holds_is_a_conflict(client: TestClient) -> None:
    add_responder("ana", ui_language="th")
    add_responder("bob")
    case_id = open_case(client, "w-1")
    ana, bob = log_in(client, "ana"), log_in(client, "bob")
    assert bob.take_next().json()["case"]["id"] == case_id
    conflict = ana.post(f"cases/{case_id}/claim")
    assert conflict.status_code == 409
    assert conflict.json() == {"error": console_text("th", "error_conflict")}
    assert case_row(case_id).claimed_by is not None
    held = [c for c in ana.get("/console/api/queue").json()["cases"] if c["id"] == case_id]
    assert [(c["status"], c["claimed_by"], c["mine"]) for c in held] == [("claimed", "bob", False)]
    assert bob.post(f"cases/{case_id}/claim").status_code == 200, "the holder may claim again"
    missing = ana.post("cases/999/claim")
    assert missing.status_code == 404
    assert missing.json() == {"error": console_text("th", "error_not_found")}


# --- the case view --------------------------------------------------------------------------


def test_the_case_view_speaks_the_responders_language_and_highlights_the_evidence(
    client: TestClient,
) -> None:
    add_responder("ana", ui_language="th")
    add_responder("bob", ui_language="en")
    case_id = open_case(
        client,
        "w-pp",
        indicators=("documents_retained",),
        language="th",
        words="they took my passport",
    )
    th, en = console_strings("th"), console_strings("en")
    detail = log_in(client, "ana").case(case_id)
    assert detail["urgency_label"] == th["urgency_medium"]
    assert detail["indicator_labels"] == {"documents_retained": th["indicator_documents_retained"]}
    assert detail["reporter_label"] == th["reporter_self"]
    assert detail["language_name"] == "ไทย", "the person's language named in Thai"
    english = log_in(client, "bob").case(case_id)
    assert english["urgency_label"] == en["urgency_medium"] == "Medium"
    assert english["language_name"] == "Thai"

    inbound = [m for m in detail["messages"] if m["direction"] == "in"]
    assert [(m["author"], m["text"]) for m in inbound] == [("person", "they took my passport")]
    [highlight] = inbound[0]["highlights"]
    assert highlight["indicator"] == "documents_retained"
    assert highlight["label"] == th["indicator_documents_retained"]
    evidence = inbound[0]["text"][highlight["start"] : highlight["end"]]
    assert "passport" in evidence
    assert len(evidence) < len(inbound[0]["text"]), "the span marks the evidence, not all"
    bot = [m for m in detail["messages"] if m["direction"] == "out"]
    assert [m["author"] for m in bot] == ["bot", "bot"]
    assert bot[0]["text"] == "read: they took my passport"
    assert detail["location"] is None and detail["notes"] == []
    assert set(detail) >= SUMMARY_FIELDS
    assert all(set(m) == MESSAGE_FIELDS for m in detail["messages"])
    assert all(set(e) == EVENT_FIELDS for e in detail["events"])


def test_every_read_of_a_case_is_audited(client: TestClient) -> None:
    add_responder("ana")
    add_responder("bob")
    case_id = open_case(client, "w-1")
    ana, bob = log_in(client, "ana"), log_in(client, "bob")
    ana.case(case_id)
    ana.case(case_id)
    last = bob.case(case_id)
    assert [a for a in actions(case_id) if a[0] == "viewed"] == [
        ("viewed", "ana"),
        ("viewed", "ana"),
        ("viewed", "bob"),
    ]
    trail = [(e["action"], e["actor"], e["from"], e["to"]) for e in last["events"]]
    assert trail[:2] == [("opened", "bot", None, "bot"), ("escalated", "bot", "bot", "queued")]
    assert trail[-1] == ("viewed", "bob", "queued", "queued")
    assert case_row(case_id).status == "queued", "reading changes nothing else"
    missing = ana.get("/console/api/cases/999")
    assert missing.status_code == 404
    assert missing.json() == {"error": console_text("en", "error_not_found")}


# --- replies and the web chat delivery ------------------------------------------------------


def test_only_the_holder_of_a_case_can_reply(client: TestClient) -> None:
    add_responder("ana")
    add_responder("bob")
    case_id = open_case(client, "w-1")
    ana, bob = log_in(client, "ana"), log_in(client, "bob")
    waiting = ana.post(f"cases/{case_id}/reply", {"text": "hello"})
    assert waiting.status_code == 409, "nobody holds a queued case"
    ana.take_next()
    not_holder = bob.post(f"cases/{case_id}/reply", {"text": "hello from bob"})
    assert not_holder.status_code == 409
    assert not_holder.json() == {"error": console_text("en", "error_conflict")}
    assert responder_messages(case_id) == []
    assert poll(client, "w-1") == []


def test_a_reply_has_1_to_4000_characters(client: TestClient) -> None:
    add_responder("ana")
    case_id = open_case(client, "w-1")
    ana = log_in(client, "ana")
    ana.take_next()
    path = f"cases/{case_id}/reply"
    for body in ({"text": ""}, {"text": "   "}, {"text": "x" * 4001}, {"text": 5}, {}):
        response = ana.post(path, body)
        assert response.status_code == 400, body
        assert "error" in response.json()
    not_json = client.post(
        f"/console/api/{path}",
        content=b"{nope",
        headers={**ana.headers(ana.csrf), "content-type": "application/json"},
    )
    assert not_json.status_code == 400
    assert responder_messages(case_id) == []
    longest = "ก" * 4000
    assert ana.post(path, {"text": longest}).status_code == 200
    assert responder_messages(case_id) == [(longest, "pending")]


@pytest.mark.xfail(
    reason=(
        "BUG: bot/console/routes.py _json_body reads at most 16 KiB, so a valid 4000-character "
        "Thai reply sent as ASCII-escaped JSON (\\u0e01 = 6 bytes a character, what Python's "
        "json.dumps sends) is refused with 400 'not understood'"
    ),
    strict=True,
)
def test_a_4000_character_reply_is_accepted_however_its_json_is_escaped(
    client: TestClient,
) -> None:
    add_responder("ana")
    case_id = open_case(client, "w-1")
    ana = log_in(client, "ana")
    ana.take_next()
    response = client.post(
        f"/console/api/cases/{case_id}/reply",
        content=json.dumps({"text": "ก" * 4000}).encode(),  # ensure_ascii: \u0e01 escapes
        headers={**ana.headers(ana.csrf), "content-type": "application/json"},
    )
    assert response.status_code == 200


def test_replies_reach_the_persons_page_once_each_in_order(client: TestClient) -> None:
    add_responder("ana")
    case_id = open_case(client, "w-1")
    open_case(client, "w-2")
    ana = log_in(client, "ana")
    ana.take_next()
    first = ana.post(f"cases/{case_id}/reply", {"text": "  I am Ana, I can help.  "})
    second = ana.post(f"cases/{case_id}/reply", {"text": "Are you safe now?"})
    assert first.status_code == second.status_code == 200
    message = first.json()["message"]
    assert (message["direction"], message["author"], message["status"]) == ("out", "ana", "pending")
    assert message["text"] == "I am Ana, I can help."
    assert responder_messages(case_id) == [
        ("I am Ana, I can help.", "pending"),
        ("Are you safe now?", "pending"),
    ]
    ids = [first.json()["message"]["id"], second.json()["message"]["id"]]

    assert poll(client, "w-2") == [], "another person's page gets none of them"
    fetched = poll(client, "w-1")
    assert fetched == [
        {"id": ids[0], "text": "I am Ana, I can help.", "buttons": []},
        {"id": ids[1], "text": "Are you safe now?", "buttons": []},
    ]
    assert [status for _, status in responder_messages(case_id)] == ["delivered", "delivered"]
    assert poll(client, "w-1", after=ids[1]) == [], "nothing new after the last one shown"
    third = ana.post(f"cases/{case_id}/reply", {"text": "Stay on this page."})
    assert poll(client, "w-1", after=ids[1]) == [
        {"id": third.json()["message"]["id"], "text": "Stay on this page.", "buttons": []}
    ]
    statuses = [m["status"] for m in ana.case(case_id)["messages"] if m["author"] == "ana"]
    assert statuses == ["delivered", "delivered", "delivered"]


def test_the_poll_refuses_malformed_bodies_and_delivers_nothing(client: TestClient) -> None:
    add_responder("ana")
    case_id = open_case(client, "w-1")
    ana = log_in(client, "ana")
    ana.take_next()
    ana.post(f"cases/{case_id}/reply", {"text": "hello"})
    bad: list[bytes] = [
        b"{nope",
        b"[1, 2]",
        b'{"after": 0}',
        b'{"sender": "a b", "after": 0}',
        b'{"sender": 7, "after": 0}',
        b'{"sender": "w-1", "after": -1}',
        b'{"sender": "w-1", "after": "0"}',
        b'{"sender": "w-1", "after": true}',
        b'{"sender": "w-1", "after": 1.5}',
        b'{"sender": "w-1", "after": 0, "pad": "' + b"x" * 5000 + b'"}',
    ]
    for body in bad:
        response = client.post(
            "/webchat/poll", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, body
        assert "error" in response.json()
    assert responder_messages(case_id) == [("hello", "pending")]


def _xfail_on_sqlite(request: pytest.FixtureRequest, db_url: str, reason: str) -> None:
    """The bug shows on SQLite only (PostgreSQL compares any integer): strict there."""
    request.applymarker(pytest.mark.xfail(db_url.startswith("sqlite"), reason=reason, strict=True))


def test_a_poll_after_an_id_beyond_any_message_is_no_server_error(
    client: TestClient, db_url: str, request: pytest.FixtureRequest
) -> None:
    _xfail_on_sqlite(
        request,
        db_url,
        "BUG: bot/channels/webchat.py poll() accepts any 'after' >= 0; on SQLite one >= 2**63 "
        "raises OverflowError in collect_pulled's query: a 500 instead of 400 (or no messages)",
    )
    chat(client, "w-1", "hello")
    response = client.post("/webchat/poll", json={"sender": "w-1", "after": 2**63})
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json() == {"messages": []}


def test_a_case_id_beyond_any_case_is_not_found(
    client: TestClient, db_url: str, request: pytest.FixtureRequest
) -> None:
    _xfail_on_sqlite(
        request,
        db_url,
        "BUG: bot/console/routes.py _case_id() passes any {case_id:int} to the database; on "
        "SQLite an id >= 2**63 raises OverflowError: a 500 instead of 404",
    )
    add_responder("ana")
    ana = log_in(client, "ana")
    response = ana.get(f"/console/api/cases/{2**63}")
    assert response.status_code == 404
    assert response.json() == {"error": console_text("en", "error_not_found")}


# --- release, transfer, resolve -------------------------------------------------------------


def test_a_released_case_keeps_its_place_in_the_queue(client: TestClient) -> None:
    add_responder("ana")
    older = open_case(client, "w-old", urgency="high")
    newer = open_case(client, "w-new", urgency="high")
    ana = log_in(client, "ana")
    assert ana.take_next().json()["case"]["id"] == older
    released = ana.post(f"cases/{older}/release")
    assert released.status_code == 200
    assert (released.json()["case"]["status"], released.json()["case"]["mine"]) == (
        "queued",
        False,
    )
    assert [c["id"] for c in ana.get("/console/api/queue").json()["cases"]] == [older, newer]
    assert ana.take_next().json()["case"]["id"] == older
    assert ("released", "ana") in actions(older)
    assert ana.post(f"cases/{newer}/release").status_code == 409, "only the holder releases"


def test_a_case_transferred_to_a_responder_waits_for_them_only(client: TestClient) -> None:
    for name in ("ana", "bob", "cai"):
        add_responder(name, languages=["th"], offices=["KH"])
    case_id = open_case(client, "w-1", urgency="high")
    ana, bob, cai = log_in(client, "ana"), log_in(client, "bob"), log_in(client, "cai")
    ana.take_next()
    moved = ana.post(f"cases/{case_id}/transfer", {"responder": "bob"})
    assert moved.status_code == 200
    summary = moved.json()["case"]
    assert (summary["status"], summary["assigned_to"], summary["claimed_by"]) == (
        "queued",
        "bob",
        None,
    )
    assert case_id not in [c["id"] for c in cai.get("/console/api/queue").json()["cases"]]
    assert cai.take_next().status_code == 404
    assert ana.take_next().status_code == 404, "not even the one who passed it on"
    assert bob.take_next().json()["case"]["id"] == case_id
    assert ("transferred", "ana") in actions(case_id)

    unknown = bob.post(f"cases/{case_id}/transfer", {"responder": "nobody"})
    assert unknown.status_code == 400
    assert unknown.json() == {"error": console_text("en", "error_unknown_responder")}
    assert case_row(case_id).status == "claimed"


def test_a_critical_case_transferred_to_a_responder_is_still_offered_to_everyone(
    client: TestClient,
) -> None:
    for name in ("ana", "bob", "cai"):
        add_responder(name, languages=["th"], offices=["KH"])
    case_id = open_case(client, "w-1", urgency="critical")
    ana, cai = log_in(client, "ana"), log_in(client, "cai")
    ana.take_next()
    assert ana.post(f"cases/{case_id}/transfer", {"responder": "bob"}).status_code == 200
    assert cai.take_next().json()["case"]["id"] == case_id


def test_a_case_transferred_to_another_office_leaves_this_offices_queue(
    client: TestClient,
) -> None:
    add_responder("ana", offices=["KH"])
    add_responder("tom", offices=["TH"])
    case_id = open_case(client, "w-1", country="Cambodia")
    ana, tom = log_in(client, "ana"), log_in(client, "tom")
    assert tom.take_next().status_code == 404
    moved = ana.post(f"cases/{case_id}/transfer", {"office": "th"})
    assert moved.status_code == 200
    assert moved.json()["case"]["office"] == "TH"
    assert ana.take_next().status_code == 404
    assert tom.take_next().json()["case"]["id"] == case_id
    back = tom.post(f"cases/{case_id}/transfer", {"office": "KH"})
    assert (back.status_code, back.json()["case"]["office"]) == (200, "KH")
    for body in ({}, {"office": 5}, {"responder": ["bob"]}):
        assert ana.post(f"cases/{case_id}/transfer", body).status_code == 400, body
    assert case_row(case_id).office == "KH"


@pytest.mark.xfail(
    reason=(
        "BUG: bot/handoff/offices.py is_office() accepts every 2-letter code in Babel's "
        "territory names, including 'ZZ' (Unknown Region), 'EU', 'UN', 'QO', 'XA', so a case "
        "can be transferred to an office that does not exist"
    ),
    strict=True,
)
def test_a_transfer_to_an_unknown_office_is_refused(client: TestClient) -> None:
    add_responder("ana")
    case_id = open_case(client, "w-1", country="Cambodia")
    ana = log_in(client, "ana")
    ana.take_next()
    refused = ana.post(f"cases/{case_id}/transfer", {"office": "ZZ"})
    assert refused.status_code == 400
    case = case_row(case_id)
    assert (case.office, case.status) == ("KH", "claimed")


@pytest.mark.xfail(
    reason=(
        "BUG: bot/handoff/casework.py can_serve() still applies the assignee's languages and "
        "offices to a case transferred to them, so a non-critical case transferred to a "
        "responder who does not list its language is offered to nobody, and transfer() "
        "accepts it without a word"
    ),
    strict=True,
)
def test_a_case_transferred_to_a_responder_is_never_lost(client: TestClient) -> None:
    add_responder("ana")  # serves all languages
    add_responder("bob", languages=["vi"])
    case_id = open_case(client, "w-1", language="th")
    ana, bob = log_in(client, "ana"), log_in(client, "bob")
    ana.take_next()
    moved = ana.post(f"cases/{case_id}/transfer", {"responder": "bob"})
    if moved.status_code == 200:
        # Bob was chosen by name: the case waits for him.
        assert bob.take_next().status_code == 200
    else:
        # Or the transfer is refused and the case stays with Ana.
        assert moved.status_code == 400
        assert case_row(case_id).status == "claimed"


def test_resolving_a_case_returns_the_conversation_to_the_bot(
    client: TestClient, rasa: OrderedRasa
) -> None:
    add_responder("ana")
    add_responder("bob")
    case_id = open_case(client, "w-1", language="th")
    sender = public_id("w-1")
    with session_scope() as session:
        # The handoff reply was long ago, so the next message earns one holding message.
        case = session.get(Case, case_id)
        case.holding_sent_at = db_now() - timedelta(days=1)
    calls = len(rasa.calls)
    held = [chat(client, "w-1", "ฉันยังอยู่ที่นี่"), chat(client, "w-1", "ช่วยด้วยค่ะ")]
    ana, bob = log_in(client, "ana"), log_in(client, "bob")
    ana.take_next()
    assert bob.post(f"cases/{case_id}/resolve").status_code == 409, "only the holder resolves"
    held.append(chat(client, "w-1", "ขอบคุณค่ะ"))
    assert len(rasa.calls) == calls, "while a person has the case, nothing reaches Rasa"
    holding = render("utter_holding", "th", "webchat", {})["text"]
    assert [[m["text"] for m in replies] for replies in held] == [[holding], [], []]
    assert sender not in rasa.appended

    resolved = ana.post(f"cases/{case_id}/resolve")
    assert resolved.status_code == 200
    assert resolved.json()["case"]["status"] == "resolved"
    events = rasa.appended[sender]
    assert is_subsequence(RESET_SEQUENCE, [(e["event"], e.get("name")) for e in events])
    assert {"event": "slot", "name": "language", "value": "th"} in events
    with session_scope() as session:
        contact = session.execute(select(Contact).where(Contact.public_id == sender)).scalar_one()
        assert contact.dialogue_reset_pending is False

    replies = chat(client, "w-1", "สวัสดีค่ะ")
    assert len(rasa.calls) == calls + 1
    assert rasa.calls[-1]["sender"] == sender
    assert replies[0]["text"] == "read: สวัสดีค่ะ"
    assert len(rasa.appended[sender]) == len(events), "the dialogue is reset once"
    assert ana.take_next().status_code == 404
    assert ana.post(f"cases/{case_id}/resolve").status_code == 409


def test_a_resolve_while_rasa_is_down_resets_the_dialogue_before_the_next_message(
    client: TestClient, rasa: OrderedRasa
) -> None:
    add_responder("ana")
    case_id = open_case(client, "w-1", language="th")
    sender = public_id("w-1")
    ana = log_in(client, "ana")
    ana.take_next()
    rasa.fail = True
    resolved = ana.post(f"cases/{case_id}/resolve")
    assert resolved.status_code == 200
    assert case_row(case_id).status == "resolved"
    with session_scope() as session:
        contact = session.execute(select(Contact).where(Contact.public_id == sender)).scalar_one()
        assert contact.dialogue_reset_pending is True
    assert sender not in rasa.appended

    rasa.fail = False
    rasa.paths.clear()
    replies = chat(client, "w-1", "สวัสดีค่ะ")
    assert replies[0]["text"] == "read: สวัสดีค่ะ"
    assert rasa.paths == [f"/conversations/{sender}/tracker/events", "/webhooks/rest/webhook"]
    events = [(e["event"], e.get("name")) for e in rasa.appended[sender]]
    assert is_subsequence(RESET_SEQUENCE, events)
    with session_scope() as session:
        contact = session.execute(select(Contact).where(Contact.public_id == sender)).scalar_one()
        assert contact.dialogue_reset_pending is False


def test_a_responder_cannot_resolve_a_queued_case_they_may_not_take(client: TestClient) -> None:
    add_responder("ana", languages=["th"], offices=["KH"])
    case_id = open_case(client, "w-vi", language="vi", country="Vietnam")
    ana = log_in(client, "ana")
    response = ana.post(f"cases/{case_id}/resolve")
    assert response.status_code in (403, 409)
    assert case_row(case_id).status == "queued"


# --- notes ----------------------------------------------------------------------------------


def test_notes_are_encrypted_shown_to_responders_and_never_sent(client: TestClient) -> None:
    add_responder("ana")
    case_id = open_case(client, "w-1")
    ana = log_in(client, "ana")
    ana.take_next()
    words = "Caller sounds scared; compound near the Poipet casino"
    added = ana.post(f"cases/{case_id}/notes", {"text": words})
    assert added.status_code == 200
    assert (added.json()["note"]["text"], added.json()["note"]["author"]) == (words, "ana")
    with session_scope() as session:
        [raw] = session.execute(text("SELECT body FROM case_notes")).scalars()
        bodies = [m.body for m in session.execute(select(Message)).scalars()]
    assert raw != words
    assert "Poipet" not in raw
    assert words not in bodies
    notes = ana.case(case_id)["notes"]
    assert [(n["author"], n["text"]) for n in notes] == [("ana", words)]
    assert set(notes[0]) == NOTE_FIELDS
    assert poll(client, "w-1") == []
    assert ana.post(f"cases/{case_id}/notes", {"text": " "}).status_code == 400


# --- the live feed --------------------------------------------------------------------------


def _wait_for(lines: Iterator[str], kind: str, **expected: object) -> dict[str, Any]:
    """The data of the next ``kind`` event that has ``expected`` in it (within 2 seconds)."""
    deadline = time.monotonic() + 2.0
    event = ""
    for line in lines:
        assert time.monotonic() < deadline, f"no {kind} event {expected} within 2 s"
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == kind:
            data: dict[str, Any] = json.loads(line.removeprefix("data: "))
            if expected.items() <= data.items():
                return data
    raise AssertionError("the stream ended")


def test_the_event_stream_announces_queue_changes_and_new_messages(db_url: str) -> None:
    add_responder("ana")
    port = free_port()
    timeout = httpx.Timeout(10.0, read=3.0)  # heartbeats are 15 s apart: silence fails fast
    with (
        serve_with_lifespan(create_app(load_settings()), port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout) as http,
    ):
        csrf = login_csrf(http)
        login = http.post(
            "/console/login", data={"username": "ana", "password": PASSWORD, "csrf": csrf}
        )
        assert login.status_code == 303
        page_token = page_csrf(http.get("/console").text)
        with http.stream("GET", "/console/api/events") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            with session_scope() as session:
                found = queue.record_inbound(
                    session, channel="webchat", address="w-sse", text="help", external_id=None
                )
                case_id = int(found.case.id)
                queue.escalate(
                    session,
                    found.contact.public_id,
                    urgency="critical",
                    indicators=["violence"],
                    language="th",
                    reporter="self",
                    channel="webchat",
                )
            _wait_for(lines, "queue", case_id=case_id, reason="escalated")
            headers = {"x-csrf-token": page_token}
            assert http.post("/console/api/take-next", headers=headers).status_code == 200
            _wait_for(lines, "queue", case_id=case_id, reason="claimed")
            sent = http.post(
                f"/console/api/cases/{case_id}/reply", json={"text": "hi"}, headers=headers
            )
            message_id = sent.json()["message"]["id"]
            _wait_for(lines, "message", case_id=case_id, message_id=message_id)


# --- the dashboard --------------------------------------------------------------------------


def test_stats_count_what_waits_what_cases_are_about_and_time_to_claim(
    client: TestClient,
) -> None:
    add_responder("ana", ui_language="th")
    th = console_strings("th")
    critical = open_case(client, "w-1", urgency="critical", indicators=("violence",))
    open_case(client, "w-2", urgency="high", indicators=("documents_retained", "violence"))
    open_case(client, "w-3", urgency="medium", indicators=("violence",))
    ana = log_in(client, "ana")
    before = ana.get("/console/api/stats").json()
    assert before["waiting_by_urgency"] == {"low": 0, "medium": 1, "high": 1, "critical": 1}
    assert before["by_indicator"] == [
        {"id": "violence", "label": th["indicator_violence"], "count": 3},
        {"id": "documents_retained", "label": th["indicator_documents_retained"], "count": 1},
    ]
    assert before["by_country"] == [{"country": "Cambodia", "count": 3}]
    assert before["by_language"] == [{"language": "th", "name": "ไทย", "count": 3}]
    assert before["labels"] == {tier: th[f"urgency_{tier}"] for tier in before["labels"]}
    assert set(before["labels"]) == {"low", "medium", "high", "critical"}
    assert before["time_to_claim"] == []

    assert ana.take_next().json()["case"]["id"] == critical
    after = ana.get("/console/api/stats").json()
    assert after["waiting_by_urgency"] == {"low": 0, "medium": 1, "high": 1, "critical": 0}
    with session_scope() as session:
        claimed_at = session.execute(
            select(CaseEvent.at).where(CaseEvent.action == "claimed")
        ).scalar_one()
    [day] = after["time_to_claim"]
    assert (day["day"], day["n"]) == (claimed_at.date().isoformat(), 1)
    assert day["p50"] is not None and 0 <= day["p50"] == day["p90"] == day["p99"] < 60


def test_me_and_the_responders_for_transfer(client: TestClient) -> None:
    add_responder("ana", languages=["th", "en"], offices=["KH"], ui_language="th")
    add_responder("bob", languages=["vi"], offices=["VN", "KH"])
    with session_scope() as session:
        cai = create_responder(session, "cai", PASSWORD)
        cai.is_active = False
    ana = log_in(client, "ana")
    assert ana.get("/console/api/me").json() == {
        "username": "ana",
        "display_name": "ana",
        "languages": ["en", "th"],
        "offices": ["KH"],
        "ui_language": "th",
        "role": "responder",
    }
    listed = ana.get("/console/api/responders").json()
    assert [
        (r["username"], r["display_name"], r["languages"], r["offices"])
        for r in listed["responders"]
    ] == [("ana", "ana", ["en", "th"], ["KH"]), ("bob", "bob", ["vi"], ["KH", "VN"])]
    assert listed["offices"] == ["KH", "VN"]
