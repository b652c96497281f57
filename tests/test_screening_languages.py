"""Screening in all fourteen languages, on the labelled development split.

The development split (`data/eval/dev/`) may be used for tuning; the
held-apart test split is only read by `beacon eval`. These tests check the
patterns alone (no statistical model), so a language cannot pass by the model
remembering its training messages.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from bot.screening import INDICATORS, ScreeningContext, screen
from bot.screening.model import read_jsonl
from bot.screening.patterns import load_all
from bot.settings import ROOT

LANGUAGES = ("en", "id", "ms", "th", "my", "km", "lo", "vi", "tl", "zh", "bn", "tr", "pt", "ti")
DEV = ROOT / "data" / "eval" / "dev"


def dev(language: str) -> list[dict]:
    return read_jsonl([DEV / f"{language}.jsonl"])


def test_every_language_has_patterns_and_a_labelled_dev_split() -> None:
    assert set(LANGUAGES) <= set(load_all())
    for language in LANGUAGES:
        assert len(dev(language)) >= 30, language


@pytest.mark.parametrize("language", LANGUAGES)
def test_patterns_find_every_indicator_in_the_language(language: str) -> None:
    found: dict[str, bool] = defaultdict(bool)
    for row in dev(language):
        result = screen(row["text"], use_model=False)
        for indicator in row["indicators"]:
            found[indicator] |= indicator in result.indicators
    missing = [i for i in INDICATORS if not found[i]]
    assert not missing, f"{language}: no dev message with these indicators is caught: {missing}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_greetings_negations_and_news_raise_no_alarm(language: str) -> None:
    escalated = [
        row["text"]
        for row in dev(language)
        if row["urgency"] == "low"
        and screen(row["text"], use_model=False).urgency in ("high", "critical")
    ]
    assert not escalated, f"{language}: low messages screened urgent: {escalated}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_language_of_each_message_is_recognised(language: str) -> None:
    rows = dev(language)
    wrong = [r["text"] for r in rows if screen(r["text"], use_model=False).language != language]
    assert len(wrong) / len(rows) <= 0.1, f"{language}: {wrong}"


@pytest.mark.parametrize(
    ("text", "context", "expected"),
    [
        ("tolong", ScreeningContext(calling_code="60"), "ms"),
        ("tolong", ScreeningContext(calling_code="+62"), "id"),
        ("help", ScreeningContext(language_code="tl"), "tl"),
        ("ok", ScreeningContext(conversation_language="vi"), "vi"),
    ],
)
def test_short_messages_follow_the_priors(
    text: str, context: ScreeningContext, expected: str
) -> None:
    assert screen(text, context).language == expected


def test_malay_and_indonesian_are_told_apart() -> None:
    assert screen("saya nak balik tapi boss tak bagi, pasport dia simpan").language == "ms"
    assert screen("saya mau pulang tapi bos nggak ngizinin, paspor ditahan").language == "id"


def test_vietnamese_without_diacritics_is_vietnamese() -> None:
    result = screen("toi bi giu ho chieu, khong cho ve nha")
    assert result.language == "vi"
    assert "documents_retained" in result.indicators
