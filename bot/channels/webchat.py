"""The web chat channel: ``POST /webchat/messages`` and the ``/chat`` page.

Request: ``{"sender": "<id>", "text": "<message>"}``, optionally ``"id"`` (the
client's message id, so that a retry is not handled twice), ``"payload"`` (a
button's payload) and ``"language"`` (the browser's language, a prior).
Response: ``{"messages": [{"text": "...", "buttons": [...]}]}``.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from bot.conversation import Conversations, Incoming
from bot.db import session_scope
from bot.handoff.relay import collect_pulled
from bot.i18n import negotiate, resolve, ui_strings
from bot.metrics import REJECTED
from bot.rasa_client import RasaUnavailable
from bot.web import page_template

CHANNEL = "webchat"
MAX_TEXT = 4000
MAX_BODY = 64 * 1024
SENDER = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class BadRequest(ValueError):
    """The request is malformed; the message says how."""


def _error(status: int, message: str, reason: str) -> JSONResponse:
    REJECTED.labels("webchat", reason).inc()
    return JSONResponse({"error": message}, status_code=status)


def json_object(body: bytes, what: str = "a JSON object") -> dict[str, Any]:
    """``body`` parsed as a JSON object.

    Raises:
        BadRequest: it is not JSON, or not an object (the message says it must be ``what``).
    """
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"body must be {what}")
    return data


def parse(body: bytes) -> Incoming:
    """Validates a web chat request body.

    Raises:
        BadRequest: with a message that says what is wrong.
    """
    if len(body) > MAX_BODY:
        raise BadRequest("request body too large")
    data = json_object(body)
    sender, text = data.get("sender"), data.get("text")
    if not isinstance(sender, str) or not sender:
        raise BadRequest("'sender' is required and must be a string")
    if not SENDER.match(sender):
        raise BadRequest("'sender' must be 1-128 letters, digits or _.:-")
    if not isinstance(text, str):
        raise BadRequest("'text' is required and must be a string")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"'text' is longer than {MAX_TEXT} characters")
    if not text.strip():
        raise BadRequest("'text' is empty")
    message_id = data.get("id")
    if message_id is not None and (
        not isinstance(message_id, str) or not MESSAGE_ID.match(message_id)
    ):
        raise BadRequest("'id' must be 1-64 letters, digits or _.:-")
    payload = data.get("payload")
    if payload is not None and not isinstance(payload, str):
        raise BadRequest("'payload' must be a string")
    language = data.get("language")
    hints = {"language_code": language} if isinstance(language, str) and language else {}
    return Incoming(
        channel=CHANNEL,
        address=sender,
        text=text,
        external_id=f"{sender}:{message_id}" if message_id else None,
        payload=payload,
        hints=hints,
    )


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refusing to buffer more than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadRequest("request body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest("request body too large")
    return bytes(body)


async def post_message(request: Request) -> Response:
    """``POST /webchat/messages``."""
    try:
        incoming = parse(await read_body(request))
    except BadRequest as exc:
        return _error(400, str(exc), "malformed")
    conversations: Conversations = request.app.state.conversations
    try:
        replies = await conversations.handle(incoming)
    except RasaUnavailable:
        return JSONResponse(
            {"error": "the assistant is not available right now; your message is saved"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"messages": [r.as_dict() for r in replies]})


def _pull(sender: str, after: int) -> list[dict[str, Any]]:
    with session_scope() as session:
        return [
            {"id": m.id, "text": m.body, "buttons": []}
            for m in collect_pulled(session, CHANNEL, sender, after)
        ]


async def poll(request: Request) -> Response:
    """``POST /webchat/poll``: responders' messages the page has not shown yet."""
    try:
        data: Any = json.loads(await read_body(request, 4096))
    except (BadRequest, ValueError, UnicodeDecodeError):
        return _error(400, "body is not valid JSON", "malformed")
    if not isinstance(data, dict):
        return _error(400, "body must be a JSON object", "malformed")
    sender, after = data.get("sender"), data.get("after", 0)
    if not isinstance(sender, str) or not SENDER.match(sender):
        return _error(400, "'sender' must be 1-128 letters, digits or _.:-", "malformed")
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        return _error(400, "'after' must be a message id (a whole number >= 0)", "malformed")
    messages = await run_in_threadpool(_pull, sender, after)
    return JSONResponse({"messages": messages}, headers={"Cache-Control": "no-store"})


async def chat_page(request: Request) -> Response:
    """``GET /chat``: the chat page, in the visitor's language."""
    language = (
        resolve(request.query_params.get("lang"))
        if request.query_params.get("lang")
        else negotiate(request.headers.get("accept-language"))
    )
    strings = ui_strings(language)
    html = page_template().safe_substitute(
        lang=escape(language),
        title=escape(request.app.state.settings.cover_name or strings["chat_title"]),
        intro=escape(strings["chat_intro"]),
        message_label=escape(strings["message_label"]),
        send=escape(strings["send"]),
        quick_exit=escape(strings["quick_exit"]),
        strings=escape(json.dumps(strings, ensure_ascii=False)),
        quick_exit_url=escape(request.app.state.settings.quick_exit_url),
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
