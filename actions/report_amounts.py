"""Numbers in a family's report: the missing person's age and a ransom demand.

The family report form calls these to turn an answer into a value, or gets
``None`` when the answer cannot be understood (the form then asks again):

- :func:`parse_age`: how old the person is, with :attr:`Age.is_minor`;
- :func:`money_demand`: the amount, currency, deadline and means of a demand.

The words are in ``data/report/`` (``ages.yml``, ``number_words.yml``,
``currencies.yml``, ``scales.yml``, ``payment_methods.yml``,
``deadlines.yml``); text is folded as :mod:`actions.report_text` describes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from actions.report_text import (
    MARK,
    alternation,
    base_language,
    fold,
    fold_all,
    phrase_regex,
    prepare,
    word_pattern,
)
from actions.report_words import word_list

__all__ = ["Age", "MoneyDemand", "money_demand", "parse_age"]


@dataclass(frozen=True)
class Age:
    """An age in years.

    Attributes:
        years: The age; the lower end of a range ("17 or 18" is 17, so a
            possible minor is never missed).
        approximate: True for "around 20", "20-an", "17-18", "二十多岁".
    """

    years: int
    approximate: bool = False

    @property
    def is_minor(self) -> bool:
        """Under 18: a minor, which makes the case ``critical``."""
        return self.years < 18


@dataclass(frozen=True)
class MoneyDemand:
    """What someone asked the family to pay.

    Attributes:
        amount: The amount (``Decimal("50000000")`` for "50 juta"), None if
            not given.
        currency: ISO 4217 code, or ``"USDT"``; None if not given and not
            implied by the language's own scale words ("50 juta" is IDR).
        deadline_hours: Hours from the message until the deadline, as an upper
            bound (tonight/today 12, tomorrow 24, "48 hours" 48, "now" 1);
            None when no deadline was given.
        method: ``"crypto"``, ``"bank_transfer"``, ``"mobile_wallet"``,
            ``"money_transfer"`` or ``"cash"`` when named, else None.
    """

    amount: Decimal | None
    currency: str | None
    deadline_hours: int | None
    method: str | None = None

    @property
    def has_deadline(self) -> bool:
        """A demand with a deadline makes the case ``critical``."""
        return self.deadline_hours is not None


# ---------------------------------------------------------------------------
# Ages
# ---------------------------------------------------------------------------

_AGE_WORDS = word_list("ages")
_AGE_UNIT = re.compile(r"\s*(?:" + alternation(fold_all(_AGE_WORDS["units"])) + ")")
_AGE_MARKER = re.compile("(?:" + alternation(fold_all(_AGE_WORDS["markers"])) + r")[^\d]{0,15}$")
_AGE_APPROX = re.compile(
    "(?:"
    + alternation(fold_all(_AGE_WORDS["hedges"]))
    + r"|~|\+|(?<=\d)(?:'?s|-?an)(?![a-z])"
    + ")"
)
_AGE_AGO = re.compile(r"\s*(?:" + alternation(fold_all(_AGE_WORDS["ago"])) + ")")
_AGE_RANGE = re.compile(
    r"(?<!\d)(\d{1,3})\s*(?:"
    + "|".join(re.escape(w) for w in _AGE_WORDS["range"])
    + r")\s*(\d{1,3})(?!\d)"
)

_AGE_NUMBERS = word_list("number_words")["ages"]
_EN_UNITS: dict[str, int] = _AGE_NUMBERS["en"]["units"]
_EN_TEENS: dict[str, int] = _AGE_NUMBERS["en"]["teens"]
_EN_TENS: dict[str, int] = _AGE_NUMBERS["en"]["tens"]
_ID_UNITS: dict[str, int] = _AGE_NUMBERS["id"]["units"]
_VI_UNITS: dict[str, int] = {fold(k): v for k, v in _AGE_NUMBERS["vi"]["units"].items()}
_TH_UNITS: dict[str, int] = _AGE_NUMBERS["th"]["units"]


def _alt(words: Iterable[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


def _age_words(folded: str) -> str:
    """Number words of an age (English, Indonesian/Malay, Vietnamese, Thai) as digits."""

    def sub(pattern: str, value: Callable[[re.Match[str]], int], text: str) -> str:
        return re.sub(pattern, lambda m: str(value(m)), text)

    en_units, en_teens, en_tens = _alt(_EN_UNITS), _alt(_EN_TEENS), _alt(_EN_TENS)
    text = sub(
        rf"(?<![a-z])({en_tens})(?:[\s-]*({en_units}))?(?![a-z])",
        lambda m: _EN_TENS[m.group(1)] + (_EN_UNITS[m.group(2)] if m.group(2) else 0),
        folded,
    )
    text = sub(rf"(?<![a-z])({en_teens})(?![a-z])", _en_small, text)
    text = sub(rf"(?<![a-z])({en_units})(?=\s*(?:years?|yrs?|yo|y/o)(?![a-z]))", _en_small, text)
    id_units = _alt(_ID_UNITS)
    text = sub(
        rf"(?<![a-z])({id_units}|se)\s*puluh(?:\s+({id_units}))?(?![a-z])",
        lambda m: _ID_UNITS.get(m.group(1), 1) * 10 + _ID_UNITS.get(m.group(2) or "", 0),
        text,
    )
    text = sub(
        rf"(?<![a-z])({id_units}|se)\s*belas(?![a-z])",
        lambda m: 10 + _ID_UNITS.get(m.group(1), 1),
        text,
    )
    text = sub(
        rf"(?<![a-z])({id_units})(?=\s*(?:tahun|thn)(?![a-z]))",
        lambda m: _ID_UNITS[m.group(1)],
        text,
    )
    vi_units = _alt(_VI_UNITS)
    text = sub(
        rf"(?<![a-z])(?:({vi_units})\s+)?muoi(?:\s+({vi_units}))?(?![a-z])",
        _tens(_VI_UNITS),
        text,
    )
    text = sub(
        rf"(?<![a-z])({vi_units})(?=\s*tuoi(?![a-z]))", lambda m: _VI_UNITS[m.group(1)], text
    )
    th_units = _alt(_TH_UNITS)
    text = sub(rf"({th_units})?สิบ({th_units})?", _tens(_TH_UNITS), text)
    return sub(rf"({th_units})(?=\s*(?:ปี|ขวบ))", lambda m: _TH_UNITS[m.group(1)], text)


def _tens(units: dict[str, int]) -> Callable[[re.Match[str]], int]:
    """ "(unit) ten (unit)" as a number: group 1 multiplies ten (1 if absent), group 2 adds."""

    def value(match: re.Match[str]) -> int:
        high, low = match.group(1), match.group(2)
        return (units[high] if high else 1) * 10 + (units[low] if low else 0)

    return value


def _en_small(match: re.Match[str]) -> int:
    word = match.group(1)
    return _EN_TEENS.get(word) or _EN_UNITS[word]


def parse_age(text: str, language: str) -> Age | None:
    """The missing person's age.

    Understands "17", "17 years old", "umur 17", "อายุ 17", "17岁",
    "mười bảy", "seventeen", "dua puluh", native digits, "around 20",
    "20-an", "二十多岁", "17-18" and "17 or 18" (the lower end, approximate).

    Args:
        text: The answer as written.
        language: The conversation's language (unused for now: number words of
            every supported language are read; kept for the validators' sake).

    Returns:
        The age, or None without a number or when it is under 1 or over 100
        (a birth year such as "2008" is not an age).
    """
    del language
    folded = _age_words(prepare(text))
    approximate = _AGE_APPROX.search(folded) is not None
    ranged = _AGE_RANGE.search(folded)
    if ranged is not None:
        low, high = sorted((int(ranged.group(1)), int(ranged.group(2))))
        if 1 <= low <= 100 and high <= 100 and high - low <= 10:
            return Age(low, True)
    numbers = []
    for number in re.finditer(r"(?<![\d.,])\d+(?![\d.,]\d)", folded):
        unit = _AGE_UNIT.match(folded, number.end())
        if unit is None or not _AGE_AGO.match(folded, unit.end()):  # not "2 years ago"
            numbers.append(number)
    if not numbers:
        return None
    chosen = next(
        (
            m
            for m in numbers
            if _AGE_UNIT.match(folded, m.end()) or _AGE_MARKER.search(folded[: m.start()])
        ),
        numbers[0],
    )
    years = int(chosen.group())
    if not 1 <= years <= 100:
        return None
    return Age(years, approximate)


# ---------------------------------------------------------------------------
# Money demands
# ---------------------------------------------------------------------------

#: Currency words by code; a "=" prefix marks a word that only counts right
#: next to the amount ("5000u" is USDT in Chinese, "5000 đô" dollars).
_CURRENCIES: dict[str, list[str]] = word_list("currencies")
_SCALE_LISTS = word_list("scales")
#: Scale words and their factor.
_SCALES: dict[str, int] = _SCALE_LISTS["factors"]
#: A local scale word without a currency implies the language's currency.
_LOCAL_CURRENCY: dict[str, str] = _SCALE_LISTS["local_currency"]
_LOCAL_SCALES = frozenset(fold_all(_SCALE_LISTS["local"]))
_METHODS: dict[str, list[str]] = word_list("payment_methods")
_DEADLINES = word_list("deadlines")
#: Hours until the deadline -> words that set it by themselves.
_DEADLINE_FIXED: dict[int, list[str]] = {
    entry["hours"]: entry["words"] for entry in _DEADLINES["fixed"].values()
}
#: Hours in a unit -> the unit's words ("24 hours", "3 hari").
_DEADLINE_UNITS: dict[float, list[str]] = {
    entry["minutes"] / 60: entry["words"] for entry in _DEADLINES["units"].values()
}


def _currency_regex(words: list[str]) -> tuple[str, str]:
    """(free words, words that only count right next to the amount) of a currency."""
    free = [fold(w) for w in words if not w.startswith("=")]
    near = [fold(w[1:]) for w in words if w.startswith("=")]
    return _currency_alternation(free), _currency_alternation(near)


def _currency_alternation(words: list[str]) -> str:
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        body = word_pattern(word)
        if word[0].isascii() and word[0].isalpha():
            body = r"(?<![a-z])" + body
        if word[-1].isascii() and word[-1].isalpha():
            body += r"(?![a-z])"
        elif not word[-1].isascii():
            body += f"(?!{MARK})"
        parts.append(body)
    return "|".join(parts) or r"(?!)"


def _build_currencies() -> list[tuple[str, re.Pattern[str], re.Pattern[str]]]:
    """(code, free words, words next to the amount) of each currency, in file order."""
    built: list[tuple[str, re.Pattern[str], re.Pattern[str]]] = []
    for code, words in _CURRENCIES.items():
        free, near = _currency_regex(words)
        built.append((code, re.compile(free), re.compile(rf"^\s?(?:{near})|(?:{near})\s?$")))
    return built


_CURRENCY_REGEX = _build_currencies()
_SCALE_WORDS = {fold(k): v for k, v in _SCALES.items()}
_SCALE_RE = re.compile(r"\s*(" + _currency_alternation(list(_SCALE_WORDS)) + ")")
_SCALE_FIRST = re.compile(r"(" + _currency_alternation(list(_SCALE_WORDS)) + r")\s*$")
_AMOUNT = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)*")
_METHOD_REGEX = {m: phrase_regex(fold_all(words)) for m, words in _METHODS.items()}
_DEADLINE_FIXED_RE = [
    (hours, phrase_regex(fold_all(words))) for hours, words in _DEADLINE_FIXED.items()
]
_DEADLINE_UNIT_RE = re.compile(
    r"(?<![\d.,])(\d{1,3})(?![\d.,])\s*(?:"
    + "|".join(
        f"(?P<u{index}>{_currency_alternation(fold_all(words))})"
        for index, words in enumerate(_DEADLINE_UNITS.values())
    )
    + ")"
)
_DEADLINE_FACTORS = list(_DEADLINE_UNITS)


def _number_value(raw: str) -> Decimal | None:
    """``2,000`` / ``2.000`` / ``10.000.000`` are thousands; ``1,5`` / ``2.5`` decimals."""
    separators = [c for c in raw if c in ".,"]
    if not separators:
        return Decimal(raw)
    groups = re.split(r"[.,]", raw)
    if len(set(separators)) == 2:
        decimal_mark = separators[-1]
        whole, _, fraction = raw.rpartition(decimal_mark)
        whole = re.sub(r"[.,]", "", whole)
        return Decimal(f"{whole}.{fraction}") if len(fraction) != 3 else Decimal(whole + fraction)
    if len(separators) > 1 or len(groups[-1]) == 3:
        return Decimal("".join(groups))
    try:
        return Decimal(f"{groups[0]}.{groups[1]}")
    except InvalidOperation:
        return None


def _deadline(folded: str) -> tuple[int | None, list[tuple[int, int]]]:
    """Hours until the deadline (the nearest one named) and the spans it used."""
    hours: list[int] = []
    spans: list[tuple[int, int]] = []
    for match in _DEADLINE_UNIT_RE.finditer(folded):
        index = next(i for i in range(len(_DEADLINE_FACTORS)) if match.group(f"u{i}"))
        value = int(match.group(1)) * _DEADLINE_FACTORS[index]
        hours.append(max(1, round(value)))
        spans.append(match.span())
    for value, regex in _DEADLINE_FIXED_RE:
        for match in regex.finditer(folded):
            if not any(s <= match.start() < e for s, e in spans):
                hours.append(value)
                spans.append(match.span())
    return (min(hours) if hours else None), spans


def _currency_near(folded: str, start: int, end: int) -> str | None:
    before, after = folded[max(0, start - 12) : start], folded[end : end + 14]
    for code, free, near in _CURRENCY_REGEX:
        if near.search(after[:3]) or near.search(before[-3:]):
            return code
        if free.search(before) or free.search(after):
            return code
    return None


def _amount(folded: str, language: str) -> tuple[Decimal | None, str | None]:
    candidates: list[tuple[bool, Decimal, str | None]] = []
    for match in _AMOUNT.finditer(folded):
        value = _number_value(match.group())
        if value is None:
            continue
        end = match.end()
        scaled = False
        local = False
        scale = _SCALE_RE.match(folded, end)
        if scale:
            value *= _SCALE_WORDS[scale.group(1)]
            scaled, local = True, scale.group(1) in _LOCAL_SCALES
            end = scale.end()
            # "2 แสน 5 หมื่น", "3万5千": add the smaller parts that follow.
            while True:
                more = re.match(r"\s*(\d+)", folded[end:])
                if not more:
                    break
                part = _SCALE_RE.match(folded, end + more.end())
                if not part or _SCALE_WORDS[part.group(1)] >= _SCALE_WORDS[scale.group(1)]:
                    break
                value += int(more.group(1)) * _SCALE_WORDS[part.group(1)]
                scale, end = part, part.end()
        else:
            first = _SCALE_FIRST.search(folded[: match.start()])
            if first and base_language(language) == "my":  # "သိန်း ၅၀": the scale comes first
                value *= _SCALE_WORDS[first.group(1)]
                scaled = local = True
        currency = _currency_near(folded, match.start(), end)
        if currency is None and local:
            currency = _LOCAL_CURRENCY.get(base_language(language))
        strong = scaled or currency is not None
        if strong or value >= 10:
            candidates.append((strong, value, currency))
    if not candidates:
        return None, None
    preferred = [c for c in candidates if c[0]] or candidates
    _, value, currency = preferred[0]
    return value.quantize(Decimal(1)) if value == value.to_integral() else value, currency


def money_demand(text: str, language: str) -> MoneyDemand | None:
    """What someone asked the family to pay, and by when.

    Understands amounts with separators and scale words ("$5,000", "5k",
    "50 juta", "Rp 50.000.000", "2 แสน", "3万", "5 triệu", "သိန်း ၅၀",
    "1,5 juta"), currencies (USD/$, USDT, THB/บาท/฿, IDR/Rp, MMK/kyat, VND,
    PHP, CNY/元, KHR, LAK, BDT, MYR, INR, TRY, BRL, EUR) and deadlines
    ("by tomorrow", "besok", "พรุ่งนี้", "24 hours", "3 hari", "明天", "now").

    Args:
        text: The message as written.
        language: The conversation's language: a local scale word with no
            currency implies its currency ("50 juta" in id is IDR).

    Returns:
        The demand, or None when the text names no amount, currency or
        deadline.
    """
    folded = prepare(text)
    deadline, spans = _deadline(folded)
    masked = list(folded)
    for start, end in spans:
        masked[start:end] = " " * (end - start)
    amount, currency = _amount("".join(masked), language)
    if currency is None:
        currency = next(
            (code for code, free, _ in _CURRENCY_REGEX if free.search(folded)),
            None,
        )
    method = next((m for m, regex in _METHOD_REGEX.items() if regex.search(folded)), None)
    if amount is None and currency is None and deadline is None:
        return None
    return MoneyDemand(amount, currency, deadline, method)
