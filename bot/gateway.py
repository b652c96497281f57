"""Runs the gateway alone (``beacon gateway``); ``beacon up`` starts it with the rest."""

from __future__ import annotations

import uvicorn

from bot import logs
from bot.app import create_app
from bot.settings import get_settings


def main() -> None:
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        ws="wsproto",
    )


if __name__ == "__main__":
    main()
