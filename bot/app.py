"""The gateway: an ASGI app that owns the channels, the NLG endpoint, health and metrics.

Routes:
    GET  /chat              the web chat page
    POST /webchat/messages  the web chat channel
    POST /webchat/poll      responders' messages for the web chat page
    /console...             the responder console (bot/console/routes.py)
    POST /telegram/webhook  Telegram (when BEACON_TELEGRAM_TOKEN is set; bot/channels/telegram.py)
    POST /twilio/sms        SMS (when the Twilio account is set; bot/channels/sms.py)
    POST /twilio/status     Twilio's delivery statuses for the SMS Beacon sent
    POST /nlg               Rasa's NLG endpoint (internal token required)
    GET  /healthz           200 only when gateway, Rasa (model loaded) and actions are ready
    GET  /metrics           Prometheus metrics
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.channels import build_channels, webchat
from bot.channels.inbox import Inbox
from bot.console.routes import routes as console_routes
from bot.conversation import Conversations
from bot.db import dispose_all, get_engine
from bot.handoff.feed import Feed
from bot.handoff.paging import PagingService, pagers_from_settings
from bot.handoff.relay import Relay, RetryPolicy
from bot.i18n.nlg import UnknownResponse, render_request
from bot.metrics import NLG_RENDERS, REJECTED
from bot.privacy.retention import PurgeService
from bot.rasa_client import RasaClient
from bot.screening import warm_up
from bot.settings import Settings, get_settings
from bot.web import STATIC_DIR

log = logging.getLogger(__name__)


async def nlg(request: Request) -> Response:
    """Renders a response for Rasa in the conversation's language."""
    token = request.query_params.get("token", "")
    expected = request.app.state.settings.internal_token
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        REJECTED.labels("nlg", "forbidden").inc()
        return JSONResponse({"error": "forbidden"}, status_code=403)
    try:
        body: Any = json.loads(await request.body())
        if not isinstance(body, dict) or not isinstance(body.get("response"), str):
            raise ValueError("no response name")
        rendered = render_request(body)
    except UnknownResponse as exc:
        REJECTED.labels("nlg", "unknown_response").inc()
        return JSONResponse({"error": f"unknown response {exc.args[0]!r}"}, status_code=400)
    except (ValueError, TypeError, AttributeError):
        REJECTED.labels("nlg", "malformed").inc()
        return JSONResponse({"error": "malformed NLG request"}, status_code=400)
    slots = (body.get("tracker") or {}).get("slots") or {}
    NLG_RENDERS.labels(str(slots.get("language") or "none")).inc()
    return JSONResponse(rendered)


def _database_ready() -> bool:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))
    return True


async def healthz(request: Request) -> Response:
    """Readiness of the whole stack."""
    state = request.app.state
    checks: dict[str, bool] = {"gateway": True}
    try:
        checks["database"] = await run_in_threadpool(_database_ready)
    except Exception:
        checks["database"] = False
    checks["rasa"] = await state.rasa.model_loaded()
    try:
        response = await state.http.get(f"{state.settings.actions_url}/health", timeout=3.0)
        checks["actions"] = response.status_code == 200
    except httpx.HTTPError:
        checks["actions"] = False
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


async def metrics(_request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def home(_request: Request) -> Response:
    return RedirectResponse("/chat")


async def database_unavailable(_request: Request, exc: Exception) -> Response:
    log.error("database_unavailable", extra={"fields": {"error": type(exc).__name__}})
    return JSONResponse(
        {"error": "storage is not available right now; please send your message again"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def create_app(settings: Settings | None = None) -> Starlette:
    """Builds the gateway for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    channels = build_channels(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.http = httpx.AsyncClient()
        app.state.rasa = RasaClient(settings.rasa_url, settings.internal_token)
        app.state.feed = Feed()
        app.state.relay = Relay(
            {channel.name: channel for channel in channels},
            RetryPolicy(max_attempts=settings.send_max_attempts),
            on_change=app.state.feed.poke,
        )
        app.state.background = set()
        app.state.conversations = Conversations(app.state.rasa, app.state.feed.poke)
        app.state.inbox = Inbox(
            app.state.conversations, app.state.relay, {channel.name for channel in channels}
        )
        await run_in_threadpool(warm_up)
        await app.state.feed.start()
        await run_in_threadpool(app.state.relay.recover_interrupted)
        started = []
        for channel in channels:
            await channel.start(app.state.inbox)
            started.append(channel)
        log.info(
            "channels",
            extra={"fields": {"on": ["webchat", *(c.name for c in channels)]}},
        )
        stop = asyncio.Event()
        background = [
            asyncio.create_task(app.state.relay.run(stop), name="relay"),
            asyncio.create_task(app.state.inbox.run(stop), name="inbox"),
            asyncio.create_task(PurgeService(app.state.rasa, settings).run(stop), name="retention"),
        ]
        pagers = pagers_from_settings(settings)
        if pagers:
            app.state.paging = PagingService(pagers, settings)
            background.append(asyncio.create_task(app.state.paging.run(stop), name="paging"))
        else:
            log.warning(
                "paging_off",
                extra={"fields": {"reason": "no Telegram chat or SMS numbers configured"}},
            )
        log.info("gateway_started", extra={"fields": {"port": settings.port}})
        try:
            yield
        finally:
            stop.set()
            for channel in reversed(started):
                await channel.stop()
            await app.state.inbox.drain()
            await asyncio.gather(*background, return_exceptions=True)
            await app.state.feed.stop()
            for task in list(app.state.background):
                task.cancel()
            await app.state.rasa.aclose()
            await app.state.http.aclose()
            dispose_all()

    routes = [
        Route("/", home),
        Route("/chat", webchat.chat_page, methods=["GET"]),
        Route("/webchat/messages", webchat.post_message, methods=["POST"]),
        Route("/webchat/poll", webchat.poll, methods=["POST"]),
        *console_routes(),
        *(route for channel in channels for route in channel.routes()),
        Route("/nlg", nlg, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={SQLAlchemyError: database_unavailable},
    )
