"""The vocabulary of screening: indicator ids, urgency tiers and results (a contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INDICATORS: tuple[str, ...] = (
    "vulnerability_abuse",
    "deception",
    "movement_restricted",
    "isolation",
    "violence",
    "threats",
    "documents_retained",
    "wages_withheld",
    "debt_bondage",
    "abusive_conditions",
    "excessive_hours",
    "forced_criminality",
    "sold_or_transferred",
    "ransom_demand",
    "medical_emergency",
    "self_harm",
    "minor",
)

#: Cues that change urgency without being indicators themselves.
QUALIFIERS: tuple[str, ...] = ("imminent", "death_threat", "escape", "lost_contact")

URGENCY_TIERS: tuple[str, ...] = ("low", "medium", "high", "critical")
REPORTERS: tuple[str, ...] = ("self", "other", "unknown")


def urgency_rank(tier: str | None) -> int:
    """Position of a tier in ``URGENCY_TIERS`` (unknown or empty counts as ``low``)."""
    return URGENCY_TIERS.index(tier) if tier in URGENCY_TIERS else 0


def max_urgency(*tiers: str | None) -> str:
    """The highest of the given tiers."""
    return URGENCY_TIERS[max((urgency_rank(t) for t in tiers), default=0)]


@dataclass(frozen=True)
class ScreeningContext:
    """Priors for a message: what the channel and the conversation already tell.

    Attributes:
        language_code: Telegram's ``language_code`` of the user (``"th"``, ``"id-ID"``).
        calling_code: the SMS sender's country calling code, digits only (``"62"``).
        conversation_language: the language the conversation already uses.
    """

    language_code: str | None = None
    calling_code: str | None = None
    conversation_language: str | None = None


@dataclass(frozen=True)
class Evidence:
    """Why an indicator or qualifier fired.

    ``source`` is ``"pattern"`` (``start``/``end`` delimit the words that
    matched, in the normalised text) or ``"model"`` (the statistical model;
    the span is the whole message and ``score`` its probability).
    """

    label: str
    start: int
    end: int
    text: str
    source: str = "pattern"
    score: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "source": self.source,
            "score": round(self.score, 3),
        }


@dataclass(frozen=True)
class ScreeningResult:
    """What screening found in one message."""

    language: str
    language_confidence: float
    indicators: tuple[str, ...]
    urgency: str
    reporter: str
    evidence: tuple[Evidence, ...] = field(default=())
    qualifiers: tuple[str, ...] = field(default=())
    zawgyi: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "language_confidence": round(self.language_confidence, 3),
            "indicators": list(self.indicators),
            "qualifiers": list(self.qualifiers),
            "urgency": self.urgency,
            "reporter": self.reporter,
            "zawgyi": self.zawgyi,
            "evidence": [e.as_dict() for e in self.evidence],
        }
