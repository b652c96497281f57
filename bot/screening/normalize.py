"""Text normalisation before anything reads a message: Unicode NFC and Zawgyi.

Much Burmese text is still typed in the legacy Zawgyi encoding, which reuses
Unicode's Myanmar code points with other meanings. Google's detector
(``myanmartools``) gives the probability that a text is Zawgyi; above
:data:`ZAWGYI_THRESHOLD` it is converted to Unicode (``python-myanmar``) so that
patterns, the model and Rasa all read the same Burmese.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ZAWGYI_THRESHOLD = 0.95
_MYANMAR = range(0x1000, 0x10A0)


@dataclass(frozen=True)
class Normalized:
    text: str
    zawgyi: bool


@lru_cache(maxsize=1)
def _detector() -> Any:
    from myanmartools import ZawgyiDetector

    return ZawgyiDetector()


def zawgyi_probability(text: str) -> float:
    """Probability that ``text`` is Burmese in the Zawgyi encoding (0 without Burmese)."""
    if not any(ord(c) in _MYANMAR for c in text):
        return 0.0
    return float(_detector().get_zawgyi_probability(text))


def normalize(text: str) -> Normalized:
    """NFC, and Zawgyi converted to Unicode."""
    if zawgyi_probability(text) >= ZAWGYI_THRESHOLD:
        from myanmar.converter import convert

        return Normalized(unicodedata.normalize("NFC", convert(text, "zawgyi", "unicode")), True)
    return Normalized(unicodedata.normalize("NFC", text), False)
