"""A referral: the minimal, structured record of a case that goes to one recipient.

A referral is made for one consent (:mod:`bot.privacy.consent`) and holds
only the data items that consent covers, plus the case reference, the basis
(consent, or a minor or a threat to life with its reason), the recipient, who
recorded the consent and when, and who exported it and when. It comes as JSON
(:func:`build`) and as a printable PDF of the same (:func:`render_pdf`, with
fpdf2). Without a consent that is not withdrawn there is no export
(:class:`~bot.privacy.consent.NoValidConsent`); every export leaves an
``exported`` event in the case's audit trail (consent id, format, kind of
recipient), which ``beacon audit CASE`` shows.

The PDF's labels are in English, the working language between the hotline and
police, embassies and partners; the person's words are kept as written. It is
drawn with a Unicode TrueType font found on the server (DejaVu Sans, Noto ...,
:data:`FONT_DIRS`), with script fonts (Noto Sans Thai, Khmer, Myanmar ...) as
fallbacks when installed. A character no font on the server can draw is
replaced by ``?`` and the PDF says so, pointing to the JSON, which is exact.
Without any such font the PDF falls back to the core Helvetica font (Latin-1
only), the same way.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.fonts import TTFFont
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import Case, CaseNote, Consent, Contact, Responder, utcnow
from bot.handoff import casework
from bot.handoff.queue import _event
from bot.i18n import console_strings, language_name
from bot.privacy import consent as consents

log = logging.getLogger(__name__)

FORMAT = "beacon-referral/1"
FORMATS = ("json", "pdf")
MEDIA_TYPES = {"json": "application/json", "pdf": "application/pdf"}

#: Where fonts are looked for (every ``*.ttf`` below these folders).
FONT_DIRS: tuple[Path, ...] = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
#: The main font: the first of these found.
MAIN_FONTS = (
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),
    ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    ("FreeSans.ttf", "FreeSansBold.ttf"),
)
#: Fonts for scripts the main font lacks, used for those characters when installed.
FALLBACK_FONTS = (
    "NotoSansThai-Regular.ttf",
    "NotoSansLao-Regular.ttf",
    "NotoSansKhmer-Regular.ttf",
    "NotoSansMyanmar-Regular.ttf",
    "NotoSansBengali-Regular.ttf",
    "NotoSansEthiopic-Regular.ttf",
    "NotoSansSC-Regular.ttf",
    "DroidSansFallbackFull.ttf",
)
LOSSY_NOTE = (
    "Some characters cannot be drawn with the fonts on this server and are shown as '?'. "
    "The JSON export of this referral has the exact text."
)
CONFIDENTIAL = (
    "Confidential. Shared with the recipient named above only, under the basis stated. "
    "Do not pass it on. Ask the hotline before using it for anything else."
)
BASIS_TEXT = {
    "consent": "Consent",
    "minor": "Shared without consent: a minor is involved",
    "threat_to_life": "Shared without consent: an immediate threat to life",
}
GIVER_TEXT = {"person": "the person", "guardian": "a parent or guardian", "none": "nobody"}
RECIPIENT_TEXT = {
    "police": "Police",
    "embassy": "Embassy or consulate",
    "partner": "Partner organisation",
    "other": "Other",
}
ITEM_TITLES = {
    "summary": "Summary",
    "location": "Location",
    "contact": "Contact",
    "notes": "Responder notes",
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def reference(case_id: int) -> str:
    """The case reference a recipient quotes back to the hotline."""
    return f"BEACON-{case_id}"


def _item(session: Session, case: Case, item: str) -> Any:
    if item == "summary":
        return {
            "urgency": case.urgency,
            "indicators": list(case.indicators or []),
            "language": case.language,
            "reporter": case.reporter,
            "status": case.status,
            "opened_at": _iso(case.created_at),
            "escalated_at": _iso(case.waiting_since),
            "resolved_at": _iso(case.resolved_at),
        }
    if item == "location":
        return {"country": case.country, "place": case.location}
    if item == "contact":
        contact = session.get(Contact, case.contact_id)
        return {"channel": case.channel, "address": contact.address if contact else None}
    if item == "notes":
        rows = session.execute(
            select(CaseNote, Responder.display_name, Responder.username)
            .outerjoin(Responder, Responder.id == CaseNote.author_id)
            .where(CaseNote.case_id == case.id)
            .order_by(CaseNote.id)
        ).all()
        return [
            {"at": _iso(note.created_at), "author": display or username or "?", "text": note.body}
            for note, display, username in rows
        ]
    raise consents.UnknownDataItem


def build(
    session: Session, case: Case, row: Consent, exported_by: str, now: datetime
) -> dict[str, Any]:
    """The referral for one consent: only what it covers (no audit, no permission check)."""
    basis: dict[str, Any] = {
        "id": row.id,
        "basis": row.basis,
        "given_by": row.given_by,
        "recorded_by": row.recorded_by,
        "recorded_at": _iso(row.recorded_at),
    }
    if row.basis in consents.WITHOUT_CONSENT:
        basis["reason"] = row.reason
    items = [item for item in consents.DATA_ITEMS if item in (row.data or [])]
    return {
        "format": FORMAT,
        "case_reference": reference(case.id),
        "consent": basis,
        "recipient": {"kind": row.recipient_kind, "name": row.recipient},
        "exported_by": exported_by,
        "exported_at": _iso(now),
        "data": {item: _item(session, case, item) for item in items},
    }


def export(
    session: Session,
    case_id: int,
    consent_id: int,
    serves: casework.Serves,
    fmt: str,
    now: datetime | None = None,
) -> tuple[bytes, str, str]:
    """The referral of a consent as a file: ``(content, media type, file name)``; audited.

    Raises:
        Forbidden: the account may not share this case's details.
        NoValidConsent: the consent does not exist on this case, or was withdrawn.
        CaseworkError: an unknown format.
    """
    if fmt not in FORMATS:
        raise casework.CaseworkError
    now = now or utcnow()
    case, row = consents.valid_consent(session, case_id, consent_id, serves)
    document = build(session, case, row, serves.username, now)
    if fmt == "json":
        content = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    else:
        content = render_pdf(document)
    detail = {"consent": row.id, "format": fmt, "recipient_kind": row.recipient_kind}
    _event(session, case, serves.username, "exported", case.status, case.status, detail)
    session.flush()
    name = f"beacon-referral-{case.id}-{row.id}.{fmt}"
    return content, MEDIA_TYPES[fmt], name


# --- the PDF --------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _font_files(dirs: tuple[Path, ...]) -> dict[str, Path]:
    """Every TrueType font file below ``dirs``, by file name (the first found wins)."""
    found: dict[str, Path] = {}
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.ttf")):
            found.setdefault(path.name, path)
    return found


class _Writer:
    """Draws text with what fonts there are; remembers whether any character was lost."""

    def __init__(self) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_title("Beacon referral")
        self.pdf.set_creator("Beacon")
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.lossy = False
        self.covered: set[int] | None = None  # None: the core font, Latin-1 only
        files = _font_files(FONT_DIRS)
        main = next((pair for pair in MAIN_FONTS if pair[0] in files), None)
        self.family = "helvetica"
        self.bold = "B"
        if main is None:
            return
        self.family = "beacon"
        self.pdf.add_font(self.family, "", str(files[main[0]]))
        if main[1] in files:
            self.pdf.add_font(self.family, "B", str(files[main[1]]))
        else:
            self.bold = ""
        self.covered = self._cmap(self.family)
        fallbacks = []
        for index, name in enumerate(n for n in FALLBACK_FONTS if n in files):
            family = f"fallback{index}"
            try:
                self.pdf.add_font(family, "", str(files[name]))
            except Exception as exc:  # a font fpdf2 cannot read: do without it
                log.warning(
                    "pdf_font_unusable", extra={"fields": {"font": name, "error": repr(exc)}}
                )
                continue
            fallbacks.append(family)
            self.covered |= self._cmap(family)
        if fallbacks:
            self.pdf.set_fallback_fonts(fallbacks)

    def _cmap(self, family: str) -> set[int]:
        font = self.pdf.fonts[family]
        return set(font.cmap) if isinstance(font, TTFFont) else set()

    def drawable(self, text: str) -> str:
        """``text`` with what no font can draw replaced by ``?`` (format marks dropped)."""
        out = []
        for char in text.replace("\r\n", "\n").replace("\t", " "):
            if char == "\n":
                out.append(char)
                continue
            code = ord(char)
            ok = code in self.covered if self.covered is not None else code < 256
            if ok and unicodedata.category(char) != "Cc":
                out.append(char)
                continue
            self.lossy = True
            if unicodedata.category(char) not in ("Mn", "Me", "Cf", "Cc"):
                out.append("?")
        return "".join(out)

    def text(self, text: str, size: float = 10.5, bold: bool = False, gap: float = 0) -> None:
        self.pdf.set_font(self.family, self.bold if bold else "", size)
        self.pdf.multi_cell(0, size * 0.5, self.drawable(text), new_x="LMARGIN", new_y="NEXT")
        if gap:
            self.pdf.ln(gap)

    def field(self, label: str, value: Any) -> None:
        shown = "-" if value is None or value == "" or value == [] else str(value)
        self.text(f"{label}: {shown}")

    def heading(self, text: str) -> None:
        self.pdf.ln(3)
        self.text(text, size=13, bold=True, gap=1)


def _when(value: str | None) -> str:
    """An ISO timestamp as ``2026-11-25 10:04 UTC``."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


def _labels(prefix: str, values: Iterable[str]) -> str:
    strings = console_strings("en")
    return ", ".join(strings.get(f"{prefix}{v}", v) for v in values)


def render_pdf(document: dict[str, Any]) -> bytes:
    """The referral (as :func:`build` makes it) as a printable A4 PDF."""
    w = _Writer()
    w.pdf.add_page()
    w.text(f"Beacon referral {document['case_reference']}", size=16, bold=True, gap=2)
    recipient = document["recipient"]
    basis = document["consent"]
    kind = RECIPIENT_TEXT.get(recipient["kind"], recipient["kind"])
    w.field("Recipient", f"{recipient['name']} ({kind})")
    w.field("Case reference", document["case_reference"])
    w.field("Basis", BASIS_TEXT.get(basis["basis"], basis["basis"]))
    if basis["basis"] == "consent":
        w.field("Consent given by", GIVER_TEXT.get(basis["given_by"], basis["given_by"]))
    else:
        w.field("Reason", basis.get("reason"))
    w.field("Recorded by", f"{basis['recorded_by']}, {_when(basis['recorded_at'])}")
    w.field("Exported by", f"{document['exported_by']}, {_when(document['exported_at'])}")
    w.field("Data shared", ", ".join(ITEM_TITLES.get(i, i) for i in document["data"]) or "-")
    data = document["data"]
    if "summary" in data:
        summary = data["summary"]
        w.heading(ITEM_TITLES["summary"])
        w.field("Urgency", _labels("urgency_", [summary["urgency"]]))
        w.field("Indicators", _labels("indicator_", summary["indicators"]) or "none")
        code = summary["language"]
        w.field("Language", f"{language_name(code, 'en')} ({code})" if code else None)
        w.field("Who wrote", _labels("reporter_", [summary["reporter"]]))
        w.field("Status", _labels("status_", [summary["status"]]))
        w.field("Opened", _when(summary["opened_at"]))
        w.field("Handed to a person", _when(summary["escalated_at"]))
        w.field("Resolved", _when(summary["resolved_at"]))
    if "location" in data:
        w.heading(ITEM_TITLES["location"])
        w.field("Country", data["location"]["country"])
        w.field("Place", data["location"]["place"])
    if "contact" in data:
        w.heading(ITEM_TITLES["contact"])
        w.field("Channel", data["contact"]["channel"])
        w.field("Address", data["contact"]["address"])
    if "notes" in data:
        w.heading(ITEM_TITLES["notes"])
        if not data["notes"]:
            w.text("No notes.")
        for note in data["notes"]:
            w.text(f"{_when(note['at'])}, {note['author']}:", bold=True)
            w.text(note["text"], gap=1.5)
    w.pdf.ln(4)
    w.text(CONFIDENTIAL, size=9)
    if w.lossy:
        w.text(LOSSY_NOTE, size=9, bold=True)
    return bytes(w.pdf.output())
