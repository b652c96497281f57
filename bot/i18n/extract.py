"""A Babel extractor for Beacon's YAML sources (``domain.yml`` responses, ``locales/ui.yml``).

Referenced from ``babel.cfg``; yields ``pgettext`` messages whose context is the
response name (or ``<response>/button`` for button titles) or the UI key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import yaml


def _line_of(lines: list[str], needle: str) -> int:
    for number, line in enumerate(lines, start=1):
        if needle in line:
            return number
    return 1


def extract_yaml(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[tuple[int, str, tuple[str, str], list[str]]]:
    """Yields ``(lineno, "pgettext", (context, text), comments)`` for each source string."""
    raw = fileobj.read().decode("utf-8")
    lines = raw.splitlines()
    data = yaml.safe_load(raw) or {}
    for name, variations in (data.get("responses") or {}).items():
        for variation in variations:
            text = variation.get("text")
            if text:
                channel = variation.get("channel")
                comments = [f"channel: {channel}"] if channel else []
                yield _line_of(lines, text[:40]), "pgettext", (name, text), comments
            for button in variation.get("buttons") or []:
                title = button["title"]
                yield _line_of(lines, title), "pgettext", (f"{name}/button", title), []
    for key, text in (data.get("ui") or {}).items():
        yield _line_of(lines, f"{key}:"), "pgettext", (key, text), []
    for key, text in (data.get("console") or {}).items():
        yield _line_of(lines, f"{key}:"), "pgettext", (f"console/{key}", text), []
