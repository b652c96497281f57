"""The whole first conversation in each of the fourteen languages, on the real stack.

For every language a worker greets Beacon, erases the chat (the web chat page
is told to clear itself), asks for help and answers the safety questions
until the case is handed to a person, all through ``POST /webchat/messages``.
The person's words come from the language's test story
(``tests/stories/lang_<xx>.yml``, the safety-form story) and held-out
examples (``data/eval/nlu/<xx>.yml``): none of them is training data. Every
reply must be one of Beacon's responses rendered in that language (not
English, unless the language is English), and the case must reach the queue
with the person's language.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from bot.i18n.nlg import render, responses
from bot.safety.commands import word
from bot.settings import ROOT
from tests.e2e_stack import Stack, start_stack

pytestmark = pytest.mark.e2e

LANGUAGES = ("en", "id", "ms", "th", "my", "km", "lo", "vi", "tl", "zh", "bn", "tr", "pt", "ti")
ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("languages") / "var")
    try:
        running.wait_healthy()
        yield running
    finally:
        running.stop()


def said(language: str) -> dict[str, str]:
    """Every text Beacon can say in ``language`` -> the response it belongs to."""
    texts = {}
    values = {"erase": word(language, "erase").upper(), "yes": word(language, "confirm").upper()}
    for name in responses():
        texts[str(render(name, language, "webchat", values)["text"])] = name
    return texts


def safety_story(language: str) -> list[str]:
    """The person's messages of the language's safety-questions story."""
    data = yaml.safe_load((ROOT / "tests" / "stories" / f"lang_{language}.yml").read_text())
    for story in data["stories"]:
        steps = story["steps"]
        if any(step.get("action") == "safety_form" for step in steps) and (
            steps[0].get("intent") == "seek_help"
        ):
            return [ANNOTATION.sub(r"\1", s["user"]).strip() for s in steps if "user" in s]
    raise AssertionError(f"tests/stories/lang_{language}.yml has no safety-questions story")


def held_out(language: str, intent: str) -> str:
    data = yaml.safe_load((ROOT / "data" / "eval" / "nlu" / f"{language}.yml").read_text())
    for block in data["nlu"]:
        if block.get("intent") == intent:
            first = str(block["examples"]).strip().splitlines()[0]
            return ANNOTATION.sub(r"\1", first.removeprefix("- ")).strip()
    raise AssertionError(f"data/eval/nlu/{language}.yml has no {intent} example")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_worker_holds_the_first_conversation_in_their_language(
    stack: Stack, language: str
) -> None:
    own = said(language)
    english = said("en")
    sender = f"lang-{language}"
    turns: list[tuple[str, list[dict[str, Any]]]] = []

    def chat(words: str) -> list[str]:
        replies = stack.chat(sender, words)
        turns.append((words, replies))
        names = []
        for reply in replies:
            text = reply["text"]
            assert text in own, f"{language}: {words!r} got a reply not in {language}: {text!r}"
            if language != "en":
                assert text not in english, f"{language}: {words!r} was answered in English"
            names.append(own[text])
        return names

    greeted = chat(held_out(language, "greet"))
    # An unclear first message may also get the language menu (its own names, untranslated).
    assert greeted[0] == "utter_greet" and set(greeted[1:]) <= {"utter_language_menu"}
    # Asking to erase the chat: on the web chat the page clears itself and leaves
    # (like its "Leave quickly" button), and Beacon is quiet until the person writes.
    erased = stack.chat(sender, held_out(language, "erase_data"))
    assert erased == [{"id": None, "text": "", "buttons": [], "erase": True}], (
        f"{language}: erasing got {erased}"
    )
    messages = safety_story(language)
    asked = [name for words in messages for name in chat(words)]
    # A request for help that screening already finds urgent (e.g. "they won't let me
    # go") is handed to a person at once, and the questions follow while they wait.
    questions = [name for name in asked if not name.startswith("utter_handoff")]
    assert questions == [
        "utter_ask_safe_to_talk",
        "utter_ask_location",
        "utter_ask_hurt",
        "utter_ask_passport_held",
    ], f"{language}: the safety questions went {asked} after {[w for w, _ in turns]}"
    assert asked[-1].startswith("utter_handoff"), f"{language}: no handoff reply in {asked}"
    cases = json.loads(stack.beacon("queue", "list", "--json"))
    mine = [c for c in cases if c["language"] == language and c["reporter"] == "self"]
    assert mine, f"{language}: no queued case in the person's language"
