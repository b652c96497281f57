"""Dates in a family's report: when the person left or was last heard from.

:func:`parse_date` turns an answer into a :class:`ParsedDate`, or ``None``
when it cannot be understood (the form then asks again). Month names,
relative-date phrases, the words of "3 days ago" and number words are in
``data/report/`` (``months.yml``, ``relative_dates.yml``, ``time_ago.yml``,
``number_words.yml``); text is folded as :mod:`actions.report_text` describes.

Calendars:

- Thai and Lao Buddhist Era years are CE + 543 all year round ("พ.ศ. 2568" is
  2025). A bare year above 2400 is taken as BE in Thai, Lao, Khmer or Burmese
  context (the language given, or the script of the answer); elsewhere only
  with a marker ("พ.ศ.", "ພ.ສ.", "ព.ស.", "B.E."), otherwise it is a future year
  and refused. Two-digit years in Thai or Lao context ("14 มี.ค. 68") are the
  most recent reading, BE or CE, that is not in the future.
- The Cambodian and Myanmar Buddhist Era (sasana) year starts at Vesak in
  April/May and runs one ahead of the Thai one for most of the year: a year
  above 2400 in Khmer or Burmese context is CE + 544, or CE + 543 with a month
  from January to April. A year alone is flagged ``approximate`` (it may be off
  by one).
- A year from 1300 to 1450 in Burmese context is a Myanmar Era year (the
  Burmese calendar, which starts in mid-April): CE = ME + 638, or + 639 with a
  month from January to March. Burmese lunar month names (Tagu, Kason ...) and
  the Bengali calendar (বঙ্গাব্দ, Boishakh ...) are not understood: families
  who write them are asked again.
- Numeric dates are day/month/year; month/day/year only when the day is over
  12 and so cannot be a month ("3/14/2025"). Year/month/day when the year
  comes first ("2025-03-14", "2025/3/14").
- Nothing in the future: a future date is refused, and a date without a year
  is the most recent one that is not in the future ("Maret" in June 2025 is
  March 2025; "November" is November 2024).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from actions.report_text import (
    BENGALI,
    ETHIOPIC,
    LATIN,
    MARK,
    TRIM,
    UNSPACED,
    base_language,
    fold,
    fold_all,
    language_order,
    phrase_regex,
    prepare,
    word_pattern,
)
from actions.report_words import word_list

__all__ = ["ParsedDate", "Precision", "parse_date"]

Precision = Literal["day", "month", "year"]
Unit = Literal["day", "week", "month", "year"]


@dataclass(frozen=True)
class ParsedDate:
    """A date in the past, to the precision the family gave it.

    Attributes:
        value: The date; the first day of the month or year when the precision
            is coarser than a day.
        precision: ``"day"``, ``"month"`` or ``"year"``.
        approximate: True for vague answers ("last week", "about 3 weeks ago",
            a Khmer or Burmese Buddhist year without a month).
    """

    value: date
    precision: Precision
    approximate: bool = False

    @property
    def iso(self) -> str:
        """``2025-03-14``, ``2025-03`` or ``2025``, by precision (for a slot)."""
        if self.precision == "day":
            return self.value.isoformat()
        if self.precision == "month":
            return f"{self.value.year:04d}-{self.value.month:02d}"
        return f"{self.value.year:04d}"


# ---------------------------------------------------------------------------
# Month names
# ---------------------------------------------------------------------------

#: Month names, January first; "~" marks a weak form (``data/report/months.yml``).
_MONTHS: dict[str, list[list[str]]] = word_list("months")


def _month_regex(lang: str, names: Iterable[str]) -> re.Pattern[str]:
    body = "|".join(word_pattern(n) for n in sorted(names, key=len, reverse=True))
    if lang in LATIN:
        # Turkish glues case endings on: "Mart'ta", "martta", "hazirandan".
        after = (
            r"(?:'[a-z]+|(?:ta|te|da|de|tan|ten|dan|den))?(?![a-z])"
            if lang == "tr"
            else r"(?![a-z])"
        )
        return re.compile(rf"(?<![a-z])(?P<name>{body}){after}")
    if lang == "bn":
        return re.compile(rf"(?<![{BENGALI}])(?P<name>{body})(?:ের|ে|র|তে)?(?![{BENGALI}])")
    if lang == "ti":
        return re.compile(rf"(?<![{ETHIOPIC}])(?P<name>{body})")
    return re.compile(rf"(?P<name>{body})(?!{MARK})")


def _build_months() -> dict[str, tuple[re.Pattern[str], dict[str, tuple[int, bool]]]]:
    built: dict[str, tuple[re.Pattern[str], dict[str, tuple[int, bool]]]] = {}
    for lang, months in _MONTHS.items():
        spelled: list[str] = []
        lookup: dict[str, tuple[int, bool]] = {}
        for number, names in enumerate(months, start=1):
            for raw in names:
                weak = raw.startswith("~")
                name = fold(raw.lstrip("~"))
                spelled.append(name)
                # Matched with flexible spaces ("tháng  hai"), looked up without them.
                lookup[re.sub(r"\s+", "", name)] = (number, weak)
        built[lang] = (_month_regex(lang, spelled), lookup)
    return built


_MONTH_TABLES = _build_months()
_VI_MONTH_NUMBER = re.compile(r"(?<![a-z0-9])(?:thang|thg)\s*(\d{1,2})(?!\d)")
_ZH_MONTH_NUMBER = re.compile(r"(?<![个個\d])(\d{1,2})\s*月")
_MONTH_WORD_BEFORE = re.compile(
    r"(?:(?<![a-z])(?:in|since|of|early|late|mid|end of|last|bulan|buwan|sejak|noong|desde|em)"
    r"|ខែ|เดือน|ເດືອນ|ወርሒ)[\s\-]*$"
)
_MONTH_WORD_AFTER = re.compile(r"\s*(?:လ|মাস)")


def _weak_ok(folded: str, start: int, end: int) -> bool:
    near = folded[max(0, start - 4) : start] + folded[end : end + 4]
    if any(c.isdigit() for c in near):
        return True
    if _MONTH_WORD_BEFORE.search(folded[:start]) or _MONTH_WORD_AFTER.match(folded, end):
        return True
    return folded.strip(TRIM) == folded[start:end]


def _month_mention(folded: str, language: str) -> tuple[int, int, int] | None:
    """(month, start, end) of the first month named in ``folded``."""
    for regex in (_VI_MONTH_NUMBER, _ZH_MONTH_NUMBER):
        found = regex.search(folded)
        if found and 1 <= int(found.group(1)) <= 12:
            return int(found.group(1)), found.start(), found.end()
    for lang in language_order(language):
        if lang not in _MONTH_TABLES:
            continue
        regex, lookup = _MONTH_TABLES[lang]
        for found in regex.finditer(folded):
            month, weak = lookup[re.sub(r"\s+", "", found.group("name"))]
            if weak and not _weak_ok(folded, found.start(), found.end()):
                continue
            return month, found.start(), found.end("name")
    return None


# ---------------------------------------------------------------------------
# Relative dates
# ---------------------------------------------------------------------------

# Relative expressions without a number: key = unit letter + how many back.
_RELATIVE: dict[str, dict[str, list[str]]] = word_list("relative_dates")
_UNIT_LETTER: dict[str, Unit] = {"d": "day", "w": "week", "m": "month", "y": "year"}
_UNITS: tuple[Unit, ...] = ("day", "week", "month", "year")


def _build_relative() -> dict[str, tuple[re.Pattern[str], dict[str, tuple[Unit, int]]]]:
    built: dict[str, tuple[re.Pattern[str], dict[str, tuple[Unit, int]]]] = {}
    for lang, table in _RELATIVE.items():
        lookup: dict[str, tuple[Unit, int]] = {}
        phrases: list[str] = []
        for key, words in table.items():
            for phrase in fold_all(words):
                phrases.append(phrase)
                lookup[re.sub(r"\s+", "", phrase)] = (_UNIT_LETTER[key[0]], int(key[1:]))
        built[lang] = (phrase_regex(phrases), lookup)
    return built


_RELATIVE_TABLES = _build_relative()


def _relative_phrase(folded: str, language: str) -> tuple[Unit, int] | None:
    for lang in language_order(language):
        if lang not in _RELATIVE_TABLES:
            continue
        regex, lookup = _RELATIVE_TABLES[lang]
        found = regex.search(folded)
        if found:
            return lookup[re.sub(r"\s+", "", found.group())]
    return None


# ---------------------------------------------------------------------------
# "3 days ago"
# ---------------------------------------------------------------------------

# "3 days ago" and the like, per language.
_NUMBER_WORDS: dict[str, dict[str, int]] = word_list("number_words")["counts"]
_VAGUE = frozenset(fold(w).replace(" ", "") for w in fold_all(word_list("number_words")["vague"]))
_AGO: dict[str, dict[str, list[str]]] = word_list("time_ago")


def _group(words: list[str]) -> str:
    folded = fold_all(words)
    return "(?:" + "|".join(word_pattern(w) for w in sorted(folded, key=len, reverse=True)) + ")"


def _ago_regex(lang: str) -> re.Pattern[str]:
    table = _AGO[lang]
    numbers = sorted(_NUMBER_WORDS.get(lang, {}), key=len, reverse=True)
    number = r"\d+"
    if numbers:
        number += "|" + "|".join(word_pattern(fold(w)) for w in numbers)
    linker = r"(?:ng|\s+na)?" if lang == "tl" else ""
    unit = "|".join(
        f"(?P<{name}>{_group(table[name])})" for name in ("day", "week", "month", "year")
    )
    before = r"(?<![a-z0-9])" if lang in LATIN else ""
    after = r"(?![a-z])" if lang in LATIN else (f"(?!{MARK})" if lang in UNSPACED else "")
    pre = rf"(?:(?P<pre>{_group(table['pre'])})\s*)?" if table["pre"] else ""
    hedge = rf"(?:(?P<hedge>{_group(table['hedge'])})\s*)?" if table["hedge"] else ""
    post_words = rf"\s*{_group(table['post'])}{after}" if table["post"] else r"(?!)"
    if lang == "tr":  # "3 aydır", "2 yıldır": for three months, for two years
        post_words = rf"(?:{post_words}|[dt][iu]r(?![a-z]))"
    tail = rf"(?(pre)(?:{post_words})?|(?:{post_words}))" if pre else f"(?:{post_words})"
    return re.compile(rf"{before}{pre}{hedge}(?P<number>{number}){linker}\s*(?:{unit}){tail}")


_AGO_REGEXES = {lang: _ago_regex(lang) for lang in _AGO}


def _ago(folded: str, language: str) -> tuple[Unit, int, bool] | None:
    """(unit, how many, approximate) of "3 days ago" / "2 bulan lalu" / "三个月前"."""
    for lang in language_order(language):
        regex = _AGO_REGEXES.get(lang)
        if regex is None:
            continue
        found = regex.search(folded)
        if found is None:
            continue
        raw = found.group("number")
        if raw.isdigit():
            count, vague = int(raw), False
        else:
            words = {fold(w).replace(" ", ""): n for w, n in _NUMBER_WORDS[lang].items()}
            key = re.sub(r"\s+", "", raw)
            count, vague = words.get(key, 0), key in _VAGUE
        unit = next(u for u in _UNITS if found.group(u))
        return unit, count, vague or found.groupdict().get("hedge") is not None
    return None


# ---------------------------------------------------------------------------
# Written dates
# ---------------------------------------------------------------------------

_ISO_DATE = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})(?!\d)")
_MONTH_YEAR = re.compile(r"(?<![\d/.\-])(\d{1,2})[-/.](\d{4})(?![\d/.\-])")
_YEAR_MONTH = re.compile(r"(?<![\d/.\-])(\d{4})[-/.](\d{1,2})(?![\d/.\-])")
_DAY_MONTH = re.compile(r"(?<![\d/.\-])(\d{1,2})/(\d{1,2})(?![\d/.\-])")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_BE_MARKER = re.compile(
    r"พ\.?\s?ศ|ພ\.?\s?ສ|ព\.?\s?ស|ពុទ្ធសករាជ|พุทธศักราช|b\.\s?e\.|buddhist era|သာသနာ"
)
_FILLER = (
    r"(?:[\s,.'/\-]|(?<![a-z])(?:de|of|the|ng|ika|tanggal|tgl|ngay|nam|sa|tahun|taon|ano|yil)"
    r"(?![a-z])|b\.\s?e\.|ปี|วันที่|เดือน|ที่|พ\.?\s?ศ\.?|ค\.?\s?ศ\.?|年|月份|月|日|号|號|"
    r"ခုနှစ်|ရက်နေ့|ရက်|လ|ခု|ថ្ងៃទី|ខែ|ឆ្នាំ|ព\.?\s?ស\.?|គ\.?\s?ស\.?|ວັນທີ|ເດືອນ|ປີ|"
    r"ພ\.?\s?ສ\.?|ຄ\.?\s?ສ\.?|সাল|সালের|তারিখ|ইং)*"
)
_NUMBER_BEFORE = re.compile(rf"(?<!\d)(\d{{1,4}})(?:st|nd|rd|th)?{_FILLER}$")
_NUMBER_AFTER = re.compile(rf"(?P<gap>{_FILLER})(\d{{1,4}})(?!\d)(?:st|nd|rd|th)?")

_Found = tuple[int | None, int | None, int | None, bool]  # year, month, day, approximate


def _calendar(text: str, language: str) -> str | None:
    """The calendar context: th, lo, km or my, by script first, then language."""
    for lang, pattern in (
        ("th", "[\u0e00-\u0e7f]"),
        ("lo", "[\u0e80-\u0eff]"),
        ("km", "[\u1780-\u17ff]"),
        ("my", "[\u1000-\u109f]"),
    ):
        if re.search(pattern, text):
            return lang
    lang = base_language(language)
    return lang if lang in ("th", "lo", "km", "my") else None


def _year(
    value: int, digits: int, month: int | None, calendar: str | None, be: bool, today: date
) -> tuple[int, bool]:
    """A written year as CE (see the module docstring), and whether it is approximate."""
    sasana = 544 if month is None or month > 4 else 543
    if digits <= 2:
        candidates = [2000 + value, 1900 + value]
        if calendar in ("th", "lo"):
            candidates.append(2500 + value - 543)
        elif calendar in ("km", "my"):
            candidates.append(2500 + value - sasana)
        past = [c for c in candidates if c <= today.year]
        return (max(past) if past else min(candidates)), False
    if value > 2400 and (be or calendar):
        if calendar in ("km", "my"):
            return value - sasana, month is None
        return value - 543, False
    if calendar == "my" and 1300 <= value <= 1450:
        return value + (639 if month is not None and month <= 3 else 638), month is None
    return value, False


def _finish(found: _Found, today: date) -> ParsedDate | None:
    year, month, day, approximate = found
    if month is not None and not 1 <= month <= 12:
        return None
    if year is None:
        if month is None:
            return None
        year = today.year
        if (month, day or 0) > (today.month, today.day if day else 0):
            year -= 1
    try:
        value = date(year, month or 1, day or 1)
    except ValueError:
        return None
    if year < 1900:
        return None
    if day is not None and month is not None:
        return None if value > today else ParsedDate(value, "day", approximate)
    if month is not None:
        if (year, month) > (today.year, today.month):
            return None
        return ParsedDate(value, "month", approximate)
    return None if year > today.year else ParsedDate(value, "year", approximate)


def _numeric_date(folded: str, calendar: str | None, be: bool, today: date) -> _Found | None:
    found = _ISO_DATE.search(folded)
    if found:
        month, day = int(found.group(2)), int(found.group(3))
        year, approx = _year(int(found.group(1)), 4, month, calendar, be, today)
        return year, month, day, approx
    found = _NUMERIC_DATE.search(folded)
    if found:
        first, second = int(found.group(1)), int(found.group(2))
        day, month = (second, first) if first <= 12 < second else (first, second)
        raw = found.group(3)
        year, approx = _year(int(raw), len(raw), month, calendar, be, today)
        return year, month, day, approx
    found = _MONTH_YEAR.search(folded)
    if found:
        month = int(found.group(1))
        year, approx = _year(int(found.group(2)), 4, month, calendar, be, today)
        return year, month, None, approx
    found = _YEAR_MONTH.search(folded)
    if found and 1 <= int(found.group(2)) <= 12:
        month = int(found.group(2))
        year, approx = _year(int(found.group(1)), 4, month, calendar, be, today)
        return year, month, None, approx
    found = _DAY_MONTH.search(folded)
    if found:
        first, second = int(found.group(1)), int(found.group(2))
        day, month = (second, first) if first <= 12 < second else (first, second)
        return None, month, day, False
    return None


def _named_month_date(
    folded: str, language: str, calendar: str | None, be: bool, today: date
) -> _Found | None:
    mention = _month_mention(folded, language)
    if mention is None:
        return None
    month, start, end = mention
    day: int | None = None
    year: tuple[int, int] | None = None  # value, digits
    before = _NUMBER_BEFORE.search(folded[:start])
    if before:
        raw = before.group(1)
        if len(raw) == 4:
            year = int(raw), 4
        elif 1 <= int(raw) <= 31:
            day = int(raw)
    after = _NUMBER_AFTER.match(folded, end)
    following = [after] if after else []
    if after:
        second = _NUMBER_AFTER.match(folded, after.end())
        if second:
            following.append(second)
    for index, number in enumerate(following):
        raw = number.group(2)
        if len(raw) == 4:
            if year is None:
                year = int(raw), 4
        elif len(raw) <= 2:
            apostrophe = "'" in number.group("gap")
            if day is None and not apostrophe and 1 <= int(raw) <= 31 and index == 0:
                day = int(raw)
            elif year is None and (day is not None or apostrophe):
                year = int(raw), 2
        if year is not None and (day is not None or index == 1):
            break
    approximate = False
    resolved: int | None = None
    if year is not None:
        resolved, approximate = _year(year[0], year[1], month, calendar, be, today)
    else:
        relative = _relative_phrase(folded, language)
        if relative is not None and relative[0] == "year":
            resolved = today.year - relative[1]
    return resolved, month, day, approximate


def _months_back(today: date, count: int) -> tuple[int, int]:
    index = today.year * 12 + today.month - 1 - count
    return index // 12, index % 12 + 1


def _relative_date(unit: Unit, count: int, approximate: bool, today: date) -> ParsedDate | None:
    if count < 0 or count > 100 * 366:
        return None
    try:
        if unit == "day":
            return ParsedDate(today - timedelta(days=count), "day", approximate)
        if unit == "week":
            return ParsedDate(today - timedelta(weeks=count), "day", True)
        if unit == "month":
            year, month = _months_back(today, count)
            return ParsedDate(date(year, month, 1), "month", approximate)
        return ParsedDate(date(today.year - count, 1, 1), "year", approximate)
    except (OverflowError, ValueError):
        return None


def parse_date(text: str, language: str, today: date) -> ParsedDate | None:
    """When someone left or was last heard from, as the family wrote it.

    Understands ISO and numeric dates ("2025-03-14", "14/3/2025", "14.03.68",
    "3/14/2025" only since 14 cannot be a month), month names in the served
    languages with or without day and year ("14 March 2025", "Maret",
    "since June", "14 มี.ค. 68", "ngày 14 tháng 3 năm 2025", "2025年3月14日",
    "១៤ មីនា ២០២៥"), relative expressions ("yesterday", "last week",
    "3 days ago", "2 bulan lalu", "เมื่อวาน", "上个月", "tháng trước",
    "há 2 meses", "3 aydır"), a year alone ("2024", "พ.ศ. 2567"),
    Buddhist and Myanmar Era years and native digits (module docstring).

    Args:
        text: The answer as written.
        language: The conversation's language (ISO 639-1); decides which word
            lists are tried first and, for th/lo/km/my, the calendar.
        today: The date the answer was given (the user's local date).

    Returns:
        The date with its precision, or None when the answer cannot be
        understood or names a date in the future.
    """
    folded = prepare(text)
    calendar = _calendar(text, language)
    be = _BE_MARKER.search(folded) is not None
    found = _numeric_date(folded, calendar, be, today) or _named_month_date(
        folded, language, calendar, be, today
    )
    if found is not None:
        return _finish(found, today)
    ago = _ago(folded, language)
    if ago is not None:
        return _relative_date(*ago, today)
    relative = _relative_phrase(folded, language)
    if relative is not None:
        return _relative_date(relative[0], relative[1], False, today)
    year = _YEAR.search(folded)
    if year is not None:
        value, approximate = _year(int(year.group(1)), 4, None, calendar, be, today)
        return _finish((value, None, None, approximate), today)
    return None
