"""``beacon sms-report``: how many SMS segments each response takes, in every language.

Every response of ``domain.yml`` is rendered as the SMS channel renders it
(its ``channel: sms`` variation where it has one) in every language with a
compiled catalog, and counted (:mod:`bot.channels.segments`). The report is
a Markdown table, one row per response and one column per language, and a
list of the responses over the target: those need a shorter ``channel: sms``
variation, or a shorter translation of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.channels.segments import Segments, count
from bot.channels.sms_inbound import KEYWORD_VALUES
from bot.i18n import SOURCE_LANGUAGE, available_languages
from bot.i18n.nlg import render, responses

#: The most segments a bot message should take.
TARGET_SEGMENTS = 3
SHORT_ENCODING = {"GSM-7": "G", "UCS-2": "U"}


@dataclass(frozen=True)
class Cell:
    """One response in one language, as an SMS."""

    response: str
    language: str
    text: str
    segments: Segments
    translated: bool


def measure(languages: tuple[str, ...] | None = None) -> list[Cell]:
    """Every response in every language (default: those with a compiled catalog)."""
    cells = []
    for language in languages or available_languages():
        for name in responses():
            text = str(render(name, language, "sms", dict(KEYWORD_VALUES))["text"])
            english = str(render(name, SOURCE_LANGUAGE, "sms", dict(KEYWORD_VALUES))["text"])
            translated = language == SOURCE_LANGUAGE or text != english
            cells.append(Cell(name, language, text, count(text), translated))
    return cells


def markdown(cells: list[Cell], target: int = TARGET_SEGMENTS) -> str:
    """The report: the table, then the responses over ``target`` segments."""
    languages = list(dict.fromkeys(c.language for c in cells))
    names = list(dict.fromkeys(c.response for c in cells))
    found = {(c.response, c.language): c for c in cells}
    lines = [
        "# SMS segments per response and language",
        "",
        "Written by `beacon sms-report` from `domain.yml` and the catalogs in `locales/`;",
        "do not edit by hand. Each cell is the number of SMS segments the response takes",
        "on the SMS channel (its `channel: sms` variation where it has one) and its",
        "encoding: `G` GSM-7 (160 characters in one SMS, 153 per segment when longer),",
        "`U` UCS-2 (70, then 67: any character outside the GSM alphabet, such as Thai,",
        "Burmese or a curly quote, makes the whole message UCS-2). `*`: not translated",
        f"yet (the English text is sent). **Bold**: over the target of {target} segments.",
        "",
        "| response | " + " | ".join(languages) + " |",
        "|---|" + "---|" * len(languages),
    ]
    for name in names:
        row = []
        for language in languages:
            cell = found[(name, language)]
            text = f"{cell.segments.segments} {SHORT_ENCODING[cell.segments.encoding]}"
            if not cell.translated:
                text += "*"
            row.append(f"**{text}**" if cell.segments.segments > target else text)
        lines.append(f"| `{name}` | " + " | ".join(row) + " |")
    over = [c for c in cells if c.segments.segments > target]
    lines += ["", f"## Over {target} segments", ""]
    if not over:
        lines.append("None.")
    for cell in sorted(over, key=lambda c: (c.response, c.language)):
        lines.append(
            f"- `{cell.response}` in `{cell.language}`: {cell.segments.segments} segments "
            f"({cell.segments.units} {cell.segments.encoding} units)"
        )
    return "\n".join(lines) + "\n"


def write_report(path: Path, target: int = TARGET_SEGMENTS) -> list[Cell]:
    """Writes the report to ``path``; returns the cells over ``target``."""
    cells = measure()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(cells, target), encoding="utf-8")
    return [c for c in cells if c.segments.segments > target]
