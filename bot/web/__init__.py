"""Pages and static files: the web chat page and the responder console."""

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


@lru_cache(maxsize=1)
def console_template() -> Template:
    """The responder console app shell."""
    return Template((WEB_DIR / "console.html").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def login_template() -> Template:
    """The console's login page."""
    return Template((WEB_DIR / "console_login.html").read_text(encoding="utf-8"))
