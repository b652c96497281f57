"""SMS segments: GSM-7 or UCS-2, how many segments, and the report per response and language."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.segments import count, encoding_of, fits
from bot.channels.sms_report import TARGET_SEGMENTS, measure
from bot.cli import main
from bot.i18n import available_languages
from bot.i18n.nlg import render, responses

THAI = "พวกเขายึดหนังสือเดินทางของฉันและไม่ยอมให้ฉันออกไปไหน"
BURMESE = "သူတို့က ကျွန်တော့်ပတ်စ်ပို့ကို ယူထားပြီး အပြင်ထွက်ခွင့်မပေးဘူး။"
ENGLISH = "They took my passport and they do not let me leave the building."


def of_length(sentence: str, length: int) -> str:
    """``sentence`` repeated and cut to ``length`` characters."""
    return (sentence * (length // len(sentence) + 1))[:length]


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_english_is_gsm7_160_in_one_sms_then_153_a_segment(length: int, segments: int) -> None:
    text = of_length(ENGLISH, length)
    found = count(text)
    assert (found.encoding, found.units, found.segments) == ("GSM-7", length, segments)


@pytest.mark.parametrize("sentence", [THAI, BURMESE])
@pytest.mark.parametrize(("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3)])
def test_thai_and_burmese_are_ucs2_70_in_one_sms_then_67_a_segment(
    sentence: str, length: int, segments: int
) -> None:
    text = of_length(sentence, length)
    found = count(text)
    assert (found.encoding, found.units, found.segments) == ("UCS-2", length, segments)


def test_a_burmese_sentence_takes_as_many_units_as_code_points() -> None:
    """Burmese vowel signs, asat and virama are characters of their own in UCS-2."""
    assert count(BURMESE).units == len(BURMESE) == 63  # 34 graphemes as a reader sees them
    assert count(BURMESE).segments == 1
    assert count(BURMESE + " " + BURMESE).segments == 2


@pytest.mark.parametrize("char", list("^{}\\[]~|€"))
def test_gsm_extension_characters_count_two(char: str) -> None:
    assert encoding_of(f"Price {char} 5") == "GSM-7"
    assert count(char * 80).units == 160 and count(char * 80).segments == 1
    assert count(char * 81).segments == 2


def test_an_extension_character_never_straddles_two_segments() -> None:
    text = "a" * 152 + "€" + "a" * 152  # 306 units: two full segments if it could be split
    assert count(text).units == 306
    assert count(text).segments == 3


def test_an_emoji_counts_two_units_and_never_straddles_two_segments() -> None:
    assert count("😀" * 35).units == 70 and count("😀" * 35).segments == 1
    text = "ก" * 66 + "😀" + "ก" * 66  # 134 units
    assert count(text).units == 134
    assert count(text).segments == 3


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Café crème, Ñandú", "UCS-2"),  # ú is not in the GSM alphabet
        ("Café crème, Ñoño, Øre, ÄÖÜ äöü ß", "GSM-7"),
        ("I’m here", "UCS-2"),  # a curly apostrophe
        ("I'm here", "GSM-7"),
        ("Xin chào", "GSM-7"),  # à is in the GSM alphabet...
        ("Cảm ơn", "UCS-2"),  # ... most Vietnamese letters are not
        ("Terima kasih", "GSM-7"),
        ("line one\nline two", "GSM-7"),
        ("", "GSM-7"),
    ],
)
def test_one_character_outside_the_gsm_alphabet_makes_the_whole_text_ucs2(
    text: str, encoding: str
) -> None:
    assert encoding_of(text) == encoding


def test_fits() -> None:
    assert fits(of_length(THAI, 201), 3)
    assert not fits(of_length(THAI, 202), 3)


# --- the responses on SMS ---------------------------------------------------------------------


def test_sms_uses_a_responses_sms_variation_and_other_channels_the_general_one() -> None:
    sms = render("utter_what_is_this", "en", "sms", {})["text"]
    general = render("utter_what_is_this", "en", "telegram", {})["text"]
    assert sms != general and count(sms).segments < count(general).segments
    assert render("utter_what_is_this", "en", "webchat", {})["text"] == general
    # The language menu's buttons cannot be tapped by SMS: the SMS text says what to do instead.
    assert render("utter_language_not_served", "en", "sms", {})["buttons"] == []
    assert render("utter_language_not_served", "en", "telegram", {})["buttons"]


@pytest.mark.parametrize("language", available_languages())
def test_every_response_fits_the_target_on_sms(language: str) -> None:
    over = {
        name: count(text).segments
        for name in responses()
        if not fits(text := render(name, language, "sms", {})["text"], TARGET_SEGMENTS)
    }
    assert not over, f"{language}: give these a shorter `channel: sms` variation: {over}"


def test_sms_report_writes_counts_per_response_and_language(tmp_path: Path) -> None:
    out = tmp_path / "sms-segments.md"
    assert main(["sms-report", "--output", str(out), "--target", "1"]) == 0
    report = out.read_text(encoding="utf-8")
    languages = available_languages()
    assert "| response | " + " | ".join(languages) + " |" in report
    assert len([line for line in report.splitlines() if line.startswith("| `utter_")]) == len(
        responses()
    )
    # Over the target of 1: flagged in the table and listed.
    handoff_family = count(render("utter_handoff_family", "en", "sms", {})["text"])
    assert handoff_family.segments == 2
    row = next(line for line in report.splitlines() if line.startswith("| `utter_handoff_family`"))
    assert row.split(" | ")[1] == "**2 G**"
    assert "- `utter_handoff_family` in `en`: 2 segments" in report
    greet = next(line for line in report.splitlines() if line.startswith("| `utter_greet`"))
    assert greet.split(" | ")[1] == "1 G"


def test_the_report_marks_what_is_not_translated_yet() -> None:
    cells = {(c.response, c.language): c for c in measure(("en", "th"))}
    assert cells[("utter_greet", "th")].translated
    assert cells[("utter_greet", "th")].segments.encoding == "UCS-2"
    assert all(c.translated for (_, language), c in cells.items() if language == "en")
