"""How to reach the missing person: a phone number or a Telegram handle.

The family report form calls :func:`parse_phone` to turn an answer into a
:class:`Contact`, or gets ``None`` when it holds neither (the form then asks
again). Numbers are checked with ``phonenumbers``; native digits ("၀၉ ...")
are read as ASCII digits first (:func:`actions.report_text.ascii_digits`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers

from actions.report_text import ascii_digits

__all__ = ["Contact", "parse_phone"]


@dataclass(frozen=True)
class Contact:
    """How to reach the missing person.

    Attributes:
        kind: ``"phone"`` or ``"telegram"``.
        value: The number in E.164 (``+85512345678``) or the handle,
            lower-cased, with its ``@`` (``@somchai_88``), so that two reports
            of the same handle compare equal.
        region: The number's country (ISO 3166 alpha-2), None for a handle.
    """

    kind: Literal["phone", "telegram"]
    value: str
    region: str | None = None


_USERNAME = r"[a-zA-Z](?:[a-zA-Z0-9_]{3,30}[a-zA-Z0-9])"
_TELEGRAM_LINK = re.compile(
    rf"(?:https?://)?(?:www\.)?(?:t|telegram)\.(?:me|dog)/@?(?P<name>{_USERNAME})(?![\w/])",
    re.IGNORECASE,
)
_TELEGRAM_AT = re.compile(rf"(?<![\w@.])@(?P<name>{_USERNAME})(?![\w@])")
_TELEGRAM_LABEL = re.compile(
    rf"(?<![a-z])(?:telegram|tele|tg)\s*(?:id|username|user|handle|name)?\s*[:=]\s*@?"
    rf"(?P<name>{_USERNAME})(?!\w)",
    re.IGNORECASE,
)
#: t.me paths that are not users.
_TELEGRAM_RESERVED = frozenset(
    {"joinchat", "addstickers", "addemoji", "addlist", "addtheme", "share", "proxy", "socks"}
)
_PHONE_CANDIDATE = re.compile(r"(?:\+|(?<!\d))\d[\d\s().\-]{5,}\d(?!\d)")


def _phone(candidate: str, region: str | None) -> Contact | None:
    digits = re.sub(r"[^\d+]", "", candidate)
    attempts = [(candidate, region)]
    if not digits.startswith("+"):
        if digits.startswith("00"):
            attempts.append(("+" + digits[2:], None))
        attempts.append(("+" + digits, None))
    for number, hint in attempts:
        try:
            parsed = phonenumbers.parse(number, hint)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            return Contact("phone", e164, phonenumbers.region_code_for_number(parsed))
    return None


def parse_phone(text: str, default_region: str | None) -> Contact | None:
    """The missing person's phone number or Telegram handle.

    Numbers may be local ("081 234 5678" with region TH), international
    ("+855 12 345 678", "0066 81 234 5678", "855 12 345 678") and in native
    digits ("၀၉ ..."); only numbers ``phonenumbers`` finds valid are kept.
    Handles are "@name", "t.me/name", "https://t.me/name" or "telegram: name"
    (5-32 letters, digits or underscores, starting with a letter; an e-mail
    address is no handle).

    Args:
        text: The answer as written.
        default_region: ISO 3166 alpha-2 region for numbers without a country
            code (the reporter's own country, from their SMS number), or None.

    Returns:
        Whichever comes first in the text, a valid number or a handle; None if
        there is neither.
    """
    normalized = ascii_digits(text)
    found: list[tuple[int, Contact]] = []
    for regex in (_TELEGRAM_LINK, _TELEGRAM_AT, _TELEGRAM_LABEL):
        for match in regex.finditer(normalized):
            name = match.group("name").lower()
            if name not in _TELEGRAM_RESERVED:
                found.append((match.start(), Contact("telegram", "@" + name)))
                break
    region = default_region.upper() if default_region else None
    for match in _PHONE_CANDIDATE.finditer(normalized):
        contact = _phone(match.group(), region)
        if contact is not None:
            found.append((match.start(), contact))
            break
    if not found:
        return None
    return min(found, key=lambda item: item[0])[1]
