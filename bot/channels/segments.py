"""How many SMS segments a text takes, and in which encoding.

An SMS carries 140 bytes. A text written only with the GSM 03.38 alphabet
(GSM-7: Latin letters, digits, common punctuation, a few accented letters and
Greek capitals) is packed in 7-bit units: 160 of them in a single SMS. The
characters of the GSM extension table (``^ { } [ ] ~ | \\ €`` and form feed)
take two units each (an escape, then the character). Any other character, one
Thai letter or one curly quote, turns the whole text into UCS-2: 70 UTF-16
code units in a single SMS, an emoji outside the Basic Multilingual Plane
counting two.

A longer text is sent as a concatenated SMS whose segments each lose room to
a header: 153 GSM-7 units or 67 UTF-16 code units per segment. A segment never
ends between the two units of an extension character or of a surrogate pair:
the character moves to the next segment whole, as carriers' encoders do.

The counts assume Twilio's Smart Encoding is off (it would replace some
Unicode punctuation by GSM look-alikes and so could only lower them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[]~|€\f")

Encoding = Literal["GSM-7", "UCS-2"]

#: Units in a single SMS, and in each segment of a concatenated one.
SINGLE = {"GSM-7": 160, "UCS-2": 70}
MULTI = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class Segments:
    """The encoding of a text, its length in that encoding's units, and its segments."""

    encoding: Encoding
    units: int
    segments: int


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 alphabet (basic or extension)."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def encoding_of(text: str) -> Encoding:
    """``GSM-7`` when the whole text fits the GSM alphabet, else ``UCS-2``."""
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def _unit_widths(text: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if ch in GSM_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def count(text: str) -> Segments:
    """The segments ``text`` takes as one SMS (an empty text is one empty segment)."""
    encoding = encoding_of(text)
    widths = _unit_widths(text, encoding)
    units = sum(widths)
    if units <= SINGLE[encoding]:
        return Segments(encoding, units, 1)
    room = MULTI[encoding]
    segments, used = 1, 0
    for width in widths:
        if used + width > room:  # a two-unit character never straddles two segments
            segments += 1
            used = 0
        used += width
    return Segments(encoding, units, segments)


def fits(text: str, max_segments: int) -> bool:
    """Whether ``text`` takes at most ``max_segments`` segments."""
    return count(text).segments <= max_segments
