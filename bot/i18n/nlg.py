"""Rasa's NLG endpoint, served by the gateway: responses in the conversation's language.

Rasa posts ``{"response", "arguments", "tracker", "channel"}``; the reply is
the response's text and buttons from ``domain.yml``, translated through the
catalogs into the language in the tracker's ``language`` slot, with
``{placeholders}`` filled from slots and arguments. A response's ``custom:
{beacon: ...}`` tells the gateway what the reply means for the person's
safety (erase, pause, a sensitive question follows, ...); it is passed on. A response may have a
variation for one channel (``channel: sms``, a shorter text without buttons):
it is used on that channel, the general one everywhere else.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.i18n import available_languages, language_name, pgettext
from bot.settings import ROOT

DOMAIN_FILE = ROOT / "domain.yml"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


class UnknownResponse(KeyError):
    """Rasa asked for a response that the domain does not define."""


@lru_cache(maxsize=1)
def responses(path: Path = DOMAIN_FILE) -> dict[str, list[dict[str, Any]]]:
    """The responses of the domain, by name."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {str(k): list(v) for k, v in (data.get("responses") or {}).items()}


def language_payload(code: str) -> str:
    """The payload of the language menu's button for ``code``."""
    return "/choose_language" + json.dumps({"language": code}, separators=(",", ":"))


def language_menu() -> list[dict[str, str]]:
    """One button per served language, titled with the language's own name."""
    return [
        {"title": language_name(code, code) or code, "payload": language_payload(code)}
        for code in available_languages()
    ]


@lru_cache(maxsize=1)
def button_payloads() -> frozenset[str]:
    """Every payload a button of a response may send back."""
    payloads = {
        str(button["payload"])
        for variations in responses().values()
        for variation in variations
        for button in variation.get("buttons") or []
    }
    return frozenset(payloads | {b["payload"] for b in language_menu()})


def _fill(text: str, values: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        found = values.get(match.group(1))
        return match.group(0) if found is None else str(found)

    return PLACEHOLDER.sub(value, text)


def _variation(variations: list[dict[str, Any]], channel: str | None) -> dict[str, Any]:
    """The channel's own variation of a response (``channel: sms``), else the general one."""
    own = [v for v in variations if channel and v.get("channel") == channel]
    general = [v for v in variations if v.get("channel") is None]
    return (own or general or variations)[0]


def render(
    name: str, language: str | None, channel: str | None, values: dict[str, Any]
) -> dict[str, Any]:
    """One response, translated and filled, in the shape Rasa's NLG client expects."""
    variations = responses().get(name)
    if not variations:
        raise UnknownResponse(name)
    variation = _variation(variations, channel)
    text = _fill(pgettext(language, name, str(variation.get("text", ""))), values)
    buttons = [
        {
            "title": _fill(pgettext(language, f"{name}/button", str(b["title"])), values),
            "payload": str(b["payload"]),
        }
        for b in variation.get("buttons") or []
    ]
    custom = variation.get("custom") or {}
    if custom.get("language_menu"):
        buttons += language_menu()
    rendered: dict[str, Any] = {"text": text, "buttons": buttons}
    if custom.get("beacon"):
        # What the gateway does with this reply (erase, pause, ...): Rasa passes
        # it back as a ``custom`` message after the text.
        rendered["custom"] = {"beacon": str(custom["beacon"])}
    return rendered


def render_request(body: dict[str, Any]) -> dict[str, Any]:
    """Answers one request of Rasa's ``CallbackNaturalLanguageGenerator``."""
    name = str(body["response"])
    tracker = body.get("tracker") or {}
    slots: dict[str, Any] = dict(tracker.get("slots") or {})
    metadata = (tracker.get("latest_message") or {}).get("metadata") or {}
    arguments = body.get("arguments") or {}
    # An action may name the language (the one just chosen is not in the slots yet).
    language = arguments.get("language") or slots.get("language") or metadata.get("language")
    channel = metadata.get("channel") or (body.get("channel") or {}).get("name")
    values = {**slots, **arguments}
    return render(name, language, channel, values)
