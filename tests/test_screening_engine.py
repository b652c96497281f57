"""The screening engine's plumbing: Zawgyi, the model, the JSON-lines and eval commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bot.screening import screen
from bot.screening.model import train
from bot.screening.normalize import normalize, zawgyi_probability
from bot.settings import ROOT

BEACON = str(Path(sys.executable).parent / "beacon")
# "they took my passport" / "help, I am bleeding" in Burmese, typed in Zawgyi.
ZAWGYI_PASSPORT = "ကြၽန္ေတာ့်ပတ္စ္ပို႔ကို သူတို႔ယူထားတယ္"
UNICODE_PASSPORT = "ကျွန်တော့်ပတ်စ်ပို့ကို သူတို့ယူထားတယ်"
ZAWGYI_BLEEDING = "ကယ္ပါ ေသြးထြက္ေနတယ္"


def test_zawgyi_is_detected_and_converted_before_anything_reads_it() -> None:
    assert zawgyi_probability(ZAWGYI_PASSPORT) > 0.95
    assert zawgyi_probability(UNICODE_PASSPORT) < 0.05
    converted = normalize(ZAWGYI_PASSPORT)
    assert converted.zawgyi and converted.text == UNICODE_PASSPORT
    assert not normalize(UNICODE_PASSPORT).zawgyi
    assert normalize("hello").text == "hello"


def test_a_zawgyi_message_is_screened_like_its_unicode_form() -> None:
    zawgyi, unicode = screen(ZAWGYI_BLEEDING), screen(normalize(ZAWGYI_BLEEDING).text)
    assert zawgyi.zawgyi and zawgyi.language == "my"
    assert (zawgyi.indicators, zawgyi.urgency) == (unicode.indicators, unicode.urgency)


def test_the_model_learns_phrasings_from_labelled_examples() -> None:
    rows = [
        {
            "text": f"the bosses grabbed my travel booklet {i}",
            "indicators": ["documents_retained"],
            "urgency": "high",
        }
        for i in range(6)
    ] + [
        {"text": f"good evening friend number {i}", "indicators": [], "urgency": "low"}
        for i in range(6)
    ]
    model = train(rows)
    assert model.probabilities("the bosses grabbed my travel booklet")["documents_retained"] > 0.5
    assert model.probabilities("good evening friend")["documents_retained"] < 0.5
    assert "urgent" in model.fired("the bosses grabbed my travel booklet")


def test_screen_jsonl_is_a_contract_of_exactly_five_keys() -> None:
    lines = [
        {"id": 1, "text": "help they took my passport and beat me, I am bleeding"},
        {"id": "b", "text": "tolong", "context": {"calling_code": "62"}},
        {"id": "c", "text": "สวัสดีค่ะ"},
    ]
    stdin = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    result = subprocess.run(
        [BEACON, "screen", "--jsonl"],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [set(o) for o in out] == [{"id", "language", "indicators", "urgency", "reporter"}] * 3
    assert [o["id"] for o in out] == [1, "b", "c"]
    assert out[0]["urgency"] == "critical"
    assert out[1]["language"] == "id"
    assert out[2]["language"] == "th"


def test_screen_jsonl_reports_a_bad_line_and_goes_on() -> None:
    result = subprocess.run(
        [BEACON, "screen", "--jsonl"],
        input='not json\n{"id": 2, "text": "hello"}\n',
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert "error" in first
    assert second["id"] == 2 and second["urgency"] == "low"
    assert result.returncode == 1


def test_eval_reports_per_language_and_writes_json_and_a_chart(tmp_path: Path) -> None:
    labelled = tmp_path / "set.jsonl"
    rows = [
        {
            "id": "1",
            "text": "help they took my passport and beat me, I am bleeding",
            "language": "en",
            "indicators": ["documents_retained", "violence", "medical_emergency"],
            "urgency": "critical",
            "reporter": "self",
        },
        {
            "id": "2",
            "text": "hello, what is this?",
            "language": "en",
            "indicators": [],
            "urgency": "low",
            "reporter": "unknown",
        },
        {
            "id": "3",
            "text": "สวัสดีค่ะ",
            "language": "th",
            "indicators": [],
            "urgency": "low",
            "reporter": "unknown",
        },
    ]
    labelled.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8"
    )
    out = tmp_path / "report"
    result = subprocess.run(
        [BEACON, "eval", str(labelled), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert "critical_recall" in result.stdout and "th" in result.stdout
    report = json.loads((out / "eval.json").read_text())
    assert report["languages"]["en"]["critical_recall"] == 1.0
    assert report["languages"]["en"]["false_escalation"] == 0.0
    assert report["languages"]["all"]["n"] == 3
    assert (out / "eval-recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_refuses_malformed_data_with_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "text": "hi"}\nnot json\n', encoding="utf-8")
    result = subprocess.run(
        [BEACON, "eval", str(bad), "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "bad labelled data" in result.stderr and "bad.jsonl:2" in result.stderr
    assert "Traceback" not in result.stderr
