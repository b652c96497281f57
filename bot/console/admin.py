"""The console's admin API: responder accounts and their audit trail (admins only).

Every route needs a logged-in ``admin`` (others get 403) and, for a POST, the
session's CSRF token. See ``docs/console-api.md``. Encryption keys are not
managed here: rotating them needs the server (``beacon keys rotate``).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.console import accounts
from bot.console.routes import Handler, Who, _error, _json, _json_body, api
from bot.db import session_scope

log = logging.getLogger(__name__)


def admin_only(handler: Handler) -> Handler:
    """Refuses anyone but an admin; maps account errors to their status and message."""

    async def guarded(request: Request, who: Who) -> Response:
        if who.serves.role != accounts.ADMIN:
            return _error(who, 403, "error_forbidden", "forbidden")
        try:
            return await handler(request, who)
        except accounts.AccountError as exc:
            return _error(who, exc.status, exc.kind, "malformed")

    return guarded


def _username(request: Request) -> str:
    return str(request.path_params["username"])


async def list_accounts(request: Request, who: Who) -> Response:
    def work() -> dict[str, Any]:
        with session_scope() as session:
            return {"accounts": accounts.list_accounts(session)}

    return _json(await run_in_threadpool(work))


async def account_events(request: Request, who: Who) -> Response:
    def work() -> dict[str, Any]:
        with session_scope() as session:
            return {"events": accounts.events(session)}

    return _json(await run_in_threadpool(work))


async def create_account(request: Request, who: Who) -> Response:
    data = await _json_body(request)

    def work() -> dict[str, Any]:
        with session_scope() as session:
            responder, password = accounts.create(
                session,
                who.serves.username,
                data.get("username"),
                role=data.get("role", "responder"),
                languages=data.get("languages", []),
                offices=data.get("offices", []),
                display_name=data.get("display_name", ""),
                ui_language=data.get("ui_language", "en"),
            )
            return {"account": accounts.describe(responder), "password": password}

    created = await run_in_threadpool(work)
    log.info("account_created", extra={"fields": {"role": created["account"]["role"]}})
    return _json(created)


async def change_account(request: Request, who: Who) -> Response:
    data = await _json_body(request)
    username = _username(request)

    def work() -> dict[str, Any]:
        with session_scope() as session:
            responder = accounts.change(
                session,
                who.serves.username,
                username,
                role=data.get("role"),
                languages=data.get("languages"),
                offices=data.get("offices"),
                display_name=data.get("display_name"),
                active=data.get("active"),
            )
            return {"account": accounts.describe(responder)}

    changed = await run_in_threadpool(work)
    request.app.state.feed.poke()  # cases of a deactivated account went back to the queue
    return _json(changed)


async def unlock_account(request: Request, who: Who) -> Response:
    username = _username(request)

    def work() -> dict[str, Any]:
        with session_scope() as session:
            return {
                "account": accounts.describe(
                    accounts.unlock(session, who.serves.username, username)
                )
            }

    return _json(await run_in_threadpool(work))


async def reset_password(request: Request, who: Who) -> Response:
    username = _username(request)

    def work() -> dict[str, Any]:
        with session_scope() as session:
            responder, password = accounts.new_password(session, who.serves.username, username)
            return {"account": accounts.describe(responder), "password": password}

    return _json(await run_in_threadpool(work))


def routes() -> list[BaseRoute]:
    """The admin API's routes (mounted with the console's)."""
    base = "/console/api/admin/accounts"
    one = f"{base}/{{username}}"
    return [
        Route(base, api(admin_only(list_accounts)), methods=["GET"]),
        Route(base, api(admin_only(create_account)), methods=["POST"]),
        Route("/console/api/admin/events", api(admin_only(account_events)), methods=["GET"]),
        Route(one, api(admin_only(change_account)), methods=["POST"]),
        Route(f"{one}/unlock", api(admin_only(unlock_account)), methods=["POST"]),
        Route(f"{one}/password", api(admin_only(reset_password)), methods=["POST"]),
    ]
