"""Dates in a family's report, read as families type them (issue 7).

Dates in several languages and calendars (Thai Buddhist years, Khmer and
Burmese sasana years, the Myanmar Era), native digits, no future dates.
"""

from __future__ import annotations

from datetime import date

import pytest

from actions.report_dates import parse_date

#: Every date test is answered on 15 June 2025.
TODAY = date(2025, 6, 15)


# --- dates -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "iso", "precision"),
    [
        # numeric: ISO, day/month/year, month/day/year only when unambiguous
        ("2025-03-14", "en", "2025-03-14", "day"),
        ("14/3/2025", "en", "2025-03-14", "day"),
        ("14.03.2025", "id", "2025-03-14", "day"),
        ("3/14/2025", "en", "2025-03-14", "day"),
        ("5/3/2025", "tl", "2025-03-05", "day"),
        ("14/3/25", "en", "2025-03-14", "day"),
        ("2025/3/14", "zh", "2025-03-14", "day"),
        ("03/2025", "en", "2025-03", "month"),
        ("25/12", "en", "2024-12-25", "day"),
        # month names, with and without day and year
        ("14 March 2025", "en", "2025-03-14", "day"),
        ("March 14, 2025", "en", "2025-03-14", "day"),
        ("on the 14th of March", "en", "2025-03-14", "day"),
        ("March 2025", "en", "2025-03", "month"),
        ("since June", "en", "2025-06", "month"),
        ("in May", "en", "2025-05", "month"),
        ("Maret", "id", "2025-03", "month"),
        ("dia berangkat bulan Agustus 2024", "id", "2024-08", "month"),
        ("14 Mac 2025", "ms", "2025-03-14", "day"),
        ("ngày 14 tháng 3 năm 2025", "vi", "2025-03-14", "day"),
        ("nó đi từ tháng 3", "vi", "2025-03", "month"),
        ("tháng 3 năm ngoái", "vi", "2024-03", "month"),
        ("Marso 14, 2025", "tl", "2025-03-14", "day"),
        ("14 de março de 2025", "pt", "2025-03-14", "day"),
        ("14 Mart 2025", "tr", "2025-03-14", "day"),
        ("Mart'ta gitti", "tr", "2025-03", "month"),
        ("2025年3月14日", "zh", "2025-03-14", "day"),
        ("他去年十月走的", "zh", "2024-10", "month"),
        ("ออกไปตั้งแต่เดือนมีนาคม", "th", "2025-03", "month"),
        ("১৪ মার্চ ২০২৫", "bn", "2025-03-14", "day"),
        ("মার্চে গেছে", "bn", "2025-03", "month"),
        ("၂၀၂၅ ခုနှစ် မတ်လ ၁၄ ရက်", "my", "2025-03-14", "day"),
        ("ថ្ងៃទី១៤ ខែមីនា ឆ្នាំ២០២៥", "km", "2025-03-14", "day"),
        ("14 ມີນາ 2025", "lo", "2025-03-14", "day"),
        # relative expressions
        ("yesterday", "en", "2025-06-14", "day"),
        ("3 days ago", "en", "2025-06-12", "day"),
        ("a month ago", "en", "2025-05", "month"),
        ("last month", "en", "2025-05", "month"),
        ("last year", "en", "2024", "year"),
        ("2 bulan lalu", "id", "2025-04", "month"),
        ("sebulan yang lalu", "id", "2025-05", "month"),
        ("hilang sudah 3 bulan", "id", "2025-03", "month"),
        ("kemarin", "id", "2025-06-14", "day"),
        ("bulan lepas", "ms", "2025-05", "month"),
        ("เมื่อวาน", "th", "2025-06-14", "day"),
        ("เมื่อวานซืน", "th", "2025-06-13", "day"),
        ("ติดต่อไม่ได้ 2 เดือนแล้ว", "th", "2025-04", "month"),
        ("สองเดือนก่อน", "th", "2025-04", "month"),
        ("上个月", "zh", "2025-05", "month"),
        ("三个月前", "zh", "2025-03", "month"),
        ("两天前", "zh", "2025-06-13", "day"),
        ("tháng trước", "vi", "2025-05", "month"),
        ("3 tháng trước", "vi", "2025-03", "month"),
        ("mat lien lac 2 thang roi", "vi", "2025-04", "month"),
        ("hôm qua", "vi", "2025-06-14", "day"),
        ("dalawang buwan na ang nakalipas", "tl", "2025-04", "month"),
        ("noong isang buwan", "tl", "2025-05", "month"),
        ("৩ মাস আগে", "bn", "2025-03", "month"),
        ("গত মাসে", "bn", "2025-05", "month"),
        ("3 ay önce", "tr", "2025-03", "month"),
        ("há 2 meses", "pt", "2025-04", "month"),
        ("လွန်ခဲ့တဲ့ ၃ လက", "my", "2025-03", "month"),
        ("မနေ့က", "my", "2025-06-14", "day"),
        ("៣ ខែមុន", "km", "2025-03", "month"),
        ("ເດືອນແລ້ວ", "lo", "2025-05", "month"),
        # a year alone
        ("2024", "en", "2024", "year"),
        ("early 2024", "en", "2024", "year"),
        ("二〇二四年", "zh", "2024", "year"),
    ],
)
def test_dates_in_the_forms_families_write(
    text: str, language: str, iso: str, precision: str
) -> None:
    parsed = parse_date(text, language, TODAY)
    assert parsed is not None, text
    assert (parsed.iso, parsed.precision) == (iso, precision)


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("14 มีนาคม 2568", "th", date(2025, 3, 14)),
        ("14 มี.ค. 68", "th", date(2025, 3, 14)),
        ("14/3/68", "th", date(2025, 3, 14)),
        ("14.03.2568", "th", date(2025, 3, 14)),
        ("วันที่ 1 ม.ค. 2567", "th", date(2024, 1, 1)),
        ("๑๔/๓/๒๕๖๘", "th", date(2025, 3, 14)),  # Thai digits
        ("14/03/2568 B.E.", "en", date(2025, 3, 14)),  # BE with a marker in English
        ("14 ມີນາ 2568", "lo", date(2025, 3, 14)),  # Lao BE is Thai BE
        ("១៤ មីនា ២៥៦៨", "km", date(2025, 3, 14)),  # Khmer BE before Vesak: CE + 543
        ("១៤ មិថុនា ២៥៦៨", "km", date(2024, 6, 14)),  # after Vesak: CE + 544
    ],
)
def test_buddhist_era_years_become_common_era(text: str, language: str, expected: date) -> None:
    parsed = parse_date(text, language, TODAY)
    assert parsed is not None
    assert parsed.value == expected
    assert parsed.precision == "day"


@pytest.mark.parametrize(
    ("text", "language", "year", "approximate"),
    [
        ("พ.ศ. 2568", "th", 2025, False),
        ("ปี 2567", "th", 2024, False),
        ("2568", "lo", 2025, False),
        ("២៥៦៨", "km", 2024, True),  # Khmer BE year alone: may be off by one
        ("၂၅၆၈", "my", 2024, True),  # Burmese sasana year
        ("၁၃၈၆", "my", 2024, True),  # Myanmar Era 1386
        ("၂ဝ၂၄", "my", 2024, False),  # the letter wa typed for the digit zero
    ],
)
def test_years_alone_in_other_calendars(
    text: str, language: str, year: int, approximate: bool
) -> None:
    parsed = parse_date(text, language, TODAY)
    assert parsed is not None
    assert (parsed.value, parsed.precision, parsed.approximate) == (
        date(year, 1, 1),
        "year",
        approximate,
    )


def test_a_year_over_2400_is_buddhist_only_in_a_buddhist_calendar_context() -> None:
    assert parse_date("14/03/2568", "en", TODAY) is None
    thai_written_in_english = parse_date("14/03/2568", "th", TODAY)
    assert thai_written_in_english is not None
    assert thai_written_in_english.value == date(2025, 3, 14)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("14/7/2025", "en"),
        ("July 2025", "en"),
        ("2026", "en"),
        ("1/1/2099", "en"),
        ("พ.ศ. 2569", "th"),
        ("14 กรกฎาคม 2568", "th"),
        ("tomorrow", "en"),
        ("next month", "en"),
        ("besok", "id"),
    ],
)
def test_future_dates_are_refused(text: str, language: str) -> None:
    assert parse_date(text, language, TODAY) is None


@pytest.mark.parametrize(
    ("text", "language", "iso"),
    [
        ("November", "en", "2024-11"),  # later in the year than June: last year's
        ("Desember", "id", "2024-12"),
        ("มิถุนายน", "th", "2025-06"),  # this month
        ("20 June", "en", "2024-06-20"),  # five days ahead: last year's
        ("10 June", "en", "2025-06-10"),
    ],
)
def test_a_date_without_a_year_is_the_most_recent_past_one(
    text: str, language: str, iso: str
) -> None:
    parsed = parse_date(text, language, TODAY)
    assert parsed is not None
    assert parsed.iso == iso


def test_vague_relative_dates_are_approximate() -> None:
    last_week = parse_date("last week", "en", TODAY)
    assert last_week == parse_date("minggu lalu", "id", TODAY)
    assert last_week is not None
    assert (last_week.value, last_week.approximate) == (date(2025, 6, 8), True)
    about = parse_date("about 2 years ago", "en", TODAY)
    assert about is not None
    assert (about.iso, about.approximate) == ("2023", True)
    exact = parse_date("3 days ago", "en", TODAY)
    assert exact is not None
    assert not exact.approximate


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("17", "en"),
        ("I don't know", "en"),
        ("he may be there", "en"),  # "may" is no month here
        ("Martin took him", "tr"),
        ("31/2/2025", "en"),
        ("3 weeks", "en"),  # no "ago": not a date
        ("", "en"),
    ],
)
def test_answers_that_are_not_dates(text: str, language: str) -> None:
    assert parse_date(text, language, TODAY) is None


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("tháng hai", "2025-02"),
        ("14 tháng hai 2025", "2025-02-14"),
        ("thang gieng", "2025-01"),
        ("tháng mười hai năm ngoái", "2024-12"),
    ],
)
def test_vietnamese_month_names_in_words(text: str, iso: str) -> None:
    parsed = parse_date(text, "vi", TODAY)
    assert parsed is not None, text
    assert parsed.iso == iso
