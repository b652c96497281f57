"""Text helpers shared by the family report's parsers (``actions/report_*``).

How text is read: every answer is first *folded*: native digits (Thai, Lao,
Khmer, Burmese, Bengali, full-width ...) become ASCII digits, Latin letters lose
their accents and case (Vietnamese is often typed without diacritics, so
"không biết" and "khong biet" read the same), zero-width characters go.
Thai, Lao, Khmer, Burmese and Chinese are written without spaces, so their
words are matched as substrings, never as whitespace tokens, and a match that
would end in the middle of a syllable (followed by a combining vowel or tone
mark) is refused. Chinese numerals up to 99 ("三个月前", "十七岁", "二〇二五年")
are read as digits.

Word lists (``data/report/``) are folded the same way before they are turned
into patterns, so they can be written as people type them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: The languages Beacon serves (``/work/shared/domain.md``); the order in which
#: word lists are tried after the answer's own language.
LANGUAGES = ("en", "id", "ms", "th", "my", "km", "lo", "vi", "tl", "zh", "bn", "tr", "pt", "ti")
#: Languages written without spaces between words.
UNSPACED = frozenset({"th", "lo", "km", "my", "zh"})
#: Languages written in Latin letters.
LATIN = frozenset({"en", "id", "ms", "vi", "tl", "pt", "tr"})
#: What surrounds an answer without being part of it.
TRIM = " \t\r\n.,!?;:~…'\"()[]"

# ---------------------------------------------------------------------------
# Folding
# ---------------------------------------------------------------------------

_ZERO_WIDTH = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff")
_CHAR_MAP = {
    "\u2019": "'",
    "\u2018": "'",
    "\u02bc": "'",
    "\u3002": ".",
    "\u3001": ",",
    "\u2013": "-",
    "\u2014": "-",
    "\u301c": "~",
}
_LATIN_SPECIAL = {"đ": "d", "ð": "d", "ı": "i", "ł": "l", "ø": "o", "æ": "ae", "œ": "oe"}
_MYANMAR_WA = "\u101d"  # the letter ဝ, often typed for the digit zero ၀

#: Combining vowel and tone marks of the scripts written without spaces (and
#: Bengali): a word match followed by one of these ends inside a syllable.
MARK = (
    "[\u0e31\u0e34-\u0e3a\u0e47-\u0e4e"  # Thai
    "\u0eb1\u0eb4-\u0ebc\u0ec8-\u0ecd"  # Lao
    "\u17b4-\u17d3\u17dd"  # Khmer
    "\u102b-\u103e\u1056-\u1059\u105e-\u1060\u1062-\u1064\u1067-\u106d"
    "\u1071-\u1074\u1082-\u108d\u108f\u109a-\u109d"  # Myanmar
    "\u0981-\u0983\u09bc\u09be-\u09cd\u09d7]"  # Bengali
)
BENGALI = "\u0980-\u09ff"
ETHIOPIC = "\u1200-\u137f"
_HAN = re.compile("[\u3400-\u9fff]")


def _digit_beside(text: str, i: int) -> bool:
    return any(
        0 <= j < len(text) and unicodedata.decimal(text[j], None) is not None
        for j in (i - 1, i + 1)
    )


def fold_map(text: str) -> tuple[str, list[int]]:
    """Fold ``text`` (see the module docstring); also where each character came from."""
    out: list[str] = []
    where: list[int] = []
    latin = False
    for i, ch in enumerate(text):
        if ch in _ZERO_WIDTH:
            continue
        if ch.isascii():
            piece = ch.lower()
            latin = ch.isalpha()
        else:
            digit = unicodedata.decimal(ch, None)
            if digit is None and ch == _MYANMAR_WA and _digit_beside(text, i):
                digit = 0
            if digit is not None:
                piece = str(digit)
                latin = False
            elif latin and unicodedata.combining(ch):
                continue
            elif ch in _CHAR_MAP:
                piece = _CHAR_MAP[ch]
                latin = False
            else:
                piece = unicodedata.normalize("NFKC", ch)
                if any("LATIN" in unicodedata.name(c, "") for c in piece):
                    decomposed = unicodedata.normalize("NFKD", piece.casefold())
                    piece = "".join(
                        _LATIN_SPECIAL.get(c, c) for c in decomposed if not unicodedata.combining(c)
                    )
                    latin = True
                else:
                    piece = piece.casefold()
                    latin = False
        for c in piece:
            out.append(c)
            where.append(i)
    return "".join(out), where


def fold(text: str) -> str:
    """``text`` folded (see the module docstring)."""
    return fold_map(text)[0]


_ZH_DIGITS = {
    "〇": 0,
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "兩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_ZH_RUN = re.compile("[〇零一二两兩三四五六七八九十]+")


def _zh_numerals(text: str) -> str:
    """Chinese numerals up to 99, and digit strings ("二〇二五"), as ASCII digits."""
    if not _HAN.search(text):
        return text

    def convert(match: re.Match[str]) -> str:
        run = match.group()
        if "十" not in run:
            return "".join(str(_ZH_DIGITS[c]) for c in run)
        tens, _, units = run.partition("十")
        if len(tens) > 1 or len(units) > 1 or "十" in units:
            return run
        return str((_ZH_DIGITS[tens] if tens else 1) * 10 + (_ZH_DIGITS[units] if units else 0))

    return _ZH_RUN.sub(convert, text)


def prepare(text: str) -> str:
    """``text`` folded, with Chinese numerals as ASCII digits: how parsers read an answer."""
    return _zh_numerals(fold(text))


def base_language(language: str | None) -> str:
    """``"pt"`` for ``"pt_BR"``, ``"pt-BR"`` or ``"PT"``; ``""`` for None."""
    return (language or "").replace("_", "-").split("-")[0].lower()


def language_order(language: str | None) -> list[str]:
    """The answer's language first (Indonesian and Malay together), then the rest."""
    lang = base_language(language)
    first = {"id": ["id", "ms"], "ms": ["ms", "id"]}.get(lang, [lang] if lang in LANGUAGES else [])
    return first + [code for code in LANGUAGES if code not in first]


def ascii_digits(text: str) -> str:
    """``text`` with native digits as ASCII digits, otherwise only NFKC-normalised."""
    out = []
    for i, ch in enumerate(text):
        digit = unicodedata.decimal(ch, None)
        if digit is None and ch == _MYANMAR_WA and _digit_beside(text, i):
            digit = 0
        out.append(str(digit) if digit is not None else unicodedata.normalize("NFKC", ch))
    return "".join(out)


# ---------------------------------------------------------------------------
# Word lists as patterns
# ---------------------------------------------------------------------------


def fold_all(words: Iterable[str]) -> list[str]:
    """Each non-empty word of a word list, folded."""
    return [fold(w) for w in words if w]


def word_pattern(word: str) -> str:
    """A folded word or phrase as a regex: flexible spaces, optional apostrophes."""
    parts = [re.escape(p) for p in word.split()]
    body = r"\s*".join(parts)
    return body.replace("'", "'?")


def bounded(word: str) -> str:
    """``word_pattern`` with the boundaries its script needs."""
    body = word_pattern(word)
    first, last = word[0], word[-1]
    if first.isascii() and first.isalnum():
        body = r"(?<![a-z0-9])" + body
    elif re.match(f"[{BENGALI}{ETHIOPIC}]", first):
        body = f"(?<![{BENGALI}{ETHIOPIC}])" + body
    if last.isascii() and last.isalnum():
        body += r"(?![a-z0-9])"
    elif re.match(f"[{BENGALI}{ETHIOPIC}]", last):
        body += f"(?![{BENGALI}{ETHIOPIC}])"
    elif not last.isascii():
        body += f"(?!{MARK})"
    return body


def alternation(words: Iterable[str]) -> str:
    """The words as one regex alternation, longest first, each ``bounded``."""
    return "|".join(bounded(w) for w in sorted(set(words), key=len, reverse=True))


def phrase_regex(words: Iterable[str]) -> re.Pattern[str]:
    """The compiled ``alternation`` of ``words``."""
    return re.compile(alternation(words))
