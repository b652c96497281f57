"""Numbers in a family's report (issue 7): ages and minors; ransom demands with
amount, currency and deadline.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from actions.report_amounts import Age, MoneyDemand, money_demand, parse_age

# --- ages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("17", "en", Age(17)),
        ("17 years old", "en", Age(17)),
        ("seventeen", "en", Age(17)),
        ("umur 17", "id", Age(17)),
        ("umurnya 17 tahun", "id", Age(17)),
        ("dua puluh tahun", "id", Age(20)),
        ("อายุ 17", "th", Age(17)),
        ("อายุ ๑๗ ปี", "th", Age(17)),
        ("ยี่สิบห้าปี", "th", Age(25)),
        ("17岁", "zh", Age(17)),
        ("十七岁", "zh", Age(17)),
        ("mười bảy", "vi", Age(17)),
        ("hai mươi lăm tuổi", "vi", Age(25)),
        ("năm nay 17 tuổi", "vi", Age(17)),
        ("17 taong gulang", "tl", Age(17)),
        ("বয়স ১৭", "bn", Age(17)),
        ("17 yaşında", "tr", Age(17)),
        ("tem 17 anos", "pt", Age(17)),
        ("အသက် ၁၇ နှစ်", "my", Age(17)),
        ("អាយុ ១៧ ឆ្នាំ", "km", Age(17)),
        ("ອາຍຸ 17 ປີ", "lo", Age(17)),
        ("my son is 17, born in 2008", "en", Age(17)),
        ("He was 16 when he left 2 years ago", "en", Age(16)),
        # approximate
        ("around 20", "en", Age(20, approximate=True)),
        ("about twenty", "en", Age(20, approximate=True)),
        ("in his 20s", "en", Age(20, approximate=True)),
        ("20-an", "id", Age(20, approximate=True)),
        ("sekitar 20 tahun", "id", Age(20, approximate=True)),
        ("ประมาณ 20", "th", Age(20, approximate=True)),
        ("khoảng 20 tuổi", "vi", Age(20, approximate=True)),
        ("mga 20", "tl", Age(20, approximate=True)),
        ("二十多岁", "zh", Age(20, approximate=True)),
        ("17 or 18", "en", Age(17, approximate=True)),
        ("17-18", "en", Age(17, approximate=True)),
    ],
)
def test_ages(text: str, language: str, expected: Age) -> None:
    assert parse_age(text, language) == expected


@pytest.mark.parametrize(
    ("text", "language", "minor"),
    [
        ("17", "en", True),
        ("อายุ 16", "th", True),
        ("umur 18", "id", False),
        ("17 or 18", "en", True),  # a possible minor is never missed
        ("around 20", "en", False),
    ],
)
def test_minors_are_recognised(text: str, language: str, minor: bool) -> None:
    age = parse_age(text, language)
    assert age is not None
    assert age.is_minor is minor


@pytest.mark.parametrize(
    "text",
    ["0", "150", "born 2008", "no one knows", "tidak tahu", ""],
)
def test_answers_that_are_not_ages(text: str) -> None:
    assert parse_age(text, "en") is None


# --- money demands -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("they want $5,000 by tomorrow", "en", MoneyDemand(Decimal(5000), "USD", 24)),
        ("5000 USD in 24 hours", "en", MoneyDemand(Decimal(5000), "USD", 24)),
        ("$10k", "en", MoneyDemand(Decimal(10000), "USD", None)),
        ("5000 USDT", "en", MoneyDemand(Decimal(5000), "USDT", None, "crypto")),
        ("they want 3000 now", "en", MoneyDemand(Decimal(3000), None, 1)),
        ("minta 50 juta besok", "id", MoneyDemand(Decimal(50_000_000), "IDR", 24)),
        ("Rp 50.000.000", "id", MoneyDemand(Decimal(50_000_000), "IDR", None)),
        ("1,5 juta", "id", MoneyDemand(Decimal(1_500_000), "IDR", None)),
        (
            "mereka minta 20jt dalam 3 hari, transfer ke rekening",
            "id",
            MoneyDemand(Decimal(20_000_000), "IDR", 72, "bank_transfer"),
        ),
        ("RM5000", "ms", MoneyDemand(Decimal(5000), "MYR", None)),
        (
            "ต้องการเงิน 2 แสนบาท ภายในพรุ่งนี้",
            "th",
            MoneyDemand(Decimal(200_000), "THB", 24),
        ),
        ("2 แสน 5 หมื่น", "th", MoneyDemand(Decimal(250_000), "THB", None)),
        ("฿50000 วันนี้", "th", MoneyDemand(Decimal(50_000), "THB", 12)),
        ("要3万U，明天之前", "zh", MoneyDemand(Decimal(30_000), "USDT", 24)),
        ("三万五千元", "zh", MoneyDemand(Decimal(35_000), "CNY", None)),
        ("3万", "zh", MoneyDemand(Decimal(30_000), None, None)),
        ("20 triệu trong 2 ngày", "vi", MoneyDemand(Decimal(20_000_000), "VND", 48)),
        ("5000 đô ngày mai", "vi", MoneyDemand(Decimal(5000), "USD", 24)),
        ("သိန်း ၅၀", "my", MoneyDemand(Decimal(5_000_000), "MMK", None)),
        ("10000 kyat", "en", MoneyDemand(Decimal(10_000), "MMK", None)),
        ("২ লাখ টাকা কাল", "bn", MoneyDemand(Decimal(200_000), "BDT", 24)),
        ("₱50,000 bukas", "tl", MoneyDemand(Decimal(50_000), "PHP", 24)),
        ("3000 dolar yarın", "tr", MoneyDemand(Decimal(3000), "USD", 24)),
        ("R$ 10.000 amanhã", "pt", MoneyDemand(Decimal(10_000), "BRL", 24)),
        ("2000 ដុល្លារ ស្អែក", "km", MoneyDemand(Decimal(2000), "USD", 24)),
        ("they want money by tomorrow", "en", MoneyDemand(None, None, 24)),
    ],
)
def test_money_demands(text: str, language: str, expected: MoneyDemand) -> None:
    assert money_demand(text, language) == expected


def test_a_deadline_is_what_makes_a_demand_urgent() -> None:
    with_deadline = money_demand("they just called, they want money by tomorrow", "en")
    assert with_deadline is not None
    assert with_deadline.has_deadline
    without = money_demand("they asked for 5000 USD", "en")
    assert without is not None
    assert not without.has_deadline


@pytest.mark.parametrize("text", ["no money asked", "they called", "hello", ""])
def test_messages_without_a_demand(text: str) -> None:
    assert money_demand(text, "en") is None
