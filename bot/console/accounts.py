"""Responder accounts as an admin manages them: create, change, deactivate, unlock.

The console's admin page and the ``beacon responder`` commands both go
through here, so every change of an account leaves an ``account_events`` row
(who, what, when) that admins can read. A password made here is random,
shown once to the admin who asked for it, and never stored in clear.
Deactivating an account ends its sessions and puts the cases it held back in
the queue. The last active admin cannot be demoted or deactivated.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.console import auth
from bot.db.models import ROLES, AccountEvent, Responder, ResponderSession, utcnow
from bot.handoff import casework
from bot.handoff.offices import is_office
from bot.i18n import available_languages

ADMIN = "admin"
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
OFFICE_CODE = re.compile(r"^[A-Z]{2}$")
MAX_NAME = 128


class AccountError(Exception):
    """An account change that cannot be made; ``kind`` is the console's error key."""

    kind = "error_account_invalid"
    status = 400


class NoSuchAccount(AccountError):
    kind = "error_no_account"
    status = 404


class UsernameTaken(AccountError):
    kind = "error_username_taken"
    status = 409


class LastAdmin(AccountError):
    """The change would leave nobody able to manage accounts."""

    kind = "error_last_admin"
    status = 409


def one_time_password() -> str:
    """A random password to hand over once (22 URL-safe characters)."""
    return secrets.token_urlsafe(16)


def describe(responder: Responder, now: datetime | None = None) -> dict[str, Any]:
    """An account as the admin page shows it (never its password hash)."""
    now = now or utcnow()
    locked = responder.locked_until is not None and responder.locked_until > now
    return {
        "username": responder.username,
        "display_name": responder.display_name or responder.username,
        "role": responder.role,
        "languages": list(responder.languages or []),
        "offices": list(responder.offices or []),
        "ui_language": responder.ui_language,
        "active": bool(responder.is_active),
        "locked": locked,
        "last_login_at": _iso(responder.last_login_at),
        "created_at": _iso(responder.created_at),
    }


def list_accounts(session: Session) -> list[dict[str, Any]]:
    """Every account, active or not, by username."""
    now = utcnow()
    rows = session.execute(select(Responder).order_by(Responder.username)).scalars()
    return [describe(r, now) for r in rows]


def record(
    session: Session, actor: str, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """Audits one change of an account."""
    session.add(AccountEvent(actor=actor, action=action, target=target, detail=detail))


def events(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    """The latest account changes, newest first."""
    rows = session.execute(
        select(AccountEvent).order_by(AccountEvent.id.desc()).limit(limit)
    ).scalars()
    return [
        {
            "at": _iso(e.at),
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "detail": e.detail or {},
        }
        for e in rows
    ]


def _languages(codes: Any) -> list[str]:
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise AccountError
    found = auth.language_codes(codes)
    if not all(LANGUAGE_CODE.match(code) for code in found):
        raise AccountError
    return found


def _offices(codes: Any) -> list[str]:
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise AccountError
    found = auth.office_codes(codes)
    if not all(OFFICE_CODE.match(code) and is_office(code) for code in found):
        raise AccountError
    return found


def _role(role: Any) -> str:
    if role not in ROLES:
        raise AccountError
    return str(role)


def _name(name: Any) -> str:
    if not isinstance(name, str) or len(name.strip()) > MAX_NAME:
        raise AccountError
    return name.strip()


def _get(session: Session, username: str) -> Responder:
    found: Responder | None = session.execute(
        select(Responder).where(Responder.username == username)
    ).scalar_one_or_none()
    if found is None:
        raise NoSuchAccount
    return found


def create(
    session: Session,
    actor: str,
    username: Any,
    *,
    role: Any = "responder",
    languages: Any = None,
    offices: Any = None,
    display_name: Any = "",
    ui_language: Any = "en",
    password: str | None = None,
) -> tuple[Responder, str | None]:
    """Creates an account; returns it and the one-time password made for it.

    With ``password`` (the CLI reads one from the terminal), that password is
    set and none is made.

    Raises:
        UsernameTaken: an account with this username exists (active or not).
        AccountError: a malformed username, role, language, office or name.
    """
    if not isinstance(username, str) or not auth.USERNAME.match(username):
        raise AccountError
    if ui_language not in available_languages():
        raise AccountError
    if session.execute(select(Responder.id).where(Responder.username == username)).first():
        raise UsernameTaken
    made = None if password is not None else one_time_password()
    try:
        responder = auth.create_responder(
            session,
            username,
            password if password is not None else str(made),
            display_name=_name(display_name or ""),
            languages=_languages(languages or []),
            offices=_offices(offices or []),
            ui_language=str(ui_language),
            role=_role(role),
        )
    except auth.InvalidAccount as exc:
        raise AccountError(str(exc)) from exc
    record(
        session,
        actor,
        "created",
        responder.username,
        {
            "role": responder.role,
            "languages": list(responder.languages),
            "offices": list(responder.offices),
        },
    )
    session.flush()
    return responder, made


def _other_active_admins(session: Session, responder: Responder) -> int:
    return int(
        session.execute(
            select(func.count(Responder.id)).where(
                Responder.role == ADMIN,
                Responder.is_active.is_(True),
                Responder.id != responder.id,
            )
        ).scalar_one()
    )


def _end_sessions(session: Session, responder: Responder) -> None:
    session.execute(delete(ResponderSession).where(ResponderSession.responder_id == responder.id))


def change(
    session: Session,
    actor: str,
    username: str,
    *,
    role: Any = None,
    languages: Any = None,
    offices: Any = None,
    display_name: Any = None,
    active: Any = None,
) -> Responder:
    """Changes what is given (None: unchanged); each change is audited with its old and new value.

    Raises:
        NoSuchAccount: no account has this username.
        LastAdmin: the change would leave no active admin.
        AccountError: a malformed value.
    """
    responder = _get(session, username)
    changes: list[tuple[str, str, Any, Any]] = []
    if role is not None and _role(role) != responder.role:
        changes.append(("role", "role_changed", responder.role, role))
    if languages is not None and (found := _languages(languages)) != responder.languages:
        changes.append(("languages", "languages_changed", responder.languages, found))
    if offices is not None and (found := _offices(offices)) != responder.offices:
        changes.append(("offices", "offices_changed", responder.offices, found))
    if display_name is not None and (name := _name(display_name)) != responder.display_name:
        changes.append(("display_name", "name_changed", responder.display_name, name))
    if active is not None:
        if not isinstance(active, bool):
            raise AccountError
        if active != responder.is_active:
            action = "reactivated" if active else "deactivated"
            changes.append(("is_active", action, responder.is_active, active))
    stays_admin = (role is None or role == ADMIN) and active is not False
    if (
        responder.role == ADMIN
        and responder.is_active
        and not stays_admin
        and not _other_active_admins(session, responder)
    ):
        raise LastAdmin
    for field, action, before, after in changes:
        setattr(responder, field, after)
        detail = None if field == "is_active" else {"from": before, "to": after}
        record(session, actor, action, responder.username, detail)
    if active is False and any(field == "is_active" for field, *_ in changes):
        _end_sessions(session, responder)
        casework.release_all_of(session, responder.id, actor)
    session.flush()
    return responder


def unlock(session: Session, actor: str, username: str) -> Responder:
    """Lifts a lockout after too many wrong passwords (audited)."""
    responder = _get(session, username)
    responder.failed_logins = 0
    responder.locked_until = None
    record(session, actor, "unlocked", responder.username)
    session.flush()
    return responder


def new_password(
    session: Session, actor: str, username: str, password: str | None = None
) -> tuple[Responder, str | None]:
    """Sets a new password (made here and returned once, or ``password``); ends its sessions.

    Raises:
        AccountError: ``password`` is too short.
    """
    responder = _get(session, username)
    made = None if password is not None else one_time_password()
    chosen = password if password is not None else str(made)
    if len(chosen) < auth.MIN_PASSWORD:
        raise AccountError
    responder.password_hash = auth.hash_password(chosen)
    responder.failed_logins = 0
    responder.locked_until = None
    _end_sessions(session, responder)
    record(session, actor, "password_set", responder.username)
    session.flush()
    return responder, made


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
