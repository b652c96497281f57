"""The urgency rules of ``domain.md``, written once.

* ``critical``: immediate danger to life or body now (a medical emergency,
  self-harm, a minor involved, a specific death threat, an escape under way, or
  an imminent sale, transfer, ransom deadline or beating).
* ``high``: held in forced labour now: something involuntary (confined, sold,
  forced to scam, deceived) or a menace (violence, threats, passport, debt,
  ransom). The ILO needs one of each; Beacon is conservative and escalates
  on either, because when unsure between two tiers it takes the higher.
* ``medium``: signs of exploitation without confinement, or a relative out of
  contact after a job abroad.
* ``low``: no indicator.
"""

from __future__ import annotations

from collections.abc import Iterable

CRITICAL_INDICATORS = frozenset({"medical_emergency", "self_harm", "minor"})
CRITICAL_QUALIFIERS = frozenset({"death_threat", "escape"})
IMMINENT_MAKES_CRITICAL = frozenset(
    {"sold_or_transferred", "ransom_demand", "violence", "threats", "isolation"}
)
HIGH_INDICATORS = frozenset(
    {
        "movement_restricted",
        "documents_retained",
        "debt_bondage",
        "forced_criminality",
        "sold_or_transferred",
        "ransom_demand",
        "violence",
        "threats",
    }
)


def classify(indicators: Iterable[str], qualifiers: Iterable[str] = ()) -> str:
    """Urgency tier for a set of indicators and qualifiers found together."""
    found = frozenset(indicators)
    quals = frozenset(qualifiers)
    if found & CRITICAL_INDICATORS or quals & CRITICAL_QUALIFIERS:
        return "critical"
    if "imminent" in quals and found & IMMINENT_MAKES_CRITICAL:
        return "critical"
    if found & HIGH_INDICATORS:
        return "high"
    if found or "lost_contact" in quals:
        return "medium"
    return "low"


def forced_to_scam(indicators: Iterable[str], reporter: str) -> bool:
    """Whether the person says they were forced to scam people (not a relative telling).

    Then they hear, once, that they are not in trouble with the hotline for it.
    """
    return "forced_criminality" in indicators and reporter != "other"
