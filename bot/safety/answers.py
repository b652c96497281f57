"""Short yes/no answers to the safety questions, read by their first word.

The assistant's NLU decides most answers (affirm / deny). When it does not
("nggak, sy gk apa2" taken for "stop"), the safety form reads an answer that
opens with a yes or no word of any language (``data/safety/answers.yml``) as
that answer, so that a frightened person is not asked the same question again.
"No" words are tried first, and the longest word wins, so that "မဟုတ်" (not
so) is not read as "ဟုတ်" (yes).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.safety.commands import UNSPACED, fold
from bot.settings import ROOT

ANSWERS_FILE = ROOT / "data" / "safety" / "answers.yml"


@lru_cache(maxsize=1)
def _words(path: Path = ANSWERS_FILE) -> list[tuple[str, str, bool]]:
    """(folded word, "yes"/"no", unspaced script) by decreasing length, "no" first on ties."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    found = [
        (fold(str(word)), str(answer), language in UNSPACED)
        for language, answers in data.items()
        for answer, words in answers.items()
        for word in words
    ]
    return sorted(found, key=lambda w: (-len(w[0]), w[1] != "no"))


def yes_or_no(text: str) -> str | None:
    """``"yes"`` or ``"no"`` when ``text`` opens with such a word, else None."""
    folded = fold(text)
    if not folded:
        return None
    for word, answer, unspaced in _words():
        if not folded.startswith(word):
            continue
        rest = folded[len(word) :]
        if unspaced or not rest or not (rest[0].isalnum() or rest[0] == "'"):
            return answer
    return None
