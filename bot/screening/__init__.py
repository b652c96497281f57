"""Screening: reads a message for forced-labour indicators, danger, language and reporter.

Used by ``action_screen`` (every message the bot sees), by the gateway and by
``beacon screen``. Nothing here is downloaded at run time: the patterns are
data files in the repository.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.screening.language import detect_language
from bot.screening.model import TIER_LABELS, get_model
from bot.screening.normalize import normalize
from bot.screening.patterns import LanguagePatterns, load_all, search
from bot.screening.types import (
    INDICATORS,
    QUALIFIERS,
    URGENCY_TIERS,
    Evidence,
    ScreeningContext,
    ScreeningResult,
    max_urgency,
    urgency_rank,
)
from bot.screening.urgency import classify

__all__ = [
    "INDICATORS",
    "QUALIFIERS",
    "URGENCY_TIERS",
    "ScreeningContext",
    "ScreeningResult",
    "accumulate",
    "detect_language",
    "max_urgency",
    "normalize",
    "screen",
    "urgency_rank",
    "warm_up",
]

#: Patterns of this language run on every message too: many workers write some English.
LINGUA_FRANCA = "en"
#: Languages so close that a message in one is screened with the other's patterns too.
CONFUSABLE = {"id": "ms", "ms": "id"}


def _reporter(text: str, languages: Iterable[str]) -> str:
    table = load_all()
    other = self_ = False
    for code in languages:
        patterns = table.get(code)
        if patterns is None:
            continue
        other = other or bool(patterns.reporter_other and patterns.reporter_other.search(text))
        self_ = self_ or bool(patterns.reporter_self and patterns.reporter_self.search(text))
    if other:
        return "other"
    return "self" if self_ else "unknown"


def screen(
    text: str, context: ScreeningContext | None = None, *, use_model: bool = True
) -> ScreeningResult:
    """Screens one message.

    Args:
        text: the message as the person wrote it (Zawgyi Burmese is converted).
        context: priors from the channel and the conversation.
        use_model: also consult the statistical model (the patterns always run).

    Returns:
        The language (with confidence), the indicators with the evidence that
        triggered them, the urgency tier and who is writing.
    """
    normalized = normalize(text)
    text = normalized.text
    language, confidence = detect_language(text, context)
    table = load_all()
    candidates = (language, CONFUSABLE.get(language), LINGUA_FRANCA)
    languages = [code for code in dict.fromkeys(candidates) if code in table]
    evidence: list[Evidence] = []
    suppressed: set[str] = set()
    for code in languages:
        found = search(text, table[code])
        evidence.extend(found.evidence)
        suppressed |= found.suppressed
    matched = {e.label for e in evidence}
    suppressed -= matched
    floor = "low"
    # The model reads no negation: where the patterns saw only negated or
    # distanced mentions, or the message negates something, it adds nothing
    # unless the patterns found a real indicator too.
    model = get_model() if use_model and text.strip() else None
    if model is not None and (
        not matched.isdisjoint(INDICATORS)
        or not (suppressed or any(_negates(text, table[code]) for code in languages))
    ):
        for label, probability in model.fired(text.lower()).items():
            if label in TIER_LABELS:
                floor = max_urgency(floor, "critical" if label == "critical" else "high")
            elif label not in matched and label not in suppressed:
                evidence.append(Evidence(label, 0, len(text), "", "model", probability))
    evidence.sort(key=lambda e: (e.start, e.label))
    indicators = tuple(i for i in INDICATORS if any(e.label == i for e in evidence))
    qualifiers = tuple(q for q in QUALIFIERS if any(e.label == q for e in evidence))
    return ScreeningResult(
        language=language,
        language_confidence=confidence,
        indicators=indicators,
        urgency=max_urgency(classify(indicators, qualifiers), floor),
        reporter=_reporter(text, languages),
        evidence=tuple(evidence),
        qualifiers=qualifiers,
        zawgyi=normalized.zawgyi,
    )


def warm_up() -> None:
    """Loads patterns, detectors and the model now, so that the first person waits for none."""
    screen("they took my passport")
    screen("ကယ်ပါ")


def _negates(text: str, patterns: LanguagePatterns) -> bool:
    cues = patterns.negation_anywhere
    return cues is not None and cues.search(text) is not None


def accumulate(
    previous_indicators: Iterable[str], previous_urgency: str | None, result: ScreeningResult
) -> tuple[list[str], str]:
    """A conversation's indicators and urgency after one more message.

    Indicators accumulate; urgency is the maximum seen and never drops.
    """
    merged = set(previous_indicators) | set(result.indicators)
    indicators = [i for i in INDICATORS if i in merged]
    return indicators, max_urgency(previous_urgency, result.urgency, classify(indicators))
