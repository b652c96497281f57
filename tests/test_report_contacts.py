"""How to reach the missing person (issue 7): phone numbers and Telegram handles."""

from __future__ import annotations

import pytest

from actions.report_contacts import Contact, parse_phone

# --- phones and Telegram handles ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "region", "e164", "country"),
    [
        ("+855 12 345 678", None, "+85512345678", "KH"),
        ("012 345 678", "KH", "+85512345678", "KH"),
        ("081 234 5678", "TH", "+66812345678", "TH"),
        ("๐๘๑ ๒๓๔ ๕๖๗๘", "TH", "+66812345678", "TH"),  # Thai digits
        ("0812-3456-7890", "ID", "+6281234567890", "ID"),
        ("nomornya 0812-3456-7890", "ID", "+6281234567890", "ID"),
        ("855 12 345 678", "TH", "+85512345678", "KH"),  # country code without +
        ("0066 81 234 5678", "TH", "+66812345678", "TH"),
        ("09 250 123 456", "MM", "+959250123456", "MM"),
        ("၀၉ ၂၅၀ ၁၂၃ ၄၅၆", "MM", "+959250123456", "MM"),  # Burmese digits
        ("0917 123 4567", "PH", "+639171234567", "PH"),
        ("0912345678", "VN", "+84912345678", "VN"),
        ("01712-345678", "BD", "+8801712345678", "BD"),
    ],
)
def test_phone_numbers_come_out_in_e164(
    text: str, region: str | None, e164: str, country: str
) -> None:
    assert parse_phone(text, region) == Contact("phone", e164, country)


@pytest.mark.parametrize(
    ("text", "handle"),
    [
        ("@somchai_88", "@somchai_88"),
        ("his telegram is @Somchai_88", "@somchai_88"),
        ("t.me/Somchai_88", "@somchai_88"),
        ("https://t.me/nguyen_van_a", "@nguyen_van_a"),
        ("telegram: juan_dc", "@juan_dc"),
    ],
)
def test_telegram_handles_are_recognised_as_handles(text: str, handle: str) -> None:
    assert parse_phone(text, "TH") == Contact("telegram", handle)


def test_whichever_comes_first_a_number_or_a_handle() -> None:
    both = "his number is 0917 123 4567 and telegram @juan_dc"
    assert parse_phone(both, "PH") == Contact("phone", "+639171234567", "PH")
    assert parse_phone("@juan_dc or 0917 123 4567", "PH") == Contact("telegram", "@juan_dc")


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("12345", "TH"),
        ("email him at john@gmail.com", None),
        ("@abc", None),  # too short for a Telegram username
        ("https://t.me/joinchat/abc123", None),  # an invite, not a person
        ("0812345678", None),  # a local number without a region to read it in
        ("no phone", "ID"),
    ],
)
def test_answers_that_are_not_contacts(text: str, region: str | None) -> None:
    assert parse_phone(text, region) is None
