"""Answers about the answers (issue 7): "I don't know" and skip in the served
languages, and corrections of an earlier answer.
"""

from __future__ import annotations

import pytest

from actions.report_amounts import Age, parse_age
from actions.report_answers import Correction, correction, dont_know

# --- "I don't know" and skip -------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I don't know",
        "i dont know",
        "IDK",
        "no idea",
        "tidak tahu",
        "ga tau",
        "gatau",
        "tak tahu",
        "ไม่รู้",
        "ไม่ทราบค่ะ",
        "không biết",
        "khong biet",
        "hindi ko alam",
        "di ko alam po",
        "不知道",
        "জানি না",
        "bilmiyorum",
        "não sei",
        "nao sei",
        "မသိဘူး",
        "មិនដឹងទេ",
        "ບໍ່ຮູ້",
        "ኣይፈልጥን",
        # skip words
        "skip",
        "Skip please",
        "lewati",
        "langkau",
        "ข้าม",
        "ข้ามครับ",
        "bỏ qua",
        "laktawan",
        "跳过",
        "এড়িয়ে যান",
        "atla",
        "pular",
        "ကျော်",
        "រំលង",
        "ຂ້າມ",
    ],
)
def test_dont_know_and_skip_in_every_language(text: str) -> None:
    assert dont_know(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "I know",
        "17",
        "passport taken",
        "ข้ามไปกัมพูชา",  # "crossed into Cambodia": ข้าม is a skip word only alone
        "အသက် ၂၀ ကျော်",  # "over 20": ကျော် is a skip word only alone
        "biết",
        "知道",
        "geçen hafta",
        "",
    ],
)
def test_answers_are_not_mistaken_for_dont_know(text: str) -> None:
    assert dont_know(text) is False


# --- corrections -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "remainder"),
    [
        ("no, he is 17", "he is 17"),
        ("No he is 17", "he is 17"),
        ("sorry I mean 16", "16"),
        ("actually he went to Myawaddy", "he went to Myawaddy"),
        ("bukan, umurnya 17", "umurnya 17"),
        ("salah, 17 tahun", "17 tahun"),
        ("tidak, 17", "17"),
        ("ไม่ใช่ อายุ 17", "อายุ 17"),
        ("ไม่ใช่ครับ อายุ 17", "อายุ 17"),
        ("không phải, nó 17 tuổi", "nó 17 tuổi"),
        ("ko phai 17 tuoi", "17 tuoi"),
        ("mali, 17 siya", "17 siya"),
        ("hindi po, 17 siya", "17 siya"),
        ("不是，他17岁", "他17岁"),
        ("不对 是17岁", "是17岁"),
        ("ভুল, ১৭ বছর", "১৭ বছর"),
        ("hayır, 17", "17"),
        ("na verdade ele tem 17", "ele tem 17"),
        ("မဟုတ်ဘူး အသက် ၁၇", "အသက် ၁၇"),
        ("មិនមែនទេ អាយុ ១៧", "អាយុ ១៧"),
        ("ບໍ່ແມ່ນ ອາຍຸ 17", "ອາຍຸ 17"),
    ],
)
def test_corrections_give_the_corrected_answer(text: str, remainder: str) -> None:
    assert correction(text) == Correction(remainder)


def test_a_correction_feeds_the_parsers() -> None:
    fixed = correction("bukan, umurnya 16")
    assert fixed is not None
    assert parse_age(fixed.text, "id") == Age(16)


@pytest.mark.parametrize(
    "text",
    [
        "he is 17",
        "no",
        "no.",
        "no one asked",
        "tidak ada yang minta uang",  # "nobody asked for money" is an answer
        "hindi ko alam",  # "I don't know", not a correction
        "nó 17 tuổi",  # Vietnamese "he is 17": "nó" is not "no"
    ],
)
def test_answers_that_are_not_corrections(text: str) -> None:
    assert correction(text) is None
