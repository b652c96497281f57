"""Structured logs without personal data.

Log records are JSON lines (``BEACON_LOG_FORMAT=text`` for humans). Code logs
events and ids only: never message text, phone numbers, chat ids or names.
Use ``log.info("event", extra={"fields": {...}})``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        suffix = " ".join(f"{k}={v}" for k, v in fields.items()) if isinstance(fields, dict) else ""
        base = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        return f"{base} {suffix}".rstrip()


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Sends every log record to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # python-telegram-bot logs API calls with their parameters (message texts, chat ids)
    # at DEBUG: never at any BEACON_LOG_LEVEL.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "telegram"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
