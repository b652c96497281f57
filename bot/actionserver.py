"""Runs the rasa-sdk action server on loopback, with ``/healthz`` and ``/metrics``.

rasa-sdk's own launcher listens on every interface; this one binds 127.0.0.1
(Rasa is its only client) and adds Beacon's health and metrics routes.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from bot import logs
from bot.settings import get_settings

ACTIONS = Counter("beacon_actions_total", "Custom actions run", ["action", "status"])
ACTION_SECONDS = Histogram("beacon_action_seconds", "Time a custom action took", ["action"])


def build_app() -> Any:
    """The rasa-sdk Sanic app with Beacon's routes and metrics."""
    from rasa_sdk.endpoint import create_app
    from sanic import response

    app = create_app("actions", cors_origins=None)

    async def healthz(_request: Any) -> Any:
        return response.json({"status": "ok"})

    async def metrics(_request: Any) -> Any:
        return response.raw(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    app.add_route(healthz, "/healthz", methods=["GET"])
    app.add_route(metrics, "/metrics", methods=["GET"])

    async def started(request: Any) -> None:
        request.ctx.started = time.monotonic()

    async def finished(request: Any, resp: Any) -> None:
        if request.path != "/webhook" or not isinstance(request.json, dict):
            return
        action = str(request.json.get("next_action") or "unknown")
        ACTIONS.labels(action, str(resp.status)).inc()
        ACTION_SECONDS.labels(action).observe(time.monotonic() - request.ctx.started)

    app.register_middleware(started, "request")
    app.register_middleware(finished, "response")

    return app


def main() -> None:
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    from bot.screening import warm_up

    warm_up()
    build_app().run("127.0.0.1", settings.actions_port, workers=1, access_log=False)


if __name__ == "__main__":
    main()
