"""Safety commands a person can write at any moment: erase, pause, delete my data.

The words are data, in ``data/safety/commands.yml``, one list per language.
A message is a command only when, casefolded and without the spaces and
punctuation around it, it is one of the words: "hapus" erases, "tolong hapus
pesan kemarin" does not. Every language's words are accepted whatever the
conversation's language, because a person may write a command in the
language of the app rather than of the chat.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.settings import ROOT

COMMANDS_FILE = ROOT / "data" / "safety" / "commands.yml"
#: Scripts written without spaces between words: "where" is matched as a substring.
UNSPACED = frozenset({"th", "my", "km", "lo", "zh"})
#: Punctuation and symbols around a command ("erase!", "¿apagar?", "。").
_EDGES = re.compile(r"^[\s\W_]+|[\s\W_]+$", re.UNICODE)
_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w\s']")


class Command(str, enum.Enum):
    ERASE = "erase"
    PAUSE = "pause"
    DELETE = "delete"


def fold(text: str) -> str:
    """A message as commands are compared: NFC, casefolded, spaces squeezed, edges trimmed.

    A leading ``/`` is kept, so that ``/erase`` matches as written; ``erase!`` matches ``erase``.
    """
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()
    slash = text.startswith("/")
    core = _EDGES.sub("", text)
    return f"/{core}" if slash and core else core


@lru_cache(maxsize=1)
def table(path: Path = COMMANDS_FILE) -> dict[str, dict[str, list[str]]]:
    """The command words by language, then by kind, as written in the file."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        str(lang): {str(kind): [str(w) for w in words or []] for kind, words in kinds.items()}
        for lang, kinds in data.items()
    }


@lru_cache(maxsize=1)
def _lookup() -> dict[str, Command]:
    found: dict[str, Command] = {}
    # Deletion phrases first: "hapus data saya" must not be read as "hapus" by any later rule.
    for kind in (Command.DELETE, Command.ERASE, Command.PAUSE):
        for kinds in table().values():
            for word in kinds.get(kind.value, []):
                found.setdefault(fold(word), kind)
    return found


@lru_cache(maxsize=1)
def _yes() -> frozenset[str]:
    return frozenset(fold(w) for kinds in table().values() for w in kinds.get("confirm", []))


def command_in(text: str) -> Command | None:
    """The safety command ``text`` is, or None."""
    folded = fold(text)
    return _lookup().get(folded) if folded else None


def language_of(text: str, current: str | None) -> str | None:
    """The language whose command word ``text`` is: ``current`` if it has it, else the first.

    A command answers in the language it was written in ("hapus data saya" in
    Indonesian) even when the conversation so far was in another.
    """
    folded = fold(text)
    having = [
        lang
        for lang, kinds in table().items()
        if any(folded == fold(w) for words in kinds.values() for w in words)
    ]
    if not having:
        return None
    return current if current in having else having[0]


def is_yes(text: str) -> bool:
    """Whether ``text`` is a "yes" in any language (to confirm a deletion)."""
    return fold(text) in _yes()


def word(language: str | None, kind: str) -> str:
    """The word the bot names for ``kind`` in ``language`` (English when it has none)."""
    words = table().get(language or "en", {}).get(kind) or table()["en"][kind]
    return words[0]


def asks_where(text: str) -> bool:
    """Whether ``text`` asks where someone is, in any language."""
    folded = fold(text)
    if not folded:
        return False
    tokens = " " + _NON_WORD.sub(" ", folded) + " "
    for lang, kinds in table().items():
        for where in kinds.get("where", []):
            needle = fold(where)
            if lang in UNSPACED:
                if needle in folded:
                    return True
            elif f" {needle} " in tokens:
                return True
    return False
