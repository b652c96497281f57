"""Roles: what a responder, a supervisor and an admin see and may do, and account management.

The gateway is real (SQLite and, with ``BEACON_TEST_DATABASE_URL``, PostgreSQL);
people write on the web chat and cases are queued the way the action server
queues them. Accounts are made as an operator makes them (``beacon responder
add``) or by an admin on the console's admin API.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from starlette.testclient import TestClient

from bot.cli import ROLE_CHOICES
from bot.cli import main as beacon
from bot.console.auth import create_responder
from bot.db import session_scope
from bot.db.models import ROLES, AccountEvent, Responder
from bot.i18n import console_text
from tests import test_console_api
from tests.test_console_api import (
    PASSWORD,
    Console,
    actions,
    case_row,
    log_in,
    open_case,
    try_login,
)

#: The console tests' fixtures: the running gateway and its stand-in Rasa.
client = test_console_api.client
rasa = test_console_api.rasa

ADMIN_READS = ["/console/api/admin/accounts", "/console/api/admin/events"]
ADMIN_WRITES = [
    ("admin/accounts", {"username": "eve", "role": "admin"}),
    ("admin/accounts/ana", {"role": "admin"}),
    ("admin/accounts/ana/unlock", {}),
    ("admin/accounts/ana/password", {}),
]


def account(username: str, role: str = "responder", **kw: Any) -> None:
    with session_scope() as session:
        create_responder(session, username, PASSWORD, role=role, **kw)


def queue_ids(console: Console) -> list[int]:
    return [c["id"] for c in console.get("/console/api/queue").json()["cases"]]


def account_events() -> list[tuple[str, str, str, dict[str, Any] | None]]:
    with session_scope() as session:
        return [
            (e.actor, e.action, e.target, e.detail)
            for e in session.execute(select(AccountEvent).order_by(AccountEvent.id)).scalars()
        ]


def listed(admin: Console) -> dict[str, dict[str, Any]]:
    response = admin.get("/console/api/admin/accounts")
    assert response.status_code == 200, response.text
    return {a["username"]: a for a in response.json()["accounts"]}


# --- what each role sees --------------------------------------------------------------------


def test_a_supervisor_sees_every_case_of_their_offices_whatever_the_language(
    client: TestClient,
) -> None:
    account("ana", languages=["th"], offices=["KH"])
    account("sam", "supervisor", languages=["th"], offices=["KH"])
    th_kh = open_case(client, "w-th", language="th", country="Cambodia")
    vi_kh = open_case(client, "w-vi", language="vi", country="Cambodia")
    th_vn = open_case(client, "w-th-vn", language="th", country="Vietnam")
    critical = open_case(client, "w-crit", urgency="critical", language="vi", country="Vietnam")
    ana, sam = log_in(client, "ana"), log_in(client, "sam")

    assert queue_ids(ana) == [critical, th_kh]
    assert queue_ids(sam) == [critical, th_kh, vi_kh], "not the Vietnam office's case"
    assert sam.get("/console/api/me").json()["role"] == "supervisor"

    refused = ana.get(f"/console/api/cases/{vi_kh}")
    assert refused.status_code == 403
    assert refused.json() == {"error": console_text("en", "error_forbidden")}
    assert ("viewed", "ana") not in actions(vi_kh), "a refused read reads nothing"
    assert ana.post(f"cases/{vi_kh}/notes", {"text": "x"}).status_code == 403
    assert sam.case(vi_kh)["language"] == "vi"
    assert ("viewed", "sam") in actions(vi_kh)
    assert sam.get(f"/console/api/cases/{th_vn}").status_code == 403

    assert [sam.take_next().json()["case"]["id"] for _ in range(3)] == [critical, th_kh, vi_kh]
    assert sam.take_next().status_code == 404


def test_a_responder_no_longer_sees_cases_others_hold_outside_their_routing(
    client: TestClient,
) -> None:
    account("ana", languages=["th"], offices=["KH"])
    account("bob", languages=["vi"], offices=["VN"])
    vi_vn = open_case(client, "w-vi", language="vi", country="Vietnam")
    critical = open_case(client, "w-crit", urgency="critical", language="vi", country="Vietnam")
    ana, bob = log_in(client, "ana"), log_in(client, "bob")
    assert [bob.take_next().json()["case"]["id"] for _ in range(2)] == [critical, vi_vn]
    held = {c["id"]: c["claimed_by"] for c in ana.get("/console/api/queue").json()["cases"]}
    assert held == {critical: "bob"}, "a critical case stays in view, the other is not hers"


def test_an_admin_sees_every_case_and_may_take_any(client: TestClient) -> None:
    account("ada", "admin", languages=["en"], offices=["PH"])
    cases = [
        open_case(client, "w-th", language="th", country="Cambodia"),
        open_case(client, "w-vi", language="vi", country="Vietnam", urgency="high"),
    ]
    ada = log_in(client, "ada")
    assert sorted(queue_ids(ada)) == sorted(cases)
    assert ada.case(cases[0])["office"] == "KH"
    assert ada.take_next().json()["case"]["id"] == cases[1]


# --- what a supervisor may do with cases others hold ---------------------------------------


def test_a_supervisor_releases_and_transfers_a_case_someone_else_holds(
    client: TestClient,
) -> None:
    account("ana", languages=["th"], offices=["KH"])
    account("bob", languages=["th"], offices=["KH"])
    account("sam", "supervisor", offices=["KH"])
    account("tia", "supervisor", offices=["TH"])
    case_id = open_case(client, "w-1", language="th", country="Cambodia")
    ana, bob, sam, tia = (log_in(client, n) for n in ("ana", "bob", "sam", "tia"))
    ana.take_next()

    assert bob.post(f"cases/{case_id}/release").status_code == 409, "a peer may not"
    assert tia.post(f"cases/{case_id}/release").status_code == 403, "another office's may not"
    shown = sam.case(case_id)
    assert (shown["claimed_by"], shown["may_oversee"]) == ("ana", True)
    released = sam.post(f"cases/{case_id}/release")
    assert released.status_code == 200
    assert (released.json()["case"]["status"], case_row(case_id).claimed_by) == ("queued", None)
    assert ("released", "sam") in actions(case_id)

    ana.take_next()
    moved = sam.post(f"cases/{case_id}/transfer", {"office": "TH"})
    assert moved.status_code == 200
    assert (moved.json()["case"]["office"], moved.json()["case"]["status"]) == ("TH", "queued")
    assert ("transferred", "sam") in actions(case_id)
    assert tia.take_next().json()["case"]["id"] == case_id
    assert sam.post(f"cases/{case_id}/reply", {"text": "hi"}).status_code == 403, (
        "the case left the supervisor's offices"
    )


def test_a_responder_cannot_close_a_queued_case_they_may_not_take(client: TestClient) -> None:
    account("ana", languages=["th"], offices=["KH"])
    account("sam", "supervisor", offices=["VN"])
    case_id = open_case(client, "w-vi", language="vi", country="Vietnam")
    ana, sam = log_in(client, "ana"), log_in(client, "sam")
    assert ana.post(f"cases/{case_id}/resolve").status_code == 403
    assert ana.post(f"cases/{case_id}/transfer", {"office": "KH"}).status_code == 403
    assert case_row(case_id).status == "queued"
    assert sam.post(f"cases/{case_id}/resolve").status_code == 200
    assert case_row(case_id).status == "resolved"


# --- the admin API -------------------------------------------------------------------------


def test_only_an_admin_reaches_the_account_api(client: TestClient) -> None:
    account("ana")
    account("sam", "supervisor")
    for username in ("ana", "sam"):
        console = log_in(client, username)
        for path in ADMIN_READS:
            refused = console.get(path)
            assert refused.status_code == 403, path
            assert refused.json() == {"error": console_text("en", "error_forbidden")}
        for path, body in ADMIN_WRITES:
            assert console.post(path, body).status_code == 403, path
    with session_scope() as session:
        roles = dict(session.execute(select(Responder.username, Responder.role)).all())
    assert roles == {"ana": "responder", "sam": "supervisor"}, "nothing was created or changed"
    assert account_events() == []


def test_an_admin_creates_an_account_with_a_password_shown_once(client: TestClient) -> None:
    account("ada", "admin")
    ada = log_in(client, "ada")
    created = ada.post(
        "admin/accounts",
        {
            "username": "dara",
            "display_name": "Dara",
            "role": "supervisor",
            "languages": ["KM", "en"],
            "offices": ["kh"],
        },
    )
    assert created.status_code == 200, created.text
    body = created.json()
    password = body["password"]
    assert isinstance(password, str) and len(password) >= 16
    assert body["account"] == listed(ada)["dara"]
    assert (body["account"]["role"], body["account"]["languages"], body["account"]["offices"]) == (
        "supervisor",
        ["en", "km"],
        ["KH"],
    )
    assert password not in ada.get("/console/api/admin/accounts").text, "shown only once"
    with session_scope() as session:
        stored = session.execute(select(Responder).where(Responder.username == "dara")).scalar_one()
        assert password not in stored.password_hash
    assert try_login(client, "dara", password).status_code == 303
    [event] = [e for e in account_events() if e[1] == "created"]
    assert event[:3] == ("ada", "created", "dara")
    history = ada.get("/console/api/admin/events").json()["events"]
    assert (history[0]["actor"], history[0]["action"], history[0]["target"]) == (
        "ada",
        "created",
        "dara",
    )


def test_malformed_or_duplicate_accounts_are_refused(client: TestClient) -> None:
    account("ada", "admin")
    ada = log_in(client, "ada")
    for body in (
        {"username": "Bad Name"},
        {"username": "zed", "role": "root"},
        {"username": "zed", "offices": ["XX1"]},
        {"username": "zed", "languages": "th"},
        {"username": "zed", "ui_language": "xx"},
    ):
        refused = ada.post("admin/accounts", body)
        assert refused.status_code == 400, body
        assert refused.json() == {"error": console_text("en", "error_account_invalid")}
    taken = ada.post("admin/accounts", {"username": "ada"})
    assert taken.status_code == 409
    assert taken.json() == {"error": console_text("en", "error_username_taken")}
    missing = ada.post("admin/accounts/nobody", {"role": "admin"})
    assert missing.status_code == 404
    assert set(listed(ada)) == {"ada"}


def test_a_role_change_takes_effect_at_the_next_request_and_is_audited(
    client: TestClient,
) -> None:
    account("ada", "admin")
    account("ana", languages=["th"], offices=["KH"])
    vi_kh = open_case(client, "w-vi", language="vi", country="Cambodia")
    ada, ana = log_in(client, "ada"), log_in(client, "ana")
    assert vi_kh not in queue_ids(ana)
    changed = ada.post(
        "admin/accounts/ana", {"role": "supervisor", "languages": ["th", "km"], "offices": ["KH"]}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["account"]["role"], changed.json()["account"]["languages"]) == (
        "supervisor",
        ["km", "th"],
    )
    assert vi_kh in queue_ids(ana), "same session, new role"
    assert [(a, act, t, d) for a, act, t, d in account_events()] == [
        ("ada", "role_changed", "ana", {"from": "responder", "to": "supervisor"}),
        ("ada", "languages_changed", "ana", {"from": ["th"], "to": ["km", "th"]}),
    ], "offices did not change, so no event for them"


def test_deactivating_an_account_ends_its_sessions_and_frees_its_cases(
    client: TestClient,
) -> None:
    account("ada", "admin")
    account("ana")
    account("bob")
    case_id = open_case(client, "w-1", urgency="high")
    passed_on = open_case(client, "w-2")
    ada, ana, bob = log_in(client, "ada"), log_in(client, "ana"), log_in(client, "bob")
    ana.take_next()
    bob.take_next()
    assert bob.post(f"cases/{passed_on}/transfer", {"responder": "ana"}).status_code == 200
    assert bob.take_next().status_code == 404, "it waits for ana"
    off = ada.post("admin/accounts/ana", {"active": False})
    assert off.status_code == 200
    assert off.json()["account"]["active"] is False
    assert ana.get("/console/api/queue").status_code == 401
    assert try_login(client, "ana").status_code == 401
    case = case_row(case_id)
    assert (case.status, case.claimed_by) == ("queued", None), "back in the queue for others"
    assert ("released", "ada") in actions(case_id)
    assert ("unassigned", "ada") in actions(passed_on)
    assert sorted(bob.take_next().json()["case"]["id"] for _ in range(2)) == [case_id, passed_on]
    assert ada.post("admin/accounts/ana", {"active": True}).status_code == 200
    assert try_login(client, "ana").status_code == 303
    assert [e[1] for e in account_events()] == ["deactivated", "reactivated"]


def test_an_admin_unlocks_an_account_and_sets_a_new_password(client: TestClient) -> None:
    account("ada", "admin")
    account("ana")
    ada = log_in(client, "ada")
    for _ in range(5):
        try_login(client, "ana", "wrong password!")
    assert try_login(client, "ana").status_code == 429
    assert listed(ada)["ana"]["locked"] is True
    unlocked = ada.post("admin/accounts/ana/unlock")
    assert (unlocked.status_code, unlocked.json()["account"]["locked"]) == (200, False)
    ana = log_in(client, "ana")

    fresh = ada.post("admin/accounts/ana/password").json()["password"]
    assert ana.get("/console/api/queue").status_code == 401, "her sessions ended"
    assert try_login(client, "ana").status_code == 401, "the old password is gone"
    assert try_login(client, "ana", fresh).status_code == 303
    assert [e[1] for e in account_events()] == ["unlocked", "password_set"]


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(client: TestClient) -> None:
    account("ada", "admin")
    ada = log_in(client, "ada")
    for change in ({"role": "supervisor"}, {"active": False}):
        refused = ada.post("admin/accounts/ada", change)
        assert refused.status_code == 409
        assert refused.json() == {"error": console_text("en", "error_last_admin")}
    assert ada.post("admin/accounts", {"username": "ben", "role": "admin"}).status_code == 200
    assert ada.post("admin/accounts/ada", {"role": "supervisor"}).status_code == 200
    assert ada.get("/console/api/admin/accounts").status_code == 403, "no longer an admin"


# --- the command line and the database -----------------------------------------------------


def test_beacon_responder_add_with_a_role_and_set_role_are_audited(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ROLE_CHOICES == ROLES
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    code = beacon(
        ["responder", "add", "sam", "--role", "supervisor", "--offices", "KH", "--password-stdin"]
    )
    assert code == 0
    assert "supervisor sam created" in capsys.readouterr().out
    assert beacon(["responder", "set-role", "sam", "admin"]) == 0
    assert beacon(["responder", "set-role", "nobody", "admin"]) == 2
    assert "No such account." in capsys.readouterr().err
    with pytest.raises(SystemExit):
        beacon(["responder", "set-role", "sam", "root"])
    with session_scope() as session:
        role = session.execute(select(Responder.role).where(Responder.username == "sam"))
        assert role.scalar_one() == "admin"
    assert [(e[0], e[1], e[2]) for e in account_events()] == [
        ("cli", "created", "sam"),
        ("cli", "role_changed", "sam"),
    ]


def test_an_account_is_a_responder_unless_told_and_no_other_role_is_stored(db_url: str) -> None:
    account("ana")
    with session_scope() as session:
        assert session.execute(select(Responder.role)).scalar_one() == "responder"
    with pytest.raises(IntegrityError), session_scope() as session:
        session.execute(text("UPDATE responders SET role = 'root' WHERE username = 'ana'"))
