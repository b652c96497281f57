"""Stand-in servers on 127.0.0.1 that speak the real HTTP APIs the gateway calls."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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

        return Starlette(
            routes=[
                Route("/webhooks/rest/webhook", webhook, methods=["POST"]),
                Route("/status", status),
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
