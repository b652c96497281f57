"""Stand-in servers on 127.0.0.1 that speak the real HTTP APIs the gateway calls."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeRasa:
    """Rasa's REST channel and ``/status``: echoes what it reads, records every call."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[dict[str, Any]] = []
        #: Events appended through ``POST /conversations/{id}/tracker/events``, by sender.
        self.appended: dict[str, list[dict[str, Any]]] = {}
        #: Trackers replaced through ``PUT /conversations/{id}/tracker/events``, by sender.
        self.replaced: dict[str, list[dict[str, Any]]] = {}
        self.fail = False
        self.delay = 0.0

    def app(self) -> Starlette:
        async def webhook(request: Request) -> Response:
            body = await request.json()
            self.calls.append(body)
            await asyncio.sleep(self.delay)
            if self.fail:
                return JSONResponse({"error": "boom"}, status_code=500)
            return JSONResponse(
                [
                    {"recipient_id": body["sender"], "text": f"read: {body['message']}"},
                    {
                        "recipient_id": body["sender"],
                        "text": "Is it safe?",
                        "buttons": [{"title": "Yes", "payload": "/affirm"}],
                    },
                ]
            )

        async def status(request: Request) -> Response:
            if request.query_params.get("token") != self.token:
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            return JSONResponse({"model_file": "beacon-test.tar.gz", "model_id": "x"})

        async def append_events(request: Request) -> Response:
            if request.query_params.get("token") != self.token:
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            if self.fail:
                return JSONResponse({"error": "boom"}, status_code=500)
            events = await request.json()
            sender = request.path_params["sender"]
            self.appended.setdefault(sender, []).extend(events)
            return JSONResponse({"sender_id": sender})

        async def replace_events(request: Request) -> Response:
            if request.query_params.get("token") != self.token:
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            if self.fail:
                return JSONResponse({"error": "boom"}, status_code=500)
            sender = request.path_params["sender"]
            self.replaced[sender] = await request.json()
            return JSONResponse({"sender_id": sender})

        return Starlette(
            routes=[
                Route("/webhooks/rest/webhook", webhook, methods=["POST"]),
                Route("/status", status),
                Route("/conversations/{sender}/tracker/events", append_events, methods=["POST"]),
                Route("/conversations/{sender}/tracker/events", replace_events, methods=["PUT"]),
            ]
        )


def fake_actions_app() -> Starlette:
    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/health", health)])


@contextmanager
def serve(app: Starlette, port: int) -> Iterator[None]:
    """Runs ``app`` with uvicorn on 127.0.0.1:``port`` in a thread."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("stand-in server did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def _form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (without python-multipart)."""
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


class FakeTelegram:
    """Telegram's Bot API (``getMe``, ``sendMessage``) for one bot token; records messages.

    Answers like the real API: ``{"ok": true, "result": ...}`` with a full
    ``Message``, 401 for another token, 400 for a chat it does not know, and
    500 while ``fail`` is set. Parameters may come form-encoded (as
    python-telegram-bot sends them) or as JSON.
    """

    def __init__(self, token: str, chat_id: str) -> None:
        self.token = token
        self.chat_id = chat_id
        self.sent: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.fail = False

    def app(self) -> Starlette:
        async def method(request: Request) -> Response:
            name = request.path_params["method"]
            self.calls.append(name)
            if request.path_params["token"] != self.token:
                return JSONResponse(
                    {"ok": False, "error_code": 401, "description": "Unauthorized"},
                    status_code=401,
                )
            if self.fail:
                return JSONResponse(
                    {"ok": False, "error_code": 500, "description": "Internal Server Error"},
                    status_code=500,
                )
            if request.headers.get("content-type", "").startswith("application/json"):
                params: dict[str, Any] = await request.json()
            else:
                params = _form(await request.body())
            bot_user = {
                "id": 7000000001,
                "is_bot": True,
                "first_name": "Beacon pager",
                "username": "beacon_pager_bot",
            }
            if name == "getMe":
                return JSONResponse({"ok": True, "result": bot_user})
            if name != "sendMessage":
                return JSONResponse(
                    {"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404
                )
            if str(params.get("chat_id")) != self.chat_id:
                return JSONResponse(
                    {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
                    status_code=400,
                )
            self.sent.append(params)
            message = {
                "message_id": len(self.sent),
                "from": bot_user,
                "chat": {"id": int(self.chat_id), "title": "On call", "type": "supergroup"},
                "date": int(time.time()),
                "text": params.get("text", ""),
            }
            return JSONResponse({"ok": True, "result": message})

        return Starlette(routes=[Route("/bot{token}/{method}", method, methods=["POST"])])


class FakeTwilio:
    """Twilio's Messages API for one account: form-encoded POST with HTTP basic auth.

    Answers 201 with a Message resource (``sid``, ``status`` ``queued`` ...),
    401 (code 20003) for wrong credentials, 400 (code 21604) without ``To``,
    and 500 while ``fail`` is set. Records each accepted message with the
    credentials it came with.
    """

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, str]] = []
        #: The (user, password) of the basic auth of every accepted message.
        self.auth: list[tuple[str, str]] = []
        self.fail = False

    @staticmethod
    def _error(status: int, code: int, message: str) -> Response:
        return JSONResponse(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status_code=status,
        )

    def app(self) -> Starlette:
        async def create_message(request: Request) -> Response:
            scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
            try:
                user, _, password = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                user = password = ""
            if (
                scheme != "Basic"
                or (user, password) != (self.account_sid, self.auth_token)
                or request.path_params["sid"] != self.account_sid
            ):
                return self._error(401, 20003, "Authenticate")
            if self.fail:
                return self._error(500, 20500, "Internal Server Error")
            if not request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                return self._error(400, 20001, "Unsupported content type")
            form = _form(await request.body())
            if not form.get("To"):
                return self._error(400, 21604, "A 'To' phone number is required.")
            self.messages.append(form)
            self.auth.append((user, password))
            sid = f"SM{len(self.messages):032x}"
            uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
            now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
            return JSONResponse(
                {
                    "account_sid": self.account_sid,
                    "api_version": "2010-04-01",
                    "body": form.get("Body", ""),
                    "date_created": now,
                    "date_sent": None,
                    "date_updated": now,
                    "direction": "outbound-api",
                    "error_code": None,
                    "error_message": None,
                    "from": form.get("From"),
                    "messaging_service_sid": None,
                    "num_media": "0",
                    "num_segments": "1",
                    "price": None,
                    "price_unit": "USD",
                    "sid": sid,
                    "status": "queued",
                    "subresource_uris": {"media": f"{uri}/Media.json"},
                    "to": form["To"],
                    "uri": f"{uri}.json",
                },
                status_code=201,
            )

        return Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{sid}/Messages.json", create_message, methods=["POST"])
            ]
        )


class RecordingPager:
    """A pager (``bot.handoff.paging.Pager``) that keeps what it sends; fails while ``fail``."""

    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.texts: list[str] = []
        self.fail = False
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    async def send(self, text: str) -> None:
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("pager down")
        self.texts.append(text)

    async def close(self) -> None:
        self.closed = True
