"""Responder accounts and console sessions.

Passwords are hashed with argon2id (``argon2-cffi``'s defaults, re-hashed on
login when the parameters change). A session is a random token in an
``HttpOnly``, ``SameSite=Strict`` cookie; the database keeps only its SHA-256.
Each session has its own CSRF token, required on every state-changing
request. After ``BEACON_LOGIN_MAX_FAILURES`` wrong passwords in a row an
account is locked for ``BEACON_LOGIN_LOCKOUT_MINUTES``; an unknown username
costs the same time as a wrong password, so usernames cannot be probed.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.db.models import ROLES, Responder, ResponderSession, utcnow
from bot.settings import Settings, get_settings

USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
MIN_PASSWORD = 12
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class LoginFailed(Exception):
    """Wrong username or password (deliberately not saying which)."""


class LockedOut(LoginFailed):
    """Too many failures; ``minutes`` until the account can try again."""

    def __init__(self, minutes: int) -> None:
        super().__init__(minutes)
        self.minutes = minutes


class InvalidAccount(ValueError):
    """A responder account cannot be created as asked; the message says why."""


def language_codes(codes: list[str] | None) -> list[str]:
    """Language codes as an account keeps them: lowercase, sorted, once each."""
    return sorted({code.strip().lower() for code in codes or [] if code.strip()})


def office_codes(codes: list[str] | None) -> list[str]:
    """Office codes (ISO 3166 alpha-2) as an account keeps them: uppercase, sorted, once each."""
    return sorted({code.strip().upper() for code in codes or [] if code.strip()})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_responder(
    session: Session,
    username: str,
    password: str,
    *,
    display_name: str = "",
    languages: list[str] | None = None,
    offices: list[str] | None = None,
    ui_language: str = "en",
    role: str = "responder",
) -> Responder:
    """Creates a responder account (``role``: responder, supervisor or admin).

    Raises:
        InvalidAccount: the username is taken or malformed, the password too
            short, or the role unknown.
    """
    if role not in ROLES:
        raise InvalidAccount(f"role: one of {', '.join(ROLES)}")
    if not USERNAME.match(username):
        raise InvalidAccount("username: 2-64 lowercase letters, digits or _.- ")
    if len(password) < MIN_PASSWORD:
        raise InvalidAccount(f"password: at least {MIN_PASSWORD} characters")
    taken = session.execute(select(Responder.id).where(Responder.username == username)).first()
    if taken is not None:
        raise InvalidAccount(f"username {username!r} is taken")
    responder = Responder(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        languages=language_codes(languages),
        offices=office_codes(offices),
        ui_language=ui_language,
        role=role,
    )
    session.add(responder)
    session.flush()
    return responder


@dataclass(frozen=True)
class Login:
    """A new console session: the cookie's token and the page's CSRF token."""

    token: str
    csrf_token: str
    responder_id: int


def login(
    session: Session,
    username: str,
    password: str,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> Login:
    """Checks a password and opens a session.

    Raises:
        LockedOut: the account is locked for now (even if the password is right).
        LoginFailed: wrong username or password.
    """
    now = now or utcnow()
    settings = settings or get_settings()
    responder: Responder | None = session.execute(
        select(Responder).where(Responder.username == username.strip().lower())
    ).scalar_one_or_none()
    if responder is None or not responder.is_active:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        raise LoginFailed
    if responder.locked_until is not None and responder.locked_until > now:
        remaining = (responder.locked_until - now).total_seconds()
        raise LockedOut(max(1, int(remaining // 60) + 1))
    try:
        _hasher.verify(responder.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        responder.failed_logins = (responder.failed_logins or 0) + 1
        if responder.failed_logins >= settings.login_max_failures:
            responder.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
            responder.failed_logins = 0
            session.flush()
            raise LockedOut(settings.login_lockout_minutes) from None
        session.flush()
        raise LoginFailed from None
    if _hasher.check_needs_rehash(responder.password_hash):
        responder.password_hash = hash_password(password)
    responder.failed_logins = 0
    responder.locked_until = None
    responder.last_login_at = now
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        ResponderSession(
            token_hash=_token_hash(token),
            responder_id=responder.id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.console_session_hours),
        )
    )
    session.flush()
    return Login(token, csrf, responder.id)


def session_for(
    session: Session, token: str | None, now: datetime | None = None
) -> tuple[Responder, ResponderSession] | None:
    """The responder and session of a cookie token, or None if unknown or expired."""
    if not token:
        return None
    now = now or utcnow()
    found: ResponderSession | None = session.execute(
        select(ResponderSession).where(ResponderSession.token_hash == _token_hash(token))
    ).scalar_one_or_none()
    if found is None or found.expires_at <= now:
        return None
    responder: Responder | None = session.get(Responder, found.responder_id)
    if responder is None or not responder.is_active:
        return None
    if (now - found.last_seen_at).total_seconds() > 60:
        found.last_seen_at = now
    return responder, found


def logout(session: Session, token: str | None) -> None:
    """Ends the session of a cookie token (if any)."""
    if token:
        session.execute(
            delete(ResponderSession).where(ResponderSession.token_hash == _token_hash(token))
        )


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens."""
    return bool(given) and secrets.compare_digest(expected.encode(), str(given).encode())
