"""The console's HTTP routes: login, the console page, its JSON API and live feed.

See ``docs/console-api.md`` for the contract. Every route but the login page
needs a session cookie; every POST needs the session's CSRF token (the login
form a double-submit token). Errors are JSON in the responder's language.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.channels.webchat import BadRequest, json_object, read_body
from bot.console import auth, views
from bot.db import session_scope
from bot.db.models import Case, Contact, Message, Responder, utcnow
from bot.handoff import blocklist, casework
from bot.handoff.offices import is_office
from bot.i18n import console_strings, console_text, negotiate, resolve
from bot.metrics import REJECTED
from bot.privacy import consent, referral
from bot.rasa_client import RasaUnavailable
from bot.web import console_template, login_template

log = logging.getLogger(__name__)

SESSION_COOKIE = "beacon_console"
LOGIN_CSRF_COOKIE = "beacon_csrf"
MAX_TEXT = 4000

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Who:
    """The logged-in responder of a request."""

    serves: casework.Serves
    display_name: str
    ui_language: str
    csrf_token: str

    def me(self) -> dict[str, Any]:
        return {
            "username": self.serves.username,
            "display_name": self.display_name,
            "languages": list(self.serves.languages),
            "offices": list(self.serves.offices),
            "ui_language": self.ui_language,
            "role": self.serves.role,
        }


def _who(token: str | None) -> Who | None:
    with session_scope() as session:
        found = auth.session_for(session, token)
        if found is None:
            return None
        responder, console_session = found
        return Who(
            casework.Serves.of(responder),
            responder.display_name or responder.username,
            resolve(responder.ui_language),
            console_session.csrf_token,
        )


def _error(who: Who | None, status: int, key: str, reason: str) -> JSONResponse:
    REJECTED.labels("console", reason).inc()
    language = who.ui_language if who else "en"
    return JSONResponse(
        {"error": console_text(language, key)}, status_code=status, headers=PAGE_HEADERS
    )


Handler = Callable[[Request, Who], Awaitable[Response]]


def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wraps a JSON API handler: session required; CSRF token on POST; errors mapped."""

    async def endpoint(request: Request) -> Response:
        who = await run_in_threadpool(_who, request.cookies.get(SESSION_COOKIE))
        if who is None:
            return _error(None, 401, "error_not_logged_in", "unauthenticated")
        if request.method == "POST" and not auth.csrf_matches(
            who.csrf_token, request.headers.get("x-csrf-token")
        ):
            return _error(who, 403, "error_csrf", "csrf")
        try:
            return await handler(request, who)
        except consent.ConsentError as exc:
            return _error(who, exc.status, exc.kind, "consent")
        except casework.NotFound:
            return _error(who, 404, "error_not_found", "not_found")
        except casework.Forbidden:
            return _error(who, 403, "error_forbidden", "forbidden")
        except casework.NothingToTake:
            return _error(who, 404, "error_nothing_to_take", "nothing_to_take")
        except casework.Conflict:
            return _error(who, 409, "error_conflict", "conflict")
        except casework.UnknownResponder:
            return _error(who, 400, "error_unknown_responder", "malformed")
        except (BadRequest, casework.CaseworkError):
            return _error(who, 400, "error_malformed", "malformed")

    return endpoint


async def _json_body(request: Request) -> dict[str, Any]:
    return json_object(await read_body(request, 16 * 1024) or b"{}")


def _text(data: dict[str, Any]) -> str:
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise casework.CaseworkError
    return text.strip()


def _case_id(request: Request) -> int:
    return int(request.path_params["case_id"])


# --- pages --------------------------------------------------------------------------------


def _login_page(language: str, error: str, status: int = 200) -> Response:
    strings = console_strings(language)
    csrf = secrets.token_urlsafe(24)
    html = login_template().safe_substitute(
        lang=escape(language),
        title=escape(strings.get("login_title", "Beacon")),
        username_label=escape(strings.get("username", "Username")),
        password_label=escape(strings.get("password", "Password")),
        login=escape(strings.get("login", "Log in")),
        error=escape(error),
        csrf=escape(csrf),
    )
    response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/console/login"
    )
    return response


async def login_page(request: Request) -> Response:
    language = negotiate(request.headers.get("accept-language"))
    return _login_page(language, "")


async def login_submit(request: Request) -> Response:
    language = negotiate(request.headers.get("accept-language"))
    try:
        raw = await read_body(request, 8 * 1024)
        form = parse_qs(raw.decode("utf-8"), max_num_fields=10)
    except (BadRequest, UnicodeDecodeError, ValueError):
        return _login_page(language, console_text(language, "error_malformed"), 400)
    field = {key: values[0] for key, values in form.items() if values}
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not auth.csrf_matches(expected, field.get("csrf")):
        REJECTED.labels("console", "csrf").inc()
        return _login_page(language, console_text(language, "error_csrf"), 403)
    username, password = field.get("username", ""), field.get("password", "")
    try:
        done = await run_in_threadpool(_login_or_count, username, password)
    except auth.LockedOut as exc:
        log.warning("login_locked", extra={"fields": {}})
        return _login_page(
            language, console_text(language, "login_locked", minutes=exc.minutes), 429
        )
    except auth.LoginFailed:
        log.info("login_failed", extra={"fields": {}})
        return _login_page(language, console_text(language, "login_failed"), 401)
    settings = request.app.state.settings
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        done.token,
        max_age=settings.console_session_hours * 3600,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="strict",
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    log.info("login", extra={"fields": {"responder_id": done.responder_id}})
    return response


def _login_or_count(username: str, password: str) -> auth.Login:
    """Logs in; a failure's counter is committed even though the login raises."""
    outcome: list[BaseException] = []
    with session_scope() as session:
        try:
            return auth.login(session, username, password)
        except auth.LoginFailed as exc:
            outcome.append(exc)
    raise outcome[0]


async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    who = await run_in_threadpool(_who, token)
    if who is not None:
        raw = (await read_body(request, 4096)).decode("utf-8", "replace")
        form = parse_qs(raw).get("csrf") or []
        given = form[0] if form else request.headers.get("x-csrf-token")
        if not auth.csrf_matches(who.csrf_token, given):
            return _error(who, 403, "error_csrf", "csrf")

        def end() -> None:
            with session_scope() as session:
                auth.logout(session, token)

        await run_in_threadpool(end)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def console_page(request: Request) -> Response:
    who = await run_in_threadpool(_who, request.cookies.get(SESSION_COOKIE))
    if who is None:
        return RedirectResponse("/console/login", status_code=303)
    strings = console_strings(who.ui_language)
    html = console_template().safe_substitute(
        lang=escape(who.ui_language),
        title=escape(strings.get("console_title", "Beacon")),
        strings=escape(json.dumps(strings, ensure_ascii=False)),
        me=escape(json.dumps(who.me(), ensure_ascii=False)),
        csrf=escape(who.csrf_token),
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


# --- JSON API -----------------------------------------------------------------------------


def _json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers=PAGE_HEADERS)


async def me(request: Request, who: Who) -> Response:
    return _json(who.me())


async def queue_list(request: Request, who: Who) -> Response:
    def work() -> list[dict[str, Any]]:
        with session_scope() as session:
            cases = casework.visible_cases(session, who.serves)
            return views.summaries(session, cases, who.serves, who.ui_language, utcnow())

    return _json({"cases": await run_in_threadpool(work)})


async def case_view(request: Request, who: Who) -> Response:
    case_id = _case_id(request)

    def work() -> dict[str, Any]:
        with session_scope() as session:
            case = casework.view(session, case_id, who.serves)
            return views.case_detail(session, case, who.serves, who.ui_language)

    return _json(await run_in_threadpool(work))


async def message_attachment(request: Request, who: Who) -> Response:
    """A photo, voice note or file the person sent, fetched from their channel (audited)."""
    message_id = int(request.path_params["message_id"])

    def find() -> tuple[str, dict[str, Any]]:
        with session_scope() as session:
            message = session.get(Message, message_id)
            shown = views.attachment(message) if message is not None else None
            if message is None or shown is None or shown["url"] is None:
                raise casework.NotFound
            casework.visible(session, message.case_id, who.serves)
            return message.channel, dict(message.payload["attachment"])

    channel_name, reference = await run_in_threadpool(find)
    fetch = getattr(request.app.state.relay.channels.get(channel_name), "fetch_attachment", None)
    if fetch is None:
        return _error(who, 404, "error_attachment_unavailable", "attachment_unavailable")
    try:
        data, content_type = await fetch(reference)
    except Exception as exc:  # the channel's API is down, or the file is gone
        log.warning(
            "attachment_unavailable",
            extra={"fields": {"message_id": message_id, "error": type(exc).__name__}},
        )
        return _error(who, 502, "error_attachment_unavailable", "attachment_unavailable")

    def audit() -> None:
        with session_scope() as session:
            case_id = session.get(Message, message_id).case_id
            casework.view(session, case_id, who.serves, {"attachment": message_id})

    await run_in_threadpool(audit)
    extension = mimetypes.guess_extension(content_type) or ".bin"
    return Response(
        data,
        media_type=content_type,
        headers={
            **PAGE_HEADERS,
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": f'attachment; filename="beacon-{message_id}{extension}"',
        },
    )


def _summary_of(session: Any, case: Case, who: Who) -> dict[str, Any]:
    [summary] = views.summaries(session, [case], who.serves, who.ui_language, utcnow())
    return summary


async def _case_action(request: Request, who: Who, action: Callable[[Any], Case]) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        with session_scope() as session:
            case = action(session)
            return _summary_of(session, case, who)

    summary = await run_in_threadpool(work)
    request.app.state.feed.poke()
    return summary


async def take_next(request: Request, who: Who) -> Response:
    case = await _case_action(request, who, lambda s: casework.take_next(s, who.serves))
    log.info("case_taken", extra={"fields": {"case_id": case["id"]}})
    return _json({"case": case})


async def claim(request: Request, who: Who) -> Response:
    case_id = _case_id(request)
    case = await _case_action(request, who, lambda s: casework.claim(s, case_id, who.serves))
    return _json({"case": case})


async def release(request: Request, who: Who) -> Response:
    case_id = _case_id(request)
    case = await _case_action(request, who, lambda s: casework.release(s, case_id, who.serves))
    return _json({"case": case})


async def transfer(request: Request, who: Who) -> Response:
    case_id = _case_id(request)
    data = await _json_body(request)
    to_responder = data.get("responder")
    to_office = data.get("office")
    if isinstance(to_office, str) and not is_office(to_office):
        raise casework.CaseworkError
    if not isinstance(to_responder, str | None) or not isinstance(to_office, str | None):
        raise casework.CaseworkError
    case = await _case_action(
        request,
        who,
        lambda s: casework.transfer(
            s, case_id, who.serves, to_responder=to_responder, to_office=to_office
        ),
    )
    return _json({"case": case})


async def resolve_case(request: Request, who: Who) -> Response:
    case_id = _case_id(request)
    case = await _case_action(request, who, lambda s: casework.resolve(s, case_id, who.serves))

    def contact_of() -> tuple[int, str, str | None]:
        with session_scope() as session:
            found = session.get(Case, case_id)
            contact = session.get(Contact, found.contact_id)
            return contact.id, contact.public_id, found.language

    contact_id, sender, language = await run_in_threadpool(contact_of)
    try:
        await request.app.state.rasa.reset_dialogue(sender, language)
    except RasaUnavailable:
        # Done before the person's next message reaches the assistant instead.
        log.warning("dialogue_reset_deferred", extra={"fields": {"case_id": case_id}})
    else:

        def done() -> None:
            with session_scope() as session:
                contact = session.get(Contact, contact_id)
                contact.dialogue_reset_pending = False

        await run_in_threadpool(done)
    return _json({"case": case})


async def reply(request: Request, who: Who) -> Response:
    case_id = _case_id(request)
    text = _text(await _json_body(request))

    def work() -> dict[str, Any]:
        with session_scope() as session:
            message = casework.reply(session, case_id, who.serves, text)
            return {
                "id": message.id,
                "direction": "out",
                "author": who.display_name,
                "text": message.body,
                "highlights": [],
                "status": message.status,
                "at": message.created_at.isoformat(),
                "attachment": None,
            }

    message = await run_in_threadpool(work)
    request.app.state.feed.poke()
    relay = request.app.state.relay
    task = asyncio.create_task(relay.deliver(case_id))
    request.app.state.background.add(task)
    task.add_done_callback(request.app.state.background.discard)
    return _json({"message": message})


async def add_note(request: Request, who: Who) -> Response:
    case_id = _case_id(request)
    text = _text(await _json_body(request))

    def work() -> dict[str, Any]:
        with session_scope() as session:
            note = casework.add_note(session, case_id, who.serves, text)
            return {
                "id": note.id,
                "author": who.display_name,
                "text": note.body,
                "at": note.created_at.isoformat(),
            }

    note = await run_in_threadpool(work)
    request.app.state.feed.poke()
    return _json({"note": note})


async def block_sender(request: Request, who: Who) -> Response:
    case_id = _case_id(request)
    data = await _json_body(request)
    duration, reason = data.get("duration"), data.get("reason")
    if not isinstance(duration, str) or not isinstance(reason, str):
        raise casework.CaseworkError

    def act(session: Any) -> Case:
        blocklist.block(session, case_id, who.serves, duration=duration, reason=reason)
        return casework.visible(session, case_id, who.serves)

    case = await _case_action(request, who, act)
    log.info("sender_blocked", extra={"fields": {"case_id": case_id}})
    return _json({"case": case})


async def unblock_sender(request: Request, who: Who) -> Response:
    case_id = _case_id(request)

    def act(session: Any) -> Case:
        blocklist.lift(session, case_id, who.serves)
        return casework.visible(session, case_id, who.serves)

    case = await _case_action(request, who, act)
    log.info("sender_unblocked", extra={"fields": {"case_id": case_id}})
    return _json({"case": case})


def _consent_id(request: Request) -> int:
    return int(request.path_params["consent_id"])


async def record_consent(request: Request, who: Who) -> Response:
    """Records consent (or sharing without it, on a minor's or a life's ground)."""
    case_id = _case_id(request)
    data = await _json_body(request)
    items = data.get("data")
    if not isinstance(items, list):
        raise consent.UnknownDataItem

    def work() -> dict[str, Any]:
        with session_scope() as session:
            row = consent.record(
                session,
                case_id,
                who.serves,
                basis=data.get("basis"),
                recipient_kind=data.get("recipient_kind"),
                recipient=data.get("recipient"),
                data=items,
                given_by=data.get("given_by"),
                reason=data.get("reason"),
            )
            return consent.describe(row)

    recorded = await run_in_threadpool(work)
    request.app.state.feed.poke()
    log.info("consent_recorded", extra={"fields": {"case_id": case_id, "consent": recorded["id"]}})
    return _json({"consent": recorded})


async def withdraw_consent(request: Request, who: Who) -> Response:
    case_id, consent_id = _case_id(request), _consent_id(request)

    def work() -> dict[str, Any]:
        with session_scope() as session:
            return consent.describe(consent.withdraw(session, case_id, consent_id, who.serves))

    withdrawn = await run_in_threadpool(work)
    request.app.state.feed.poke()
    log.info("consent_withdrawn", extra={"fields": {"case_id": case_id, "consent": consent_id}})
    return _json({"consent": withdrawn})


def _export(fmt: str) -> Handler:
    async def export(request: Request, who: Who) -> Response:
        """A referral for one valid consent, as a download (audited as ``exported``)."""
        case_id, consent_id = _case_id(request), _consent_id(request)

        def work() -> tuple[bytes, str, str]:
            with session_scope() as session:
                return referral.export(session, case_id, consent_id, who.serves, fmt)

        content, media_type, name = await run_in_threadpool(work)
        request.app.state.feed.poke()
        log.info("referral_exported", extra={"fields": {"case_id": case_id, "format": fmt}})
        return Response(
            content,
            media_type=media_type,
            headers={
                **PAGE_HEADERS,
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Content-Disposition": f'attachment; filename="{name}"',
            },
        )

    return export


async def set_hold(request: Request, who: Who) -> Response:
    case_id = _case_id(request)
    case = await _case_action(
        request, who, lambda s: consent.set_hold(s, case_id, who.serves, True)
    )
    return _json({"case": case})


async def release_hold(request: Request, who: Who) -> Response:
    case_id = _case_id(request)
    case = await _case_action(
        request, who, lambda s: consent.set_hold(s, case_id, who.serves, False)
    )
    return _json({"case": case})


async def responders(request: Request, who: Who) -> Response:
    def work() -> dict[str, Any]:
        with session_scope() as session:
            rows = session.execute(
                select(Responder)
                .where(Responder.is_active.is_(True))
                .order_by(Responder.display_name, Responder.username)
            ).scalars()
            listed = [
                {
                    "username": r.username,
                    "display_name": r.display_name or r.username,
                    "languages": list(r.languages or []),
                    "offices": list(r.offices or []),
                }
                for r in rows
            ]
        offices = sorted({o for r in listed for o in r["offices"]})
        return {"responders": listed, "offices": offices}

    return _json(await run_in_threadpool(work))


async def stats(request: Request, who: Who) -> Response:
    def work() -> dict[str, Any]:
        with session_scope() as session:
            return views.stats(session, who.ui_language)

    return _json(await run_in_threadpool(work))


async def events(request: Request, who: Who) -> Response:
    from starlette.responses import StreamingResponse

    return StreamingResponse(
        request.app.state.feed.subscribe(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def routes() -> list[BaseRoute]:
    """The console's routes, mounted by the gateway."""
    from bot.console import admin

    case = "/console/api/cases/{case_id:int}"
    return [
        *admin.routes(),
        Route("/console/login", login_page, methods=["GET"]),
        Route("/console/login", login_submit, methods=["POST"]),
        Route("/console/logout", logout, methods=["POST"]),
        Route("/console", console_page, methods=["GET"]),
        Route("/console/api/me", api(me), methods=["GET"]),
        Route("/console/api/queue", api(queue_list), methods=["GET"]),
        Route("/console/api/take-next", api(take_next), methods=["POST"]),
        Route("/console/api/responders", api(responders), methods=["GET"]),
        Route("/console/api/stats", api(stats), methods=["GET"]),
        Route("/console/api/events", api(events), methods=["GET"]),
        Route(case, api(case_view), methods=["GET"]),
        Route(f"{case}/claim", api(claim), methods=["POST"]),
        Route(f"{case}/release", api(release), methods=["POST"]),
        Route(f"{case}/transfer", api(transfer), methods=["POST"]),
        Route(f"{case}/resolve", api(resolve_case), methods=["POST"]),
        Route(f"{case}/reply", api(reply), methods=["POST"]),
        Route(f"{case}/notes", api(add_note), methods=["POST"]),
        Route(f"{case}/block", api(block_sender), methods=["POST"]),
        Route(f"{case}/unblock", api(unblock_sender), methods=["POST"]),
        Route(f"{case}/consents", api(record_consent), methods=["POST"]),
        Route(
            f"{case}/consents/{{consent_id:int}}/withdraw", api(withdraw_consent), methods=["POST"]
        ),
        Route(f"{case}/referral/{{consent_id:int}}.json", api(_export("json")), methods=["GET"]),
        Route(f"{case}/referral/{{consent_id:int}}.pdf", api(_export("pdf")), methods=["GET"]),
        Route(f"{case}/hold", api(set_hold), methods=["POST"]),
        Route(f"{case}/release-hold", api(release_hold), methods=["POST"]),
        Route(
            "/console/api/messages/{message_id:int}/attachment",
            api(message_attachment),
            methods=["GET"],
        ),
    ]
