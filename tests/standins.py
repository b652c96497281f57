"""Stand-in servers on 127.0.0.1 that speak the real HTTP APIs the gateway calls."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator


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
        #: What Rasa answers to a given message instead of the echo (the messages of its
        #: REST channel: ``text``, ``buttons``, and ``custom`` in a message of its own).
        self.scripted: dict[str, list[dict[str, Any]]] = {}

    def app(self) -> Starlette:
        async def webhook(request: Request) -> Response:
            body = await request.json()
            self.calls.append(body)
            await asyncio.sleep(self.delay)
            if self.fail:
                return JSONResponse({"error": "boom"}, status_code=500)
            if body["message"] in self.scripted:
                return JSONResponse(
                    [{"recipient_id": body["sender"], **m} for m in self.scripted[body["message"]]]
                )
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


#: The bot the stand-in Telegram speaks for (``getMe``).
BOT_USER = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "Beacon",
    "username": "beacon_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
#: A phone number in E.164, as Twilio requires it.
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TelegramError(Exception):
    """An error answer of the stand-in Bot API."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def response(self) -> Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return JSONResponse(body, status_code=self.status)


def _bad(description: str) -> TelegramError:
    return TelegramError(400, f"Bad Request: {description}")


class FakeTelegram:
    """Telegram's Bot API for one bot token, checking requests the way the real API does.

    Methods: ``getMe``, ``sendMessage``, ``getUpdates`` (offset confirms,
    ``timeout`` long-polls, 409 while a webhook is set), ``setWebhook``,
    ``deleteWebhook``, ``getWebhookInfo``, ``leaveChat``, ``getFile`` (and the
    file download under ``/file/bot<token>/``), ``answerCallbackQuery`` and
    ``deleteMessages`` (1 to 100 ids; in a private chat the bot may delete
    its own messages and the person's for 48 hours; ids not found or too old
    are skipped, as Telegram does). Message ids are one sequence per chat, in
    both directions, as in Telegram; :attr:`history` keeps every message of
    each chat with its date, and what was deleted disappears from it.
    Parameters may come form-encoded (as python-telegram-bot sends them, with
    JSON-encoded objects), as JSON, or in the query string. Errors are the real
    API's: 401 for another token, 404 for an unknown method, 400 ``chat not
    found`` for a chat that never wrote to the bot, ``message text is empty``,
    ``message is too long`` (more than 4,096 UTF-16 code units),
    ``BUTTON_DATA_INVALID`` (callback data over 64 bytes), 403 ``bot was
    blocked by the user`` for a chat in :attr:`blocked`, 429 with
    ``retry_after`` and 5xx when injected with :meth:`fail_next`, 500 for
    everything while :attr:`fail` is set.

    The update builders (:meth:`text`, :meth:`location`, :meth:`photo` ...)
    return realistic ``Update`` JSON, with increasing ``update_id``; the chat
    becomes known (Beacon may write to it), as when a person writes first.
    """

    def __init__(self, token: str, chat_id: str | None = None) -> None:
        self.token = token
        self.chat_id = chat_id
        #: Chats the bot may write to (people who wrote to it, groups it is in).
        self.known_chats: set[int] = {int(chat_id)} if chat_id else set()
        #: Accepted ``sendMessage`` calls, their parameters as received.
        self.sent: list[dict[str, Any]] = []
        #: Accepted ``sendMessage`` calls, parsed: chat_id (int), text, message_id, reply_markup.
        self.messages: list[dict[str, Any]] = []
        #: The name of every method called, in order (also rejected calls).
        self.calls: list[str] = []
        #: When each of :attr:`calls` came (``time.monotonic()``).
        self.called_at: list[float] = []
        self.fail = False
        #: Private chats whose person blocked the bot.
        self.blocked: set[int] = set()
        self.left: list[int] = []
        self.answered: list[str] = []
        self.webhook: dict[str, Any] = {"url": ""}
        #: file_id -> (file_path, content).
        self.files: dict[str, tuple[str, bytes]] = {}
        self.base = ""
        self._failures: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._queries: set[str] = set()
        self._next_update = 500000
        self._next_message: dict[int, int] = {}
        #: Every message of each chat, by id: ``date`` and ``from_bot`` (deleted ones removed).
        self.history: dict[int, dict[int, dict[str, Any]]] = {}
        #: ``deleteMessages`` calls: chat_id and the ids asked for.
        self.deletions: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    # --- what a test does ---------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int,
        *,
        retry_after: int | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """The next ``times`` calls of ``method`` (after ``after`` more that succeed) fail."""
        self._failures.append(
            {"method": method, "status": status, "retry_after": retry_after, "times": times,
             "after": after}
        )  # fmt: skip

    def texts_to(self, chat_id: int) -> list[str]:
        """What the bot sent to ``chat_id``, in order."""
        return [m["text"] for m in self.messages if m["chat_id"] == chat_id]

    def queue(self, *updates: dict[str, Any]) -> None:
        """Updates that ``getUpdates`` hands out (polling)."""
        with self._lock:
            self._pending.extend(updates)

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a ``getUpdates`` offset."""
        with self._lock:
            return list(self._pending)

    # --- update builders ----------------------------------------------------------------------

    def _message_id(self, chat_id: int) -> int:
        with self._lock:
            message_id = self._next_message.get(chat_id, 0) + 1
            self._next_message[chat_id] = message_id
            return message_id

    def visible(self, chat_id: int) -> list[int]:
        """The ids of the chat's messages still on the person's phone (not deleted)."""
        return sorted(self.history.get(chat_id, {}))

    def age(self, chat_id: int, message_id: int, seconds: int) -> None:
        """Makes a message of the chat ``seconds`` older (48-hour limit of deletions)."""
        self.history[chat_id][message_id]["date"] -= seconds

    def _update_id(self) -> int:
        with self._lock:
            self._next_update += 1
            return self._next_update

    @staticmethod
    def user(user_id: int, language_code: str | None = "en") -> dict[str, Any]:
        found: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": "Dara"}
        if language_code:
            found["language_code"] = language_code
        return found

    @staticmethod
    def chat(chat_id: int, chat_type: str = "private") -> dict[str, Any]:
        if chat_type == "private":
            return {"id": chat_id, "type": "private", "first_name": "Dara"}
        return {"id": chat_id, "type": chat_type, "title": "Night shift"}

    def message(
        self,
        chat_id: int,
        *,
        language_code: str | None = "en",
        chat_type: str = "private",
        edited: bool = False,
        message_id: int | None = None,
        **content: Any,
    ) -> dict[str, Any]:
        """An update carrying a message (or an edited one) with ``content`` fields."""
        self.known_chats.add(chat_id)
        sender = chat_id if chat_type == "private" else 6000000000 + abs(chat_id) % 1000
        now = int(time.time())
        message_id = message_id or self._message_id(chat_id)
        if not edited:
            self.history.setdefault(chat_id, {})[message_id] = {"date": now, "from_bot": False}
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self.user(sender, language_code),
            "chat": self.chat(chat_id, chat_type),
            "date": now - 5 if edited else now,
            **content,
        }
        if edited:
            message["edit_date"] = now
        key = "edited_message" if edited else "message"
        if chat_type == "channel":
            key = "channel_post"
            message.pop("from")
        return {"update_id": self._update_id(), key: message}

    def text(self, chat_id: int, text: str, **kw: Any) -> dict[str, Any]:
        entities = []
        if text.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        extra = {"entities": entities} if entities else {}
        return self.message(chat_id, text=text, **extra, **kw)

    def location(
        self, chat_id: int, latitude: float, longitude: float, *, live: bool = False, **kw: Any
    ) -> dict[str, Any]:
        where: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if live:
            where["live_period"] = 900
        return self.message(chat_id, location=where, **kw)

    def contact(self, chat_id: int, phone: str, first_name: str, **kw: Any) -> dict[str, Any]:
        card = {"phone_number": phone, "first_name": first_name, "last_name": "Sok"}
        return self.message(chat_id, contact=card, **kw)

    def _file(self, kind: str, content: bytes, extension: str) -> dict[str, Any]:
        number = self._update_id()
        file_id = f"AgAC{kind}{number}xYz-_"
        self.files[file_id] = (f"{kind}s/file_{number}.{extension}", content)
        return {"file_id": file_id, "file_unique_id": f"AQAD{number}", "file_size": len(content)}

    def photo(self, chat_id: int, content: bytes, caption: str | None = None, **kw: Any) -> dict:
        small = {**self._file("photo", content[:10], "jpg"), "width": 90, "height": 67}
        large = {**self._file("photo", content, "jpg"), "width": 1280, "height": 960}
        extra = {"caption": caption} if caption else {}
        return self.message(chat_id, photo=[small, large], **extra, **kw)

    def voice(self, chat_id: int, content: bytes, **kw: Any) -> dict[str, Any]:
        voice = {**self._file("voice", content, "oga"), "duration": 4, "mime_type": "audio/ogg"}
        return self.message(chat_id, voice=voice, **kw)

    def document(
        self, chat_id: int, content: bytes, file_name: str, mime_type: str, **kw: Any
    ) -> dict[str, Any]:
        document = {
            **self._file("document", content, file_name.rsplit(".", 1)[-1]),
            "file_name": file_name,
            "mime_type": mime_type,
        }
        return self.message(chat_id, document=document, **kw)

    def press(self, chat_id: int, data: str, language_code: str | None = "en") -> dict[str, Any]:
        """The person presses the button with ``data`` under the last message that has it."""
        shown = next(
            m
            for m in reversed(self.messages)
            if m["chat_id"] == chat_id
            and any(
                key.get("callback_data") == data
                for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
                for key in row
            )
        )
        query_id = str(4000000000000000000 + self._update_id())
        self._queries.add(query_id)
        return {
            "update_id": self._update_id(),
            "callback_query": {
                "id": query_id,
                "from": self.user(chat_id, language_code),
                "chat_instance": "-6407123456789",
                "data": data,
                "message": {
                    "message_id": shown["message_id"],
                    "from": BOT_USER,
                    "chat": self.chat(chat_id),
                    "date": shown["date"],
                    "text": shown["text"],
                    "reply_markup": shown["reply_markup"],
                },
            },
        }

    def membership(
        self, chat_id: int, new_status: str, *, chat_type: str = "private", old: str = "member"
    ) -> dict[str, Any]:
        """``my_chat_member``: the bot blocked (``kicked``) or unblocked, or added to a group."""
        if chat_type != "private" and new_status in ("member", "administrator"):
            self.known_chats.add(chat_id)
        actor = chat_id if chat_type == "private" else 6000000001
        bot = {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")}
        return {
            "update_id": self._update_id(),
            "my_chat_member": {
                "chat": self.chat(chat_id, chat_type),
                "from": self.user(actor, "th"),
                "date": int(time.time()),
                "old_chat_member": {"user": bot, "status": old}
                | ({"until_date": 0} if old == "kicked" else {}),
                "new_chat_member": {"user": bot, "status": new_status}
                | ({"until_date": 0} if new_status == "kicked" else {}),
            },
        }

    # --- the API ------------------------------------------------------------------------------

    def _injected(self, method: str) -> TelegramError | None:
        with self._lock:
            for failure in self._failures:
                if failure["method"] != method or failure["times"] <= 0:
                    continue
                if failure["after"] > 0:
                    failure["after"] -= 1
                    return None
                failure["times"] -= 1
                status = failure["status"]
                if status == 429:
                    wait = failure["retry_after"] or 1
                    return TelegramError(429, f"Too Many Requests: retry after {wait}", wait)
                phrase = {500: "Internal Server Error", 502: "Bad Gateway"}.get(status, "Error")
                return TelegramError(status, phrase)
        return None

    @staticmethod
    async def _params(request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        if body and content_type.startswith("application/json"):
            params.update(json.loads(body))
        elif body:
            params.update(_form(body))
        return params

    @staticmethod
    def _object(params: dict[str, Any], name: str, error: str) -> Any:
        value = params.get(name)
        if value is None or not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise _bad(error) from None

    def _chat(self, params: dict[str, Any]) -> int:
        raw = params.get("chat_id")
        if raw in (None, ""):
            raise _bad("chat_id is empty")
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise _bad("chat not found") from None
        if chat_id not in self.known_chats:
            raise _bad("chat not found")
        return chat_id

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(params)
        text = str(params.get("text") or "")
        if not text.strip():
            raise _bad("message text is empty")
        if _utf16_len(text.strip()) > 4096:
            raise _bad("message is too long")
        unparsable = "can't parse reply keyboard markup JSON object"
        markup = self._object(params, "reply_markup", unparsable)
        if markup is not None:
            rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad(unparsable)
            for key in (k for row in rows for k in row):
                if not isinstance(key, dict) or not key.get("text"):
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed")
                data = key.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise _bad("BUTTON_DATA_INVALID")
        self._object(params, "link_preview_options", "can't parse link preview options")
        if chat_id in self.blocked:
            raise TelegramError(403, "Forbidden: bot was blocked by the user")
        message_id = self._message_id(chat_id)
        self.history.setdefault(chat_id, {})[message_id] = {
            "date": int(time.time()),
            "from_bot": True,
        }
        chat_type = "private" if chat_id > 0 else "supergroup"
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": self.chat(chat_id, chat_type),
            "date": int(time.time()),
            "text": text.strip(),
        }
        if markup:
            message["reply_markup"] = markup
        self.sent.append(params)
        self.messages.append({**message, "chat_id": chat_id})
        return message

    def _delete_messages(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat(params)
        ids = self._object(params, "message_ids", "can't parse message identifiers")
        if not isinstance(ids, list) or not ids:
            raise _bad("message identifiers are not specified")
        if len(ids) > 100:
            raise _bad("too many message identifiers specified")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise _bad("can't parse message identifiers")
        self.deletions.append({"chat_id": chat_id, "message_ids": list(ids)})
        if chat_id < 0:
            raise _bad("message can't be deleted")  # not an admin of the group
        chat = self.history.get(chat_id, {})
        now = int(time.time())
        for message_id in ids:
            found = chat.get(message_id)
            if found is not None and now - found["date"] < 48 * 3600:
                del chat[message_id]
        return True

    async def _get_updates(
        self, params: dict[str, Any], request: Request | None = None
    ) -> list[dict[str, Any]]:
        if self.webhook["url"]:
            raise TelegramError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + min(timeout, 50)
        while True:
            with self._lock:
                if offset:
                    self._pending = [u for u in self._pending if u["update_id"] >= offset]
                ready = list(self._pending[:limit])
            if ready or time.monotonic() >= deadline:
                return ready
            if request is not None and await request.is_disconnected():
                return []  # the poller went away: do not hold the server's shutdown
            await asyncio.sleep(0.05)

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN.match(str(secret)):
            raise _bad("secret token contains unallowed characters")
        allowed = self._object(params, "allowed_updates", "can't parse allowed updates")
        drop = self._object(params, "drop_pending_updates", "can't parse drop_pending_updates")
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": allowed,
            "drop_pending_updates": bool(drop),
        }
        if drop:
            with self._lock:
                self._pending.clear()
        return True

    def _file_info(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id") or "")
        if file_id not in self.files:
            raise _bad("invalid file_id")
        path, content = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"AQAD{abs(hash(file_id)) % 10**8}",
            "file_size": len(content),
            "file_path": path,
        }

    async def _call(self, name: str, params: dict[str, Any], request: Request | None = None) -> Any:
        if name == "getMe":
            return BOT_USER
        if name == "sendMessage":
            return self._send_message(params)
        if name == "getUpdates":
            return await self._get_updates(params, request)
        if name == "setWebhook":
            return self._set_webhook(params)
        if name == "deleteWebhook":
            drop = self._object(params, "drop_pending_updates", "can't parse drop_pending_updates")
            self.webhook = {"url": ""}
            if drop:
                with self._lock:
                    self._pending.clear()
            return True
        if name == "getWebhookInfo":
            info = {
                "url": self.webhook["url"],
                "has_custom_certificate": False,
                "pending_update_count": len(self.pending),
            }
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
            return info
        if name == "leaveChat":
            chat_id = self._chat(params)
            if chat_id > 0:
                raise _bad("chat member status can't be changed in private chats")
            self.left.append(chat_id)
            self.known_chats.discard(chat_id)
            return True
        if name == "getFile":
            return self._file_info(params)
        if name == "deleteMessages":
            return self._delete_messages(params)
        if name == "answerCallbackQuery":
            query_id = str(params.get("callback_query_id") or "")
            if query_id not in self._queries:
                raise _bad("query is too old and response timeout expired or query ID is invalid")
            self._queries.discard(query_id)
            self.answered.append(query_id)
            return True
        raise TelegramError(404, "Not Found")

    def app(self) -> Starlette:
        async def method(request: Request) -> Response:
            name = request.path_params["method"]
            self.calls.append(name)
            self.called_at.append(time.monotonic())
            if request.path_params["token"] != self.token:
                return TelegramError(401, "Unauthorized").response()
            if self.fail:
                return TelegramError(500, "Internal Server Error").response()
            try:
                injected = self._injected(name)
                if injected is not None:
                    raise injected
                result = await self._call(name, await self._params(request), request)
            except TelegramError as exc:
                return exc.response()
            return JSONResponse({"ok": True, "result": result})

        async def download(request: Request) -> Response:
            if request.path_params["token"] != self.token:
                return TelegramError(401, "Unauthorized").response()
            for path, content in self.files.values():
                if path == request.path_params["path"]:
                    return Response(content, media_type="application/octet-stream")
            return TelegramError(404, "Not Found").response()

        return Starlette(
            routes=[
                Route("/bot{token}/{method}", method, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", download, methods=["GET"]),
            ]
        )


class FakeTwilio:
    """Twilio for one account: the Messages API, MMS media, and the webhooks Twilio posts.

    The REST API (``/2010-04-01/Accounts/{AccountSid}/...``) checks HTTP basic
    auth with the account SID and auth token (401, code 20003) like Twilio:

    - ``POST Messages.json`` (form-encoded; else 400, 20001) answers 201 with
      a Message resource (``sid``, ``status`` ``queued``, ``num_segments`` ...)
      or Twilio's errors: 400 without ``To`` (21604), without ``From`` or
      ``MessagingServiceSid`` (21603), without ``Body`` (21602), a ``To`` not
      in E.164 (21211), a body over 1,600 characters (21617), a
      ``StatusCallback`` that is not an absolute http(s) URL (21609), a
      recipient in :attr:`opted_out` (21610); 429 (20429) and 5xx injected
      with :meth:`fail_next`; 500 while :attr:`fail` is set. With a
      ``StatusCallback`` the message's statuses (``sent``, then ``delivered``
      or what :attr:`outcome` says) are posted to it, signed with
      ``X-Twilio-Signature`` for that URL.
    - ``GET Messages/{sid}/Media/{MediaSid}`` redirects (307) to a storage
      URL on another origin (``/cdn/...``) which, like S3's signed URLs,
      refuses a request that carries an ``Authorization`` header.

    Webhooks (:meth:`incoming`, :meth:`post`): the parameters Twilio posts for
    an incoming SMS or MMS, signed for the public URL Twilio was given and
    posted through the proxy (:attr:`forward`: public prefix -> the gateway).
    """

    def __init__(self, account_sid: str, auth_token: str, number: str = "+15005550006") -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        #: The account's number: what people text (the ``To`` of incoming webhooks).
        self.number = number
        #: Where the stand-in listens (set by whoever serves it).
        self.base = ""
        #: Accepted messages, their form as received; :attr:`sids` their SIDs, in order.
        self.messages: list[dict[str, str]] = []
        self.sids: list[str] = []
        #: The (user, password) of the basic auth of every accepted message.
        self.auth: list[tuple[str, str]] = []
        #: Every ``POST Messages.json``, accepted or not.
        self.calls = 0
        self.fail = False
        #: Numbers that sent STOP: Twilio refuses to send to them (21610).
        self.opted_out: set[str] = set()
        #: The final status of messages to a number (default ``delivered``) and its error code.
        self.outcome: dict[str, tuple[str, str | None]] = {}
        #: Status callbacks posted: (MessageSid, MessageStatus, the HTTP status answered).
        self.callbacks: list[tuple[str, str, int]] = []
        #: Public URL prefix -> where the proxy in front of the gateway forwards it.
        self.forward: dict[str, str] = {}
        #: Media of incoming MMS by API path: (content, content type).
        self.media: dict[str, tuple[bytes, str]] = {}
        #: Storage URLs handed out by the media redirects.
        self._stored: dict[str, tuple[bytes, str]] = {}
        self._failures: list[list[int]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()

    # --- what a test does ---------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1) -> None:
        """The next ``times`` sends fail with ``status`` (429 or a 5xx)."""
        with self._lock:
            self._failures.append([status, times])

    def texts_to(self, number: str) -> list[str]:
        """The bodies sent to ``number``, in order."""
        return [m["Body"] for m in self.messages if m["To"] == number]

    def incoming(
        self,
        sender: str,
        body: str = "",
        *,
        media: tuple[tuple[bytes, str], ...] = (),
        opt_out_type: str | None = None,
    ) -> dict[str, str]:
        """The parameters Twilio posts to the messaging webhook for one SMS (MMS with media)."""
        sid = ("MM" if media else "SM") + secrets.token_hex(16)
        params = {
            "ToCountry": "US", "ToState": "", "ToCity": "", "ToZip": "", "FromState": "",
            "FromCity": "", "FromZip": "", "FromCountry": "", "SmsMessageSid": sid,
            "SmsSid": sid, "MessageSid": sid, "SmsStatus": "received", "NumMedia": str(len(media)),
            "NumSegments": "1", "Body": body, "To": self.number, "From": sender,
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01",
        }  # fmt: skip
        for index, (content, content_type) in enumerate(media):
            path = (
                f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
                f"/Media/ME{secrets.token_hex(16)}"
            )
            self.media[path] = (content, content_type)
            params[f"MediaUrl{index}"] = f"https://api.twilio.com{path}"
            params[f"MediaContentType{index}"] = content_type
        if opt_out_type:
            params["OptOutType"] = opt_out_type
        return params

    def sign(self, url: str, params: dict[str, str]) -> str:
        """``X-Twilio-Signature`` for ``params`` posted to ``url``."""
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    def route(self, url: str) -> str:
        """Where the proxy sends a request for the public ``url``."""
        for public, local in self.forward.items():
            if url.startswith(public):
                return local + url[len(public) :]
        return url

    def post(
        self,
        url: str,
        params: dict[str, str],
        *,
        signature: str | None = "",
        signed_url: str | None = None,
    ) -> httpx.Response:
        """Posts a webhook as Twilio does, form-encoded, through the proxy.

        Args:
            url: The public URL Twilio was given.
            params: The form.
            signature: ``""`` to sign (for ``signed_url``, default ``url``), ``None``
                to send no signature, anything else to send that one.
            signed_url: The URL to compute the signature for (a wrong one forges it).
        """
        headers = {}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature or self.sign(signed_url or url, params)
        return httpx.post(self.route(url), data=params, headers=headers, timeout=30)

    # --- the API ------------------------------------------------------------------------------

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

    def _authenticated(self, request: Request) -> tuple[str, str] | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        if (
            scheme != "Basic"
            or (user, password) != (self.account_sid, self.auth_token)
            or request.path_params["sid"] != self.account_sid
        ):
            return None
        return user, password

    def _injected(self) -> Response | None:
        with self._lock:
            for failure in self._failures:
                if failure[1] > 0:
                    failure[1] -= 1
                    if failure[0] == 429:
                        return self._error(429, 20429, "Too Many Requests")
                    return self._error(failure[0], 20500, "Internal Server Error")
        return None

    def _refusal(self, form: dict[str, str]) -> Response | None:
        """Twilio's 400 for a message it does not accept, or None."""
        to, body = form.get("To", ""), form.get("Body", "")
        callback = urlsplit(form.get("StatusCallback", ""))
        if not to:
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return self._error(400, 21603, "A 'From' phone number is required.")
        if not body and not form.get("MediaUrl"):
            return self._error(400, 21602, "Message body is required.")
        if not E164.match(to):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if len(body) > 1600:
            return self._error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if form.get("StatusCallback") and (
            callback.scheme not in ("http", "https") or not callback.netloc
        ):
            return self._error(400, 21609, "Invalid StatusCallback URL.")
        if to in self.opted_out:
            return self._error(400, 21610, "Attempt to send to unsubscribed recipient")
        return None

    async def _report(self, sid: str, form: dict[str, str]) -> None:
        """Posts the message's statuses to its ``StatusCallback``, as Twilio does."""
        final, code = self.outcome.get(form["To"], ("delivered", None))
        statuses = [final] if final == "failed" else ["sent", final]
        async with httpx.AsyncClient(timeout=30) as client:
            for status in statuses:
                await asyncio.sleep(0.05)
                params = {
                    "AccountSid": self.account_sid, "ApiVersion": "2010-04-01",
                    "From": form.get("From", ""), "MessageSid": sid, "MessageStatus": status,
                    "SmsSid": sid, "SmsStatus": status, "To": form["To"],
                }  # fmt: skip
                if code and status == final:
                    params["ErrorCode"] = code
                url = form["StatusCallback"]
                try:
                    answer = await client.post(
                        self.route(url),
                        data=params,
                        headers={"X-Twilio-Signature": self.sign(url, params)},
                    )
                    self.callbacks.append((sid, status, answer.status_code))
                except httpx.HTTPError:
                    self.callbacks.append((sid, status, 0))

    def app(self) -> Starlette:
        async def create_message(request: Request) -> Response:
            with self._lock:
                self.calls += 1
            auth = self._authenticated(request)
            if auth is None:
                return self._error(401, 20003, "Authenticate")
            if self.fail:
                return self._error(500, 20500, "Internal Server Error")
            injected = self._injected()
            if injected is not None:
                return injected
            if not request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                return self._error(400, 20001, "Unsupported content type")
            form = _form(await request.body())
            refused = self._refusal(form)
            if refused is not None:
                return refused
            sid = "SM" + secrets.token_hex(16)
            with self._lock:
                self.messages.append(form)
                self.sids.append(sid)
                self.auth.append(auth)
            if form.get("StatusCallback"):
                task = asyncio.create_task(self._report(sid, form))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
            now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
            body = form.get("Body", "")
            gsm = all(ch == "\n" or (" " <= ch <= "z" and ch not in "`^[]\\") for ch in body)
            units = len(body) if gsm else len(body.encode("utf-16-le")) // 2
            single, multi = (160, 153) if gsm else (70, 67)
            return JSONResponse(
                {
                    "account_sid": self.account_sid,
                    "api_version": "2010-04-01",
                    "body": body,
                    "date_created": now,
                    "date_sent": None,
                    "date_updated": now,
                    "direction": "outbound-api",
                    "error_code": None,
                    "error_message": None,
                    "from": form.get("From"),
                    "messaging_service_sid": form.get("MessagingServiceSid"),
                    "num_media": "0",
                    "num_segments": str(1 if units <= single else -(-units // multi)),
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

        async def medium(request: Request) -> Response:
            if self._authenticated(request) is None:
                return self._error(401, 20003, "Authenticate")
            found = self.media.get(request.url.path)
            if found is None:
                return self._error(404, 20404, "The requested resource was not found")
            token = secrets.token_urlsafe(12)
            self._stored[token] = found
            # Storage is another origin (S3): a client must not send the credentials there.
            host = "localhost" if request.url.hostname == "127.0.0.1" else "127.0.0.1"
            return RedirectResponse(f"http://{host}:{request.url.port}/cdn/{token}", 307)

        async def storage(request: Request) -> Response:
            if "authorization" in request.headers:
                return Response("Only one auth mechanism allowed", status_code=400)
            found = self._stored.get(request.path_params["token"])
            if found is None:
                return Response("Access Denied", status_code=403)
            return Response(found[0], media_type=found[1])

        return Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{sid}/Messages.json", create_message, methods=["POST"]),
                Route(
                    "/2010-04-01/Accounts/{sid}/Messages/{message}/Media/{medium}",
                    medium,
                    methods=["GET"],
                ),
                Route("/cdn/{token}", storage, methods=["GET"]),
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
