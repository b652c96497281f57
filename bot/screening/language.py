"""Language identification for the fourteen languages Beacon serves.

1. The script decides where it can: Thai, Burmese, Khmer, Lao, Bengali,
   Ethiopic (Tigrinya) and Han (Chinese).
2. Latin-script text is scored by an offline statistical detector (``lingua``,
   its models ship in the wheel) restricted to Beacon's Latin-script languages,
   combined with each language's distinctive function words from the pattern
   files: this is what tells Malay from Indonesian and recognises Vietnamese
   typed without diacritics, where the detector alone fails.
3. Short or ambiguous messages ("help", "tolong") fall back on the priors: the
   conversation's language, Telegram's ``language_code``, the SMS sender's
   calling code.

Text is normalised first (:mod:`bot.screening.normalize`), so Zawgyi Burmese
arrives here as Unicode.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from bot.screening.patterns import load_all
from bot.screening.types import ScreeningContext, ScreeningResult

DEFAULT_LANGUAGE = "en"

SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0E00, 0x0E7F, "th"),
    (0x1000, 0x109F, "my"),
    (0xAA60, 0xAA7F, "my"),
    (0x1780, 0x17FF, "km"),
    (0x19E0, 0x19FF, "km"),
    (0x0E80, 0x0EFF, "lo"),
    (0x0980, 0x09FF, "bn"),
    (0x1200, 0x139F, "ti"),
    (0x2D80, 0x2DDF, "ti"),
    (0x4E00, 0x9FFF, "zh"),
    (0x3400, 0x4DBF, "zh"),
)

#: Country calling code -> most likely language of a sender from there.
CALLING_CODES: dict[str, str] = {
    "62": "id",
    "60": "ms",
    "66": "th",
    "95": "my",
    "855": "km",
    "856": "lo",
    "84": "vi",
    "63": "tl",
    "86": "zh",
    "886": "zh",
    "852": "zh",
    "880": "bn",
    "90": "tr",
    "55": "pt",
    "291": "ti",
    "44": "en",
    "1": "en",
    "254": "en",
    "256": "en",
    "91": "en",
    "94": "en",
}

WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _script_language(text: str) -> tuple[str | None, float]:
    counts: dict[str, int] = {}
    letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        cp = ord(ch)
        for lo, hi, lang in SCRIPT_RANGES:
            if lo <= cp <= hi:
                counts[lang] = counts.get(lang, 0) + 1
                break
    if not counts or letters == 0:
        return None, 0.0
    lang, n = max(counts.items(), key=lambda kv: kv[1])
    share = n / letters
    # Code-mixed messages ("WhatsApp group এ ad দিছে") are the non-Latin language.
    return (lang, min(0.99, 0.6 + share / 2)) if share >= SCRIPT_SHARE else (None, 0.0)


def _strip_marks(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))


LATIN_LANGUAGES: dict[str, str] = {
    "en": "ENGLISH",
    "id": "INDONESIAN",
    "ms": "MALAY",
    "vi": "VIETNAMESE",
    "tl": "TAGALOG",
    "tr": "TURKISH",
    "pt": "PORTUGUESE",
}
#: How much the function words weigh against the statistical detector.
WORD_WEIGHT = 2.0
PRIOR_BONUS = 0.15
SHORT_MESSAGE_WORDS = 3
SCRIPT_SHARE = 0.15


@lru_cache(maxsize=1)
def _detector() -> Any:
    from lingua import Language, LanguageDetectorBuilder

    languages = [getattr(Language, name) for name in LATIN_LANGUAGES.values()]
    return LanguageDetectorBuilder.from_languages(*languages).build()


_CODE_OF_NAME = {name: code for code, name in LATIN_LANGUAGES.items()}


def _statistical_scores(text: str) -> dict[str, float]:
    return {
        _CODE_OF_NAME[value.language.name]: float(value.value)
        for value in _detector().compute_language_confidence_values(text)
        if value.language.name in _CODE_OF_NAME
    }


def _word_scores(words: list[str]) -> dict[str, float]:
    """Share of ``words`` in each language's function words (Banglish included)."""
    scores: dict[str, float] = {}
    for code, patterns in load_all().items():
        if patterns.function_words:
            hits = sum(1 for w in words if w in patterns.function_words)
            if hits:
                scores[code] = hits / len(words)
    return scores


def _prior(context: ScreeningContext | None) -> str | None:
    if context is None:
        return None
    if context.conversation_language:
        return context.conversation_language
    if context.language_code:
        return context.language_code.split("-")[0].split("_")[0].lower()
    if context.calling_code:
        return CALLING_CODES.get(context.calling_code.lstrip("+"))
    return None


def detect_language(text: str, context: ScreeningContext | None = None) -> tuple[str, float]:
    """The language of (normalised) ``text`` and a confidence in [0, 1]."""
    lang, confidence = _script_language(text)
    if lang is not None:
        return lang, confidence
    prior = _prior(context)
    raw_words = WORD.findall(text.lower())
    if not raw_words:
        return (prior, 0.5) if prior else (DEFAULT_LANGUAGE, 0.2)
    bare = [_strip_marks(w) for w in raw_words]
    words = raw_words + [b for w, b in zip(raw_words, bare, strict=True) if b != w]
    statistical = _statistical_scores(text)
    lexical = _word_scores(words)
    scores = {
        code: statistical.get(code, 0.0) + WORD_WEIGHT * lexical.get(code, 0.0)
        for code in {*LATIN_LANGUAGES, *lexical}
    }
    if prior in scores:
        scores[prior] += PRIOR_BONUS
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best, top = ranked[0]
    margin = top - ranked[1][1]
    confidence = max(0.0, min(0.99, 0.5 * min(top, 1.0) + margin))
    # "help", "ok", "tolong": English words are everyone's, and one or two
    # words rarely outweigh what the channel and the conversation know.
    short = prior is not None and len(raw_words) < SHORT_MESSAGE_WORDS and best != prior
    if short and (best == "en" or prior not in scores or scores[str(prior)] >= 0.5 * top):
        return str(prior), 0.6
    return best, confidence


#: Below this confidence, or with fewer words than this, a message does not switch language.
SWITCH_CONFIDENCE = 0.75
SWITCH_MIN_WORDS = 3


def follow_language(previous: str | None, text: str, result: ScreeningResult) -> str:
    """The conversation's language after one more message.

    A conversation keeps its language unless the new message clearly says
    otherwise: a different script, or enough words in another language. A Thai
    speaker who types "ok" or "yes" is still answered in Thai.
    """
    if previous is None or previous == result.language:
        return result.language
    script_language, _ = _script_language(text)
    if script_language is not None and script_language == result.language:
        return result.language
    words = len(WORD.findall(text))
    if result.language_confidence >= SWITCH_CONFIDENCE and words >= SWITCH_MIN_WORDS:
        return result.language
    return previous
