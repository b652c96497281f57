"""Consent to share a case outside the hotline, and the hold for an open investigation.

Before any detail of a case goes to someone outside the hotline (police, an
embassy, a partner organisation), a responder records the person's consent:
who gave it (the person, or a guardian), when, for which recipient, and which
data (:data:`DATA_ITEMS`). A minor (basis ``minor``) or an immediate threat to
life (``threat_to_life``) allows sharing without consent; the reason is then
required and kept (encrypted). A consent can be withdrawn; a withdrawn one no
longer allows an export (:mod:`bot.privacy.referral`).

Who may record, withdraw, export or put a case on hold: the responder who
holds the case (or held it when it was resolved), a supervisor of its office,
or an admin; anyone who may see the case sees its consents. Every change
leaves a ``case_events`` row whose detail names the basis, the kind of
recipient and the data items, never the recipient's name, the reason or
anything the person said.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import CONSENT_BASES, CONSENT_GIVERS, RECIPIENT_KINDS, Case, Consent, utcnow
from bot.handoff import casework
from bot.handoff.queue import _event

#: What a consent may cover, in the order a referral lists them:
#: ``summary`` (urgency, indicators, language, who reported, dates),
#: ``location`` (country and place), ``contact`` (channel and the person's
#: address), ``notes`` (the responders' private notes).
DATA_ITEMS = ("summary", "location", "contact", "notes")
#: Bases that allow sharing without consent; they need a reason.
WITHOUT_CONSENT = ("minor", "threat_to_life")
MAX_RECIPIENT = 200
MAX_REASON = 2000


class ConsentError(casework.CaseworkError):
    """A consent that cannot be recorded, withdrawn or used; ``kind`` is the console's error key."""

    kind = "error_consent_invalid"
    status = 400


class ReasonRequired(ConsentError):
    """Sharing without consent (a minor, a threat to life) needs a reason."""

    kind = "error_consent_reason"


class UnknownDataItem(ConsentError):
    """No data item, or one that is not in :data:`DATA_ITEMS`."""

    kind = "error_consent_data"


class RecipientRequired(ConsentError):
    """The recipient's name is empty (or too long)."""

    kind = "error_consent_recipient"


class GiverRequired(ConsentError):
    """Consent must be given by the person or a guardian."""

    kind = "error_consent_given_by"


class NoValidConsent(ConsentError):
    """No consent (not withdrawn) allows this export."""

    kind = "error_no_consent"
    status = 409


class AlreadyWithdrawn(ConsentError):
    kind = "error_consent_withdrawn"
    status = 409


def may_share(serves: casework.Serves, case: Case) -> bool:
    """Whether ``serves`` may record consent, export or put the case on hold.

    The responder who holds the case (or held it when it was resolved), a
    supervisor of its office, or an admin.
    """
    return case.claimed_by == serves.responder_id or serves.oversees(case)


def _case_for_change(session: Session, case_id: int, serves: casework.Serves) -> Case:
    case = casework.visible(session, case_id, serves)
    if not may_share(serves, case):
        raise casework.Forbidden
    return case


def _data_items(data: Iterable[Any]) -> list[str]:
    """The data items in :data:`DATA_ITEMS` order, each once.

    Raises:
        UnknownDataItem: none given, or one that is not a known item.
    """
    given = list(data)
    if not given or any(not isinstance(item, str) or item not in DATA_ITEMS for item in given):
        raise UnknownDataItem
    return [item for item in DATA_ITEMS if item in given]


def record(
    session: Session,
    case_id: int,
    serves: casework.Serves,
    *,
    basis: object,
    recipient_kind: object,
    recipient: object,
    data: Iterable[Any],
    given_by: object = None,
    reason: object = None,
    now: datetime | None = None,
) -> Consent:
    """Records consent (or sharing without it) for one recipient of a case's details.

    The values are checked here as they come (e.g. from a JSON body).

    Args:
        basis: ``consent``, or ``minor`` / ``threat_to_life`` to share without it.
        recipient_kind: ``police``, ``embassy``, ``partner`` or ``other``.
        recipient: who exactly (e.g. "Royal Thai Embassy, Phnom Penh"); stored encrypted.
        data: the items it covers, from :data:`DATA_ITEMS`.
        given_by: ``person`` or ``guardian`` for consent; ignored (``none``) without it.
        reason: why sharing without consent is justified; required then.

    Raises:
        Forbidden: the account neither holds (held) the case nor oversees its office.
        ConsentError: a missing or unknown field (a subclass says which).
    """
    case = _case_for_change(session, case_id, serves)
    if basis not in CONSENT_BASES or recipient_kind not in RECIPIENT_KINDS:
        raise ConsentError
    recipient = (recipient or "").strip() if isinstance(recipient, str) else ""
    if not recipient or len(recipient) > MAX_RECIPIENT:
        raise RecipientRequired
    items = _data_items(data)
    reason = reason.strip() if isinstance(reason, str) else ""
    if len(reason) > MAX_REASON:
        raise ConsentError
    if basis in WITHOUT_CONSENT:
        if not reason:
            raise ReasonRequired
        given_by = "none"
    elif given_by not in CONSENT_GIVERS or given_by == "none":
        raise GiverRequired
    row = Consent(
        case_id=case.id,
        basis=basis,
        given_by=given_by,
        recipient_kind=recipient_kind,
        recipient=recipient,
        data=items,
        reason=reason or None,
        recorded_by=serves.username,
        recorded_at=now or utcnow(),
    )
    session.add(row)
    session.flush()
    detail = {
        "consent": row.id,
        "basis": basis,
        "given_by": given_by,
        "recipient_kind": recipient_kind,
        "data": items,
    }
    _event(session, case, serves.username, "consent_recorded", case.status, case.status, detail)
    session.flush()
    return row


def _consent_of(session: Session, case: Case, consent_id: int) -> Consent:
    row: Consent | None = session.get(Consent, consent_id)
    if row is None or row.case_id != case.id:
        raise casework.NotFound
    return row


def withdraw(
    session: Session,
    case_id: int,
    consent_id: int,
    serves: casework.Serves,
    now: datetime | None = None,
) -> Consent:
    """Withdraws a consent: no export is allowed on it any more (earlier exports stay audited).

    Raises:
        NotFound: no such consent on this case.
        AlreadyWithdrawn: it was withdrawn before.
    """
    now = now or utcnow()
    case = _case_for_change(session, case_id, serves)
    row = _consent_of(session, case, consent_id)
    if row.withdrawn_at is not None:
        raise AlreadyWithdrawn
    row.withdrawn_at = now
    row.withdrawn_by = serves.username
    detail = {"consent": row.id, "basis": row.basis, "recipient_kind": row.recipient_kind}
    _event(session, case, serves.username, "consent_withdrawn", case.status, case.status, detail)
    session.flush()
    return row


def valid_consent(
    session: Session, case_id: int, consent_id: int, serves: casework.Serves
) -> tuple[Case, Consent]:
    """The case and a consent of it that allows an export now, for an account that may export.

    Raises:
        Forbidden: the account may not share this case's details.
        NoValidConsent: no such consent on the case, or it was withdrawn.
    """
    case = _case_for_change(session, case_id, serves)
    row: Consent | None = session.get(Consent, consent_id)
    if row is None or row.case_id != case.id or row.withdrawn_at is not None:
        raise NoValidConsent
    return case, row


def consents_of(session: Session, case_id: int) -> list[Consent]:
    """Every consent recorded on a case, oldest first."""
    return list(
        session.execute(
            select(Consent).where(Consent.case_id == case_id).order_by(Consent.id)
        ).scalars()
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def describe(row: Consent) -> dict[str, Any]:
    """A consent as the console and the CLI show it (to responders who may see the case)."""
    valid = row.withdrawn_at is None
    base = f"/console/api/cases/{row.case_id}/referral/{row.id}"
    return {
        "id": row.id,
        "basis": row.basis,
        "given_by": row.given_by,
        "recipient_kind": row.recipient_kind,
        "recipient": row.recipient,
        "data": list(row.data or []),
        "reason": row.reason,
        "recorded_by": row.recorded_by,
        "recorded_at": _iso(row.recorded_at),
        "withdrawn_at": _iso(row.withdrawn_at),
        "withdrawn_by": row.withdrawn_by,
        "valid": valid,
        "exports": {"json": f"{base}.json", "pdf": f"{base}.pdf"} if valid else None,
    }


def set_hold(session: Session, case_id: int, serves: casework.Serves, on: bool) -> Case:
    """Puts a case on hold for an open investigation, or ends the hold.

    A case on hold is kept beyond its retention time, and a deletion request
    leaves an anonymised summary of it (:mod:`bot.privacy.deletion`).

    Raises:
        Forbidden: the account neither holds (held) the case nor oversees its office.
        Conflict: the case is already (not) on hold.
    """
    case = _case_for_change(session, case_id, serves)
    if bool(case.on_hold) == on:
        raise casework.Conflict
    case.on_hold = on
    action = "hold_set" if on else "hold_released"
    _event(session, case, serves.username, action, case.status, case.status)
    session.flush()
    return case
