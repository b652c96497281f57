"""Answers about the answers: "I don't know", "skip", and corrections.

The family report form calls these before or instead of the value parsers:

- :func:`dont_know`: "I don't know" or "skip" in the fourteen served languages;
- :func:`correction`: "no, he is 17" -> the corrected answer "he is 17".

The words are in ``data/report/dont_know.yml`` and ``data/report/corrections.yml``;
text is folded as :mod:`actions.report_text` describes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from actions.report_text import TRIM, alternation, fold, fold_all, fold_map, phrase_regex
from actions.report_words import word_list

__all__ = ["Correction", "correction", "dont_know"]


@dataclass(frozen=True)
class Correction:
    """An answer that corrects an earlier one.

    Attributes:
        text: The corrected answer, as written, without the correction marker
            ("no, he is 17" -> "he is 17"); feed it to the parsers.
    """

    text: str


# ---------------------------------------------------------------------------
# "I don't know", skip
# ---------------------------------------------------------------------------

_DONT_KNOW: dict[str, list[str]] = word_list("dont_know")["phrases"]
_SKIP_ALONE: list[str] = word_list("dont_know")["alone"]
_POLITE: dict[str, list[str]] = word_list("dont_know")["polite_endings"]
_POLITE_END = re.compile(
    r"(?:\s+(?:"
    + "|".join(re.escape(w) for w in _POLITE["spaced"])
    + r")|\s*(?:"
    + "|".join(re.escape(w) for w in _POLITE["unspaced"])
    + r"))+$"
)

_DONT_KNOW_RE = phrase_regex(w for words in _DONT_KNOW.values() for w in fold_all(words))
_SKIP_ALONE_SET = frozenset(fold_all(_SKIP_ALONE))


def dont_know(text: str) -> bool:
    """Whether the answer is "I don't know", "not sure" or "skip".

    Args:
        text: The answer as written, in any of the fourteen served languages.

    Returns:
        True for "I don't know", "tidak tahu", "ga tau", "ไม่รู้", "không
        biết", "hindi ko alam", "不知道", "জানি না", "bilmiyorum", "não sei",
        "မသိဘူး", "មិនដឹង", "ບໍ່ຮູ້", "ኣይፈልጥን" and the skip words ("skip",
        "lewati", "ข้าม" ...). A message that also holds a value ("not sure,
        maybe 17") is True too: try the value parser first.
    """
    folded = fold(text).strip(TRIM)
    if not folded:
        return False
    bare = _POLITE_END.sub("", folded).strip(TRIM)
    if folded in _SKIP_ALONE_SET or bare in _SKIP_ALONE_SET:
        return True
    return _DONT_KNOW_RE.search(folded) is not None


# ---------------------------------------------------------------------------
# Corrections
# ---------------------------------------------------------------------------


_CORRECTIONS = word_list("corrections")
#: Markers that open a correction by themselves ("bukan", "ไม่ใช่", "不是").
_CORRECTION_STRONG: dict[str, list[str]] = _CORRECTIONS["openers"]
#: Plain "no": a correction only when a comma or a full stop follows, or a
#: number ("no he is 17"), since "tidak ada" is an answer, not a correction.
_CORRECTION_WEAK: list[str] = _CORRECTIONS["weak"]
_CORRECTION_PARTICLES: list[str] = _CORRECTIONS["particles"]

_STRONG_RE = re.compile(
    alternation(w for words in _CORRECTION_STRONG.values() for w in fold_all(words))
)
_WEAK_RE = re.compile(alternation(fold_all(_CORRECTION_WEAK)))
#: The weak markers as typed: folding makes Vietnamese "nó" (he) read "no".
_WEAK_AS_TYPED = frozenset(_CORRECTION_WEAK)
_PARTICLE_RE = re.compile(r"\s*(?:" + alternation(fold_all(_CORRECTION_PARTICLES)) + ")")


def correction(text: str) -> Correction | None:
    """The corrected answer, when ``text`` corrects an earlier one.

    Recognises a correction marker at the start ("no,", "sorry", "actually",
    "bukan", "salah", "ไม่ใช่", "không phải", "mali", "不是", "মানে", "hayır,"
    ...) followed by the new answer. A bare "no"/"tidak"/"hindi" counts only
    when a comma or a full stop follows it or the rest holds a number, so
    "tidak ada yang minta uang" is not read as a correction. Callers should act
    on it only when the remainder parses as a value for the slot being fixed.

    Args:
        text: The answer as written.

    Returns:
        The remainder after the marker(s), as written; None if ``text`` is no
        correction, holds nothing after the marker, or is itself an "I don't
        know" phrase ("hindi ko alam").
    """
    folded, where = fold_map(text)
    pos = len(folded) - len(folded.lstrip(" \t\r\n,.;:!-~"))
    found = strong = separated = False
    while True:
        marker = _STRONG_RE.match(folded, pos)
        if marker is not None:
            strong = True
        else:
            # A plain "no" only opens the answer: "không phải, nó 17 tuổi".
            marker = None if found else _WEAK_RE.match(folded, pos)
            if marker is None:
                break
            typed = text[where[marker.start()] : where[marker.end() - 1] + 1].casefold()
            if typed not in _WEAK_AS_TYPED:
                break
        found = True
        pos = marker.end()
        particle = _PARTICLE_RE.match(folded, pos)
        if particle is not None:
            pos = particle.end()
        rest = folded[pos:].lstrip(" \t\r\n,.;:!-~")
        separated = separated or bool(
            re.search(r"[,.;:!\-~]", folded[pos : len(folded) - len(rest)])
        )
        pos = len(folded) - len(rest)
    if not found or pos >= len(folded):
        return None
    start = _DONT_KNOW_RE.match(folded)
    if start is not None and start.end() > 0 and not separated:
        return None
    rest = text[where[pos] :].strip()
    if not any(c.isalnum() for c in rest):
        return None
    if not strong and not separated and not re.search(r"\d", folded[pos:]):
        return None
    return Correction(rest)
