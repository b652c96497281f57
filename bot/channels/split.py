"""Splitting a long message into parts a channel accepts, without breaking a letter.

Telegram takes at most 4,096 characters per message, counted the way
JavaScript counts them: in UTF-16 code units (an emoji outside the Basic
Multilingual Plane counts two). A longer text is sent as several messages, in
order, cut where a reader expects a break: between paragraphs, then lines,
then sentences, then words.

Thai, Lao, Khmer, Burmese and Chinese put no spaces between words, so a long
run of them may have to be cut anywhere. Such a cut is never made inside a
user-perceived character (an extended grapheme cluster: a Thai consonant with
its tone mark, an emoji with its modifiers) nor inside a syllable that the
grapheme rules alone would break: after a Burmese or Khmer stacking sign
(virama ``္``, coeng ``្``), before a Burmese consonant that an asat ``်`` or
a virama kills or stacks, before a dependent vowel sign, or after a Thai or
Lao vowel written before its consonant.

:class:`SplitSender` sends the parts in order and, when a later part fails,
remembers the parts that went out, so that the relay's retry sends only the
rest and the person never reads a part twice.
"""

from __future__ import annotations

import hashlib
import time
import unicodedata
from collections.abc import Awaitable, Callable

import regex

GRAPHEME = regex.compile(r"\X")
#: A sentence ends after one of these (followed by a space, or at once for the
#: scripts whose full stop needs none: Burmese ``။``, Khmer ``។``, CJK ``。``).
SENTENCE_ENDS = frozenset(".!?…")
SENTENCE_ENDS_NO_SPACE = frozenset("။၊។៕。！？፡፧")
#: Signs that join the next consonant to the one before (never cut after them).
STACKING = frozenset("\u1039\u17d2\u0e3a")
#: Signs that make the consonant before them part of the previous syllable.
KILLERS = frozenset("\u103a\u1039")
#: Thai and Lao vowels written before the consonant they follow in speech.
LEADING_VOWELS = frozenset("\u0e40\u0e41\u0e42\u0e43\u0e44\u0ec0\u0ec1\u0ec2\u0ec3\u0ec4")
JOINERS = frozenset("\u200c\u200d")


def utf16_len(text: str) -> int:
    """The length of ``text`` the way Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _safe(text: str, i: int) -> bool:
    """Whether cutting ``text`` before index ``i`` leaves every syllable whole."""
    before, after = text[i - 1], text[i]
    if before in STACKING or before in LEADING_VOWELS or before in JOINERS or after in JOINERS:
        return False
    if unicodedata.category(after).startswith("M"):
        return False  # a vowel sign or tone mark belongs to the consonant before it
    # A Burmese consonant followed by asat or virama closes (or stacks on) the syllable before.
    return not (i + 1 < len(text) and text[i + 1] in KILLERS)


def _boundaries(text: str, end: int) -> list[int]:
    """Indices in (0, ``end``] where ``text`` may be cut, in increasing order."""
    cuts = []
    position = 0
    for match in GRAPHEME.finditer(text, 0, len(text)):
        position = match.end()
        if position > end:
            break
        if position == len(text) or _safe(text, position):
            cuts.append(position)
    return cuts


def _fits(text: str, limit: int) -> int:
    """The largest index ``end`` such that ``text[:end]`` is at most ``limit`` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _kind(text: str, cut: int) -> int:
    """How good a cut before ``cut`` is: 4 paragraph, 3 line, 2 sentence, 1 space, 0 other."""
    before = text[:cut]
    stripped = before.rstrip(" \t")
    if before.endswith("\n\n") or stripped.endswith("\n\n"):
        return 4
    if before.endswith("\n") or stripped.endswith("\n"):
        return 3
    if stripped and stripped[-1] in SENTENCE_ENDS_NO_SPACE:
        return 2
    if before != stripped and stripped and stripped[-1] in SENTENCE_ENDS:
        return 2
    if before and before[-1].isspace():
        return 1
    return 0


def _cut(text: str, limit: int) -> int:
    """Where to cut ``text`` (longer than ``limit``) so that the head fits."""
    end = _fits(text, limit)
    cuts = _boundaries(text, end)
    if not cuts:
        return max(1, end)  # one "character" longer than the limit: cut it anyway
    # The best kind of break that still fills at least half a message.
    floor = end // 2
    best = max(cuts)
    best_kind = -1
    for cut in reversed(cuts):
        if cut < floor:
            break
        kind = _kind(text, cut)
        if kind > best_kind:
            best, best_kind = cut, kind
            if kind == 4:
                break
    return best


def split_text(text: str, limit: int = 4096) -> list[str]:
    """``text`` as parts of at most ``limit`` UTF-16 code units each, in order.

    Whitespace at a cut is dropped (Telegram trims it anyway); nothing else is
    lost or reordered. An empty or blank text gives no part.
    """
    rest = text.strip()
    parts: list[str] = []
    while utf16_len(rest) > limit:
        cut = _cut(rest, limit)
        head = rest[:cut].rstrip()
        if head:
            parts.append(head)
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


#: Sends one part (``last`` is True for the final one); returns the channel's id for it.
SendPart = Callable[[str, bool], Awaitable[str]]


class SplitSender:
    """Sends a text as parts of at most ``limit`` units; a retry sends only the missing parts.

    When a part fails, the ids of the parts before it are kept (for ``ttl_s``
    seconds, in memory) under the address and text; the next :meth:`send` of
    the same text to the same address starts at the part that failed.
    """

    def __init__(self, limit: int, ttl_s: float = 6 * 3600.0) -> None:
        self.limit = limit
        self.ttl_s = ttl_s
        self._partial: dict[str, tuple[float, list[str]]] = {}

    async def send(self, address: str, text: str, send_part: SendPart) -> str:
        """Sends the parts of ``text`` not sent yet, in order; returns the last part's id.

        Raises:
            ValueError: ``text`` is blank.
            Exception: what ``send_part`` raised (the parts before it are remembered).
        """
        return (await self.send_parts(address, text, send_part))[-1]

    async def send_parts(self, address: str, text: str, send_part: SendPart) -> list[str]:
        """Sends the parts of ``text`` not sent yet, in order; returns every part's id.

        Raises:
            ValueError: ``text`` is blank.
            Exception: what ``send_part`` raised (the parts before it are remembered).
        """
        parts = split_text(text, self.limit)
        if not parts:
            raise ValueError("nothing to send")
        key = hashlib.sha256(f"{address}\0{text}".encode()).hexdigest()
        now = time.monotonic()
        for old in [k for k, (at, _) in self._partial.items() if now - at > self.ttl_s]:
            del self._partial[old]
        done = list(self._partial.pop(key, (0.0, []))[1])
        for index, part in enumerate(parts):
            if index < len(done):
                continue  # went out before a later part failed
            try:
                done.append(await send_part(part, index == len(parts) - 1))
            except Exception:
                if done:
                    self._partial[key] = (time.monotonic(), done)
                raise
        return done
