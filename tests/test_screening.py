"""Screening as a responder relies on it: indicators, urgency, language, reporter."""

from __future__ import annotations

import pytest

from bot.screening import ScreeningContext, accumulate, screen
from bot.screening.language import detect_language, follow_language
from bot.screening.urgency import classify


def test_the_urgent_message_is_critical_with_its_evidence() -> None:
    text = "help they took my passport and beat me, I am bleeding"
    result = screen(text)
    assert result.urgency == "critical"
    assert set(result.indicators) == {"documents_retained", "violence", "medical_emergency"}
    assert result.reporter == "self"
    spans = {e.label: text[e.start : e.end] for e in result.evidence}
    assert spans["documents_retained"] == "took my passport"
    assert spans["medical_emergency"] == "I am bleeding"


@pytest.mark.parametrize(
    "text",
    [
        "they did not take my passport",
        "I read in the news that workers are beaten",
        "hello, what is this service?",
        "ไม่ได้ยึดพาสปอร์ต",
        "paspor saya tidak ditahan",
    ],
)
def test_negated_distanced_and_harmless_messages_raise_nothing(text: str) -> None:
    result = screen(text)
    assert result.indicators == ()
    assert result.urgency == "low"


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        (
            "tolong bang, paspor saya ditahan bos dan saya dipukulin, gak boleh pulang",
            "id",
            {"documents_retained", "violence", "movement_restricted"},
        ),
        (
            "ช่วยด้วย เขายึดพาสปอร์ตและซ้อมผม เลือดออก",
            "th",
            {"documents_retained", "violence", "medical_emergency"},
        ),
        (
            "I cannot leave, they force us to scam people",
            "en",
            {"movement_restricted", "forced_criminality"},
        ),
    ],
)
def test_indicators_in_each_served_language(text: str, language: str, expected: set[str]) -> None:
    result = screen(text)
    assert result.language == language
    assert expected <= set(result.indicators)


def test_a_relative_writing_is_reported_as_other_and_out_of_contact_is_medium() -> None:
    result = screen("my son went to Cambodia for a job and stopped answering")
    assert result.reporter == "other"
    assert result.urgency == "medium"


@pytest.mark.parametrize(
    ("indicators", "qualifiers", "tier"),
    [
        ((), (), "low"),
        (("deception",), (), "medium"),
        (("documents_retained",), (), "high"),
        (("forced_criminality",), (), "high"),
        (("medical_emergency",), (), "critical"),
        (("minor",), (), "critical"),
        (("sold_or_transferred",), ("imminent",), "critical"),
        (("threats",), ("death_threat",), "critical"),
        ((), ("escape",), "critical"),
        ((), ("lost_contact",), "medium"),
    ],
)
def test_urgency_rules_follow_the_domain_notes(
    indicators: tuple[str, ...], qualifiers: tuple[str, ...], tier: str
) -> None:
    assert classify(indicators, qualifiers) == tier


def test_conversation_urgency_never_drops_and_indicators_accumulate() -> None:
    first = screen("they took my passport")
    indicators, urgency = accumulate([], None, first)
    assert urgency == "high"
    later = screen("thank you")
    indicators, urgency = accumulate(indicators, urgency, later)
    assert urgency == "high"
    assert indicators == ["documents_retained"]


def test_script_decides_the_language() -> None:
    assert detect_language("สวัสดีค่ะ")[0] == "th"
    assert detect_language("မင်္ဂလာပါ")[0] == "my"
    assert detect_language("សួស្តី")[0] == "km"


def test_short_messages_fall_back_on_the_priors() -> None:
    assert detect_language("tolong", ScreeningContext(calling_code="62"))[0] == "id"
    assert detect_language("ok", ScreeningContext(language_code="th-TH"))[0] == "th"
    assert detect_language("ok", ScreeningContext(conversation_language="id"))[0] == "id"


def test_a_thai_conversation_stays_thai_when_the_person_types_yes() -> None:
    result = screen("yes")
    assert follow_language("th", "yes", result) == "th"
    switched = screen("can you please help me with this, I need to talk")
    assert (
        follow_language("th", "can you please help me with this, I need to talk", switched) == "en"
    )


@pytest.mark.parametrize("mark", ["।", "។", "።", "။"])
def test_a_clause_ends_at_the_full_stop_of_each_script(mark: str) -> None:
    result = screen(f"I read in the news that workers are beaten{mark} now they beat me too")
    assert "violence" in result.indicators
    assert [e.text for e in result.evidence if e.label == "violence"] == ["beat me"]
