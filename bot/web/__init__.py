"""Static files of the web chat page."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from string import Template

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"


@lru_cache(maxsize=1)
def page_template() -> Template:
    """The chat page; ``$placeholders`` are filled (HTML-escaped) per request."""
    return Template((WEB_DIR / "chat.html").read_text(encoding="utf-8"))
