"""Every user-facing string comes from complete catalogs, in every served language."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.i18n import available_languages, negotiate, pgettext, ui_strings
from bot.i18n.nlg import render, responses
from bot.settings import ROOT

LOCALES = ROOT / "locales"
SERVED = ("en", "id", "ms", "th", "my", "km", "lo", "vi", "tl", "zh", "bn", "tr", "pt", "ti")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalog(language: str):
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh)


def template_ids() -> set[tuple[str | None, str]]:
    with (LOCALES / "messages.pot").open("rb") as fh:
        return {(m.context, m.id) for m in read_po(fh) if m.id}


def test_the_template_is_up_to_date_with_the_sources(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pybabel"),
            "-q",
            "extract",
            "-F",
            "babel.cfg",
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    with fresh.open("rb") as fh:
        extracted = {(m.context, m.id) for m in read_po(fh) if m.id}
    assert extracted == template_ids(), (
        "run `make catalogs` after changing domain.yml or locales/ui.yml"
    )


@pytest.mark.parametrize("language", SERVED)
def test_each_served_catalog_is_complete_without_fuzzy_entries(language: str) -> None:
    entries = {(m.context, m.id): m for m in catalog(language) if m.id}
    missing = template_ids() - entries.keys()
    assert not missing, f"{language}: missing {sorted(missing)}"
    for key, message in entries.items():
        assert message.string, f"{language}: untranslated {key}"
        assert not message.fuzzy, f"{language}: fuzzy {key}"
        assert sorted(PLACEHOLDER.findall(message.id)) == sorted(
            PLACEHOLDER.findall(message.string)
        ), f"{language}: placeholders differ in {key}"


def test_every_served_language_is_compiled_and_available() -> None:
    assert set(SERVED) <= set(available_languages())


@pytest.mark.parametrize("language", [lang for lang in SERVED if lang != "en"])
def test_every_response_renders_translated(language: str) -> None:
    for name in responses():
        rendered = render(name, language, "webchat", {})
        english = render(name, "en", "webchat", {})
        assert rendered["text"] and rendered["text"] != english["text"], f"{language}: {name}"


def test_unknown_languages_fall_back_to_english() -> None:
    assert pgettext("xx", "utter_greet", "Hello") == "Hello"
    assert negotiate("fr-FR,fr;q=0.9") == "en"
    assert negotiate("id-ID,id;q=0.9") == "id"
    assert ui_strings("th")["send"] == "ส่ง"


def _user_facing_literals(path: Path) -> list[str]:
    """English sentences given to a reply, a message or a page in Python code."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in {"utter_message"}:
            for keyword in node.keywords:
                if keyword.arg == "text" and isinstance(keyword.value, ast.Constant):
                    found.append(str(keyword.value.value))
    return found


def test_actions_never_send_an_english_literal() -> None:
    offenders = {
        str(path.relative_to(ROOT)): _user_facing_literals(path)
        for path in sorted((ROOT / "actions").glob("*.py"))
    }
    assert not any(offenders.values()), offenders


def test_the_glossary_has_a_section_for_every_served_language() -> None:
    glossary = (LOCALES / "GLOSSARY.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## .*\((\w+)\)\s*$", glossary, flags=re.MULTILINE))
    assert set(SERVED) <= sections, set(SERVED) - sections


def test_the_english_catalog_says_exactly_the_source_text() -> None:
    different = [(m.context, m.id) for m in catalog("en") if m.id and m.string != m.id]
    assert not different, f"en: msgstr differs from msgid in {different}"
