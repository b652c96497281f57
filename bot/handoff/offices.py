"""Which country office serves a case: ISO 3166 codes from the country a person names.

The ``country`` slot holds what the person wrote ("Cambodia", "Kamboja",
"กัมพูชา"). Offices are ISO 3166-1 alpha-2 codes (``KH``, ``MM``, ``TH``).
Names are matched against Babel's territory names in every served language
and in English.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from babel import Locale

from bot.i18n import available_languages


def _fold(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold().strip(" .,!?")


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    names: dict[str, str] = {}
    for language in ("en", *available_languages()):
        try:
            territories = Locale.parse(language).territories
        except (ValueError, TypeError):
            continue
        for code, name in territories.items():
            if len(code) == 2 and code.isalpha():
                names.setdefault(_fold(name), code)
                # "Myanmar (Burma)": "Myanmar" and "Burma" too.
                if "(" in name:
                    short, _, alias = name.partition("(")
                    names.setdefault(_fold(short), code)
                    names.setdefault(_fold(alias.rstrip(")")), code)
                names.setdefault(code.casefold(), code)
    return names


def office_for(country: str | None) -> str | None:
    """The ISO code for a country name or code in any served language, or None."""
    if not country:
        return None
    return _names().get(_fold(country))


def is_office(code: str) -> bool:
    """Whether ``code`` is a known ISO 3166-1 alpha-2 code."""
    return code.upper() in set(_names().values())
