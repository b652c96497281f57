"""Translations: every user-facing string comes from the Babel catalogs in ``locales/``.

Source strings are the English texts of the responses in ``domain.yml`` and of
the web chat page in ``locales/ui.yml``; each is keyed by its response name or
UI key as the message context (``pgettext``), so the same English sentence can
be translated differently where it means different things.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations

from bot.settings import ROOT

LOCALES_DIR = ROOT / "locales"
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"
UI_STRINGS = LOCALES_DIR / "ui.yml"
CONSOLE_STRINGS = LOCALES_DIR / "console.yml"


@lru_cache(maxsize=1)
def available_languages() -> tuple[str, ...]:
    """Languages with a compiled catalog, source language first."""
    found = sorted(p.parent.parent.name for p in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))
    if SOURCE_LANGUAGE in found:
        found.remove(SOURCE_LANGUAGE)
    return (SOURCE_LANGUAGE, *found)


@lru_cache(maxsize=32)
def translations(language: str) -> NullTranslations:
    """The catalog for ``language`` (falling back to the source language)."""
    fallback: NullTranslations = NullTranslations()
    if language != SOURCE_LANGUAGE:
        fallback = translations(SOURCE_LANGUAGE)
    catalog = Translations.load(str(LOCALES_DIR), [language], DOMAIN)
    if isinstance(catalog, Translations):
        catalog.add_fallback(fallback)
        return catalog
    return fallback


def resolve(language: str | None) -> str:
    """A served language for a language code such as ``"th"``, ``"id-ID"`` or ``None``."""
    if language:
        code = language.replace("-", "_").split("_")[0].lower()
        if code in available_languages():
            return code
    return SOURCE_LANGUAGE


def pgettext(language: str | None, context: str, source: str) -> str:
    """``source`` (English, for ``context``) in ``language``."""
    return str(translations(resolve(language)).pgettext(context, source))


def locale(language: str | None) -> Locale:
    """Babel's locale for a served language (for numbers, dates, plurals)."""
    try:
        return Locale.parse(resolve(language))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(SOURCE_LANGUAGE)


@lru_cache(maxsize=1)
def ui_sources(path: Path = UI_STRINGS) -> dict[str, str]:
    """The web page's source strings, key -> English."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data["ui"].items()}


def ui_strings(language: str | None) -> dict[str, str]:
    """The web page's strings in ``language``."""
    return {key: pgettext(language, key, text) for key, text in ui_sources().items()}


@lru_cache(maxsize=1)
def console_sources() -> dict[str, str]:
    """The responder console's source strings, key -> English."""
    data: dict[str, Any] = yaml.safe_load(CONSOLE_STRINGS.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data["console"].items()}


@lru_cache(maxsize=32)
def console_strings(language: str | None) -> dict[str, str]:
    """The console's strings in the responder's UI ``language``."""
    return {
        key: pgettext(language, f"console/{key}", text) for key, text in console_sources().items()
    }


def console_text(language: str | None, key: str, **values: Any) -> str:
    """One console string in ``language``, with ``{placeholders}`` filled."""
    text = console_strings(language)[key]
    return text.format(**values) if values else text


def negotiate(accept_language: str | None) -> str:
    """The best served language for an HTTP ``Accept-Language`` header."""
    if not accept_language:
        return SOURCE_LANGUAGE
    preferred = [part.split(";")[0].strip() for part in accept_language.split(",")]
    found = Locale.negotiate(
        [p.replace("-", "_") for p in preferred if p], list(available_languages()), sep="_"
    )
    return resolve(str(found)) if found else SOURCE_LANGUAGE


def language_name(code: str | None, ui_language: str | None) -> str | None:
    """A language's name in ``ui_language`` (``th`` -> "Thai" / "ไทย"); its own name when
    ``ui_language`` is ``code``."""
    if not code:
        return None
    try:
        name = Locale.parse(code).get_display_name(locale(ui_language))
    except (UnknownLocaleError, ValueError):
        return code
    return name or code
