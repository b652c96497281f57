"""Consent and sharing: nothing leaves the hotline without a recorded, valid consent.

The gateway is real (SQLite and, with ``BEACON_TEST_DATABASE_URL``,
PostgreSQL) with a stand-in Rasa; people write on the web chat and responders
use the console API with their session cookie and CSRF token, as the console
page does. A referral is read back the way its recipient would read it: the
JSON as JSON, the PDF's text with pypdf.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import select, text
from starlette.testclient import TestClient

from bot.cli import main as beacon
from bot.db import session_scope
from bot.db.models import CaseEvent
from bot.i18n import console_text
from bot.privacy import referral
from bot.privacy.keys import new_key, rotate
from tests import test_console_api
from tests.conftest import _reset_settings
from tests.test_console_api import Console, case_row, chat, escalate, log_in
from tests.test_roles import account

#: The console tests' fixtures: the running gateway and its stand-in Rasa.
client = test_console_api.client
rasa = test_console_api.rasa

PLACE = "Building C, third floor, KK Park"
NOTE = "Tôi bị giữ hộ chiếu, họ nói tôi nợ 5000 đô"
POLICE = "Royal Thai Police, Mae Sot station"


def a_case(client: TestClient, sender: str = "w-1", language: str = "vi") -> int:
    """A person in a compound writes; the assistant hands the case over with a place."""
    chat(client, sender, "họ giữ hộ chiếu của tôi, tôi không được đi")
    return escalate(
        sender,
        urgency="high",
        indicators=["documents_retained", "movement_restricted"],
        language=language,
        country="Myanmar",
        location=PLACE,
    )


def taken(client: TestClient, username: str = "ana", **kw: Any) -> tuple[Console, int]:
    """A responder who holds a fresh case (with a private note on it)."""
    account(username, **kw)
    console = log_in(client, username)
    case_id = a_case(client)
    assert console.post(f"cases/{case_id}/claim").status_code == 200
    assert console.post(f"cases/{case_id}/notes", {"text": NOTE}).status_code == 200
    return console, case_id


def consent_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "basis": "consent",
        "given_by": "person",
        "recipient_kind": "police",
        "recipient": POLICE,
        "data": ["summary"],
    }
    body.update(changes)
    return body


def record(console: Console, case_id: int, **changes: Any) -> dict[str, Any]:
    response = console.post(f"cases/{case_id}/consents", consent_body(**changes))
    assert response.status_code == 200, response.text
    recorded: dict[str, Any] = response.json()["consent"]
    return recorded


def export(console: Console, case_id: int, consent_id: int, fmt: str) -> httpx.Response:
    return console.get(f"/console/api/cases/{case_id}/referral/{consent_id}.{fmt}")


def events(case_id: int, *wanted: str) -> list[tuple[str, str, dict[str, Any]]]:
    with session_scope() as session:
        rows = session.execute(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        ).scalars()
        return [(e.action, e.actor, e.detail or {}) for e in rows if e.action in wanted]


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


# --- recording and withdrawing ----------------------------------------------------------------


def test_a_consent_is_recorded_shown_on_the_case_and_audited_without_the_recipients_name(
    client: TestClient,
) -> None:
    ana, case_id = taken(client)
    before = ana.case(case_id)
    assert before["consents"] == []
    assert before["may_share"] is True

    recorded = record(ana, case_id, data=["location", "summary"], given_by="guardian")
    assert recorded["valid"] is True
    assert recorded["data"] == ["summary", "location"], "kept in the fixed order, each once"
    shown = ana.case(case_id)["consents"]
    assert [(c["recipient"], c["basis"], c["given_by"], c["recorded_by"]) for c in shown] == [
        (POLICE, "consent", "guardian", "ana")
    ]
    assert shown[0]["exports"] == {
        "json": f"/console/api/cases/{case_id}/referral/{recorded['id']}.json",
        "pdf": f"/console/api/cases/{case_id}/referral/{recorded['id']}.pdf",
    }
    [(action, actor, detail)] = events(case_id, "consent_recorded")
    assert (action, actor) == ("consent_recorded", "ana")
    assert detail == {
        "consent": recorded["id"],
        "basis": "consent",
        "given_by": "guardian",
        "recipient_kind": "police",
        "data": ["summary", "location"],
    }
    # The recipient's name is personal data: encrypted at rest, and never in the audit trail.
    with session_scope() as session:
        [stored] = session.execute(text("SELECT recipient FROM consents")).scalars()
    assert "Mae Sot" not in stored


def test_a_withdrawn_consent_allows_no_export_and_says_who_withdrew_it(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    ana, case_id = taken(client)
    consent_id = record(ana, case_id)["id"]
    assert export(ana, case_id, consent_id, "json").status_code == 200

    done = ana.post(f"cases/{case_id}/consents/{consent_id}/withdraw")
    assert done.status_code == 200, done.text
    [shown] = ana.case(case_id)["consents"]
    assert (shown["valid"], shown["withdrawn_by"], shown["exports"]) == (False, "ana", None)
    assert shown["withdrawn_at"] is not None

    for fmt in ("json", "pdf"):
        refused = export(ana, case_id, consent_id, fmt)
        assert refused.status_code == 409
        assert refused.json() == {"error": console_text("en", "error_no_consent")}
    again = ana.post(f"cases/{case_id}/consents/{consent_id}/withdraw")
    assert again.status_code == 409
    assert again.json() == {"error": console_text("en", "error_consent_withdrawn")}
    assert [a for a, _, _ in events(case_id, "consent_withdrawn", "exported")] == [
        "exported",
        "consent_withdrawn",
    ]
    capsys.readouterr()
    assert beacon(["consent", "list", str(case_id), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["id"], listed["valid"], listed["withdrawn_by"]) == (consent_id, False, "ana")


def test_sharing_without_consent_needs_a_minor_or_a_threat_to_life_and_a_reason(
    client: TestClient,
) -> None:
    ana, case_id = taken(client)
    refusals = {
        "error_consent_reason": consent_body(basis="minor"),
        "error_consent_data": consent_body(data=["transcript"]),
        "error_consent_recipient": consent_body(recipient="   "),
        "error_consent_given_by": consent_body(given_by="none"),
        "error_consent_invalid": consent_body(basis="curiosity"),
    }
    for key, body in refusals.items():
        response = ana.post(f"cases/{case_id}/consents", body)
        assert response.status_code == 400, key
        assert response.json() == {"error": console_text("en", key)}
    no_data = ana.post(f"cases/{case_id}/consents", consent_body(data=[]))
    assert no_data.json() == {"error": console_text("en", "error_consent_data")}
    assert ana.case(case_id)["consents"] == []

    minor = record(
        ana,
        case_id,
        basis="minor",
        given_by="person",  # ignored: nobody consented
        recipient_kind="embassy",
        recipient="Embassy of Viet Nam, Yangon",
        reason="She says she is 16.",
    )
    assert (minor["basis"], minor["given_by"], minor["reason"]) == (
        "minor",
        "none",
        "She says she is 16.",
    )
    life = record(ana, case_id, basis="threat_to_life", reason="Beaten; transfer tonight.")
    assert life["valid"] is True
    document = export(ana, case_id, minor["id"], "json").json()
    assert document["consent"]["basis"] == "minor"
    assert document["consent"]["reason"] == "She says she is 16."


# --- what an export contains -------------------------------------------------------------------


def test_the_json_referral_holds_only_what_the_consent_covers(client: TestClient) -> None:
    ana, case_id = taken(client)
    consent_id = record(ana, case_id, data=["summary", "contact"])["id"]

    response = export(ana, case_id, consent_id, "json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="beacon-referral-{case_id}-{consent_id}.json"'
    document = response.json()
    assert set(document) == {
        "format",
        "case_reference",
        "consent",
        "recipient",
        "exported_by",
        "exported_at",
        "data",
    }
    assert document["case_reference"] == f"BEACON-{case_id}"
    assert document["recipient"] == {"kind": "police", "name": POLICE}
    assert document["consent"]["recorded_by"] == "ana"
    assert "reason" not in document["consent"], "consent needs no reason"
    assert document["exported_by"] == "ana"
    assert set(document["data"]) == {"summary", "contact"}
    summary = document["data"]["summary"]
    assert summary["urgency"] == "high"
    assert sorted(summary["indicators"]) == ["documents_retained", "movement_restricted"]
    assert (summary["language"], summary["reporter"]) == ("vi", "self")
    assert document["data"]["contact"] == {"channel": "webchat", "address": "w-1"}
    # Neither the place nor the country, nor the private note, was consented to.
    assert PLACE not in response.text
    assert "Myanmar" not in response.text
    assert NOTE not in response.text

    located = record(ana, case_id, recipient_kind="partner", data=["location", "notes"])
    document = export(ana, case_id, located["id"], "json").json()
    assert set(document["data"]) == {"location", "notes"}
    assert document["data"]["location"] == {"country": "Myanmar", "place": PLACE}
    [note] = document["data"]["notes"]
    assert (note["author"], note["text"]) == ("ana", NOTE)
    assert "w-1" not in json.dumps(document), "the contact was not consented to here"


def test_the_pdf_referral_is_printable_text_with_only_the_consented_items(
    client: TestClient,
) -> None:
    ana, case_id = taken(client)
    consent_id = record(ana, case_id, data=["summary", "notes"])["id"]

    response = export(ana, case_id, consent_id, "pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    shown = pdf_text(response.content)
    assert f"BEACON-{case_id}" in shown
    assert POLICE in shown
    assert "Documents retained" in shown, "indicators by their names"
    assert NOTE in shown, "the note, Vietnamese diacritics and all"
    assert "Building C" not in shown
    assert "w-1" not in shown


def test_without_a_unicode_font_the_pdf_is_still_made_and_says_what_it_could_not_draw(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(referral, "FONT_DIRS", (tmp_path / "no-fonts",))
    ana, case_id = taken(client)
    thai = "เขายึดพาสปอร์ตของฉัน"
    assert ana.post(f"cases/{case_id}/notes", {"text": f"She wrote: {thai}"}).status_code == 200
    consent_id = record(ana, case_id, data=["notes"])["id"]

    response = export(ana, case_id, consent_id, "pdf")
    assert response.status_code == 200, response.text
    shown = pdf_text(response.content)
    assert POLICE in shown
    assert "She wrote: ?" in shown
    assert thai not in shown
    assert "JSON export" in shown, "the PDF points to the exact JSON"
    assert thai in export(ana, case_id, consent_id, "json").text


# --- refusals, audit, access -------------------------------------------------------------------


def test_export_without_a_consent_row_for_the_case_is_refused_and_not_audited(
    client: TestClient,
) -> None:
    ana, case_id = taken(client)
    view = ana.case(case_id)
    assert view["consents"] == []
    for fmt in ("json", "pdf"):
        refused = export(ana, case_id, 1, fmt)
        assert refused.status_code == 409
        assert refused.json() == {"error": console_text("en", "error_no_consent")}
    # A consent recorded on another case does not open this one.
    other = a_case(client, "w-2")
    assert ana.post(f"cases/{other}/claim").status_code == 200
    elsewhere = record(ana, other)["id"]
    assert export(ana, case_id, elsewhere, "json").status_code == 409
    assert events(case_id, "exported") == []


def test_every_export_is_in_the_audit_trail_that_beacon_audit_shows(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    ana, case_id = taken(client)
    consent_id = record(ana, case_id, data=["summary"])["id"]
    assert export(ana, case_id, consent_id, "json").status_code == 200
    assert export(ana, case_id, consent_id, "pdf").status_code == 200

    capsys.readouterr()
    assert beacon(["audit", str(case_id), "--json"]) == 0
    trail = json.loads(capsys.readouterr().out)
    exported = [(e["actor"], e["detail"]) for e in trail if e["action"] == "exported"]
    assert exported == [
        ("ana", {"consent": consent_id, "format": "json", "recipient_kind": "police"}),
        ("ana", {"consent": consent_id, "format": "pdf", "recipient_kind": "police"}),
    ]
    assert "Mae Sot" not in json.dumps(trail), "no recipient name in the audit trail"
    assert [e["action"] for e in ana.case(case_id)["events"]].count("exported") == 2


def test_only_who_may_act_on_the_case_records_consent_or_exports(client: TestClient) -> None:
    ana, case_id = taken(client, languages=["vi"], offices=["MM"])
    consent_id = record(ana, case_id)["id"]
    account("bob", languages=["th"], offices=["TH"])  # does not see the case at all
    account("cam", languages=["vi"], offices=["MM"])  # sees it, does not hold it
    account("sue", role="supervisor", offices=["MM"])  # oversees its office
    bob, cam, sue = (log_in(client, name) for name in ("bob", "cam", "sue"))

    for console in (bob, cam):
        tries = [
            console.post(f"cases/{case_id}/consents", consent_body()),
            console.post(f"cases/{case_id}/consents/{consent_id}/withdraw"),
            console.post(f"cases/{case_id}/hold"),
            export(console, case_id, consent_id, "json"),
            export(console, case_id, consent_id, "pdf"),
        ]
        assert [r.status_code for r in tries] == [403] * 5, console.token
        assert {r.json()["error"] for r in tries} == {console_text("en", "error_forbidden")}
    assert bob.get(f"/console/api/cases/{case_id}").status_code == 403
    seen = cam.case(case_id)
    assert seen["may_share"] is False
    assert [c["id"] for c in seen["consents"]] == [consent_id], "the state is shown to all"
    assert events(case_id, "exported") == []
    # Without the session's CSRF token, nothing is recorded.
    forged = client.post(
        f"/console/api/cases/{case_id}/consents", json=consent_body(), headers=ana.headers()
    )
    assert forged.status_code == 403
    assert len(ana.case(case_id)["consents"]) == 1

    assert sue.case(case_id)["may_share"] is True
    assert export(sue, case_id, consent_id, "json").status_code == 200
    assert record(sue, case_id, recipient_kind="partner")["recorded_by"] == "sue"
    # The responder who held a case may still share it once it is resolved.
    assert ana.post(f"cases/{case_id}/resolve").status_code == 200
    assert export(ana, case_id, consent_id, "pdf").status_code == 200


def test_a_case_on_hold_says_so_and_the_hold_is_audited(client: TestClient) -> None:
    ana, case_id = taken(client)
    assert ana.case(case_id)["safety"]["on_hold"] is False

    assert ana.post(f"cases/{case_id}/hold").status_code == 200
    assert case_row(case_id).on_hold is True
    assert ana.case(case_id)["safety"]["on_hold"] is True
    again = ana.post(f"cases/{case_id}/hold")
    assert again.status_code == 409

    assert ana.post(f"cases/{case_id}/release-hold").status_code == 200
    assert case_row(case_id).on_hold is False
    assert [(a, who) for a, who, _ in events(case_id, "hold_set", "hold_released")] == [
        ("hold_set", "ana"),
        ("hold_released", "ana"),
    ]


def test_key_rotation_re_encrypts_the_recipient_and_the_reason(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = new_key(), new_key()
    monkeypatch.setenv("BEACON_SECRET_KEY", old)
    _reset_settings()
    ana, case_id = taken(client)
    consent_id = record(ana, case_id, basis="threat_to_life", reason="Transfer tonight.")["id"]
    with session_scope() as session:
        before = set(session.execute(text("SELECT recipient, reason FROM consents")).one())

    monkeypatch.setenv("BEACON_SECRET_KEY", f"{new},{old}")
    _reset_settings()
    assert rotate()["consents"] == 1
    monkeypatch.setenv("BEACON_SECRET_KEY", new)  # the old key is gone
    _reset_settings()
    with session_scope() as session:
        after = set(session.execute(text("SELECT recipient, reason FROM consents")).one())
    assert not before & after, "both were re-encrypted"
    document = export(ana, case_id, consent_id, "json").json()
    assert document["recipient"]["name"] == POLICE
    assert document["consent"]["reason"] == "Transfer tonight."
