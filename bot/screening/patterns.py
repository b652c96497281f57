"""Indicator patterns kept as data: one reviewed YAML file per language.

Each file under ``data/screening/`` holds, for one language, regular
expressions per indicator and qualifier, the negation cues, the cues of
distance ("I read in the news that ..."), the words that mark who is writing,
and the function words the language detector uses. Languages written without
spaces (th, my, km, lo, zh) match by substring; the others on word boundaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.screening.types import INDICATORS, QUALIFIERS, Evidence

PATTERN_DIR = Path(__file__).resolve().parent.parent.parent / "data" / "screening"
#: Clause ends: Latin and CJK punctuation, Thai ฯ, Burmese ၊ ။, Khmer ។ ៕, Ethiopic ። ፣ ፤,
#: Bengali । ॥, and the word "but" in a few languages.
CLAUSE_BREAK = re.compile(
    r"[.!?;,\n\u0e2f\u104a\u104b\u17d4\u17d5\u1362\u1363\u1364\u0964\u0965"
    r"\u3002\uff0c\uff01\uff1f]|\s(?:but|tapi|namun)\s"
)
NEGATION_WINDOW = 24


@dataclass(frozen=True)
class LanguagePatterns:
    """The compiled patterns of one language."""

    language: str
    spaced: bool
    labels: tuple[tuple[str, re.Pattern[str]], ...]
    negation: re.Pattern[str] | None
    negation_anywhere: re.Pattern[str] | None
    distancing: re.Pattern[str] | None
    reporter_other: re.Pattern[str] | None
    reporter_self: re.Pattern[str] | None
    function_words: frozenset[str]


def _alternation(items: list[str], spaced: bool) -> re.Pattern[str] | None:
    if not items:
        return None
    body = "|".join(f"(?:{p})" for p in items)
    if spaced:
        body = rf"(?<![\w])(?:{body})(?![\w])"
    return re.compile(body, re.IGNORECASE)


def _compile(data: dict[str, Any]) -> LanguagePatterns:
    language = str(data["language"])
    spaced = bool(data.get("spaced", True))
    labels: list[tuple[str, re.Pattern[str]]] = []
    for group in ("indicators", "qualifiers"):
        known = INDICATORS if group == "indicators" else QUALIFIERS
        for label, patterns in (data.get(group) or {}).items():
            if label not in known:
                raise ValueError(f"{language}: unknown {group[:-1]} {label!r}")
            compiled = _alternation([str(p) for p in patterns], spaced)
            if compiled is not None:
                labels.append((label, compiled))
    return LanguagePatterns(
        language=language,
        spaced=spaced,
        labels=tuple(labels),
        negation=_alternation(list(data.get("negation") or []), spaced),
        negation_anywhere=_alternation(
            [str(p).removesuffix("$") for p in data.get("negation") or []], spaced
        ),
        distancing=_alternation(list(data.get("distancing") or []), spaced),
        reporter_other=_alternation(list(data.get("reporter_other") or []), spaced),
        reporter_self=_alternation(list(data.get("reporter_self") or []), spaced),
        function_words=frozenset(str(w).lower() for w in data.get("function_words") or []),
    )


@lru_cache(maxsize=1)
def load_all(directory: Path = PATTERN_DIR) -> dict[str, LanguagePatterns]:
    """Every language's patterns, keyed by language code."""
    result: dict[str, LanguagePatterns] = {}
    for path in sorted(directory.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        patterns = _compile(data)
        result[patterns.language] = patterns
    return result


def _clause_start(text: str, pos: int) -> int:
    start = 0
    for m in CLAUSE_BREAK.finditer(text, 0, pos):
        start = m.end()
    return start


def _sentence(text: str, pos: int) -> str:
    start = _clause_start(text, pos)
    end_match = CLAUSE_BREAK.search(text, pos)
    return text[start : end_match.start() if end_match else len(text)]


@dataclass(frozen=True)
class Found:
    """Pattern matches in a text: kept evidence, and labels whose only matches were dropped."""

    evidence: list[Evidence]
    suppressed: set[str]


def search(text: str, patterns: LanguagePatterns) -> Found:
    """Spans of indicators and qualifiers in ``text``, without negated or distanced ones.

    A match is dropped when a negation cue stands shortly before it in the same
    clause ("they did NOT take my passport"), or when its clause reports
    something read or heard rather than lived ("I read in the news that ...").
    Labels that matched only in such places are returned as ``suppressed``, so
    that the statistical model does not bring them back.
    """
    evidence: list[Evidence] = []
    suppressed: set[str] = set()
    for label, pattern in patterns.labels:
        for m in pattern.finditer(text):
            clause_start = _clause_start(text, m.start())
            window = text[max(clause_start, m.start() - NEGATION_WINDOW) : m.start()]
            negated = patterns.negation is not None and patterns.negation.search(window)
            distanced = patterns.distancing is not None and patterns.distancing.search(
                _sentence(text, m.start())
            )
            if negated or distanced:
                suppressed.add(label)
                continue
            evidence.append(Evidence(label, m.start(), m.end(), m.group(0)))
    return Found(evidence, suppressed - {e.label for e in evidence})
