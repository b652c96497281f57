"""The family report's value parsers as a whole (issue 7): what they may import.

The behaviour of each parser is tested next to its module: test_report_dates,
test_report_amounts, test_report_contacts and test_report_answers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The entry point and the modules it re-exports, with their shared helpers.
MODULES = (
    "actions.report_values",
    "actions.report_dates",
    "actions.report_amounts",
    "actions.report_contacts",
    "actions.report_answers",
    "actions.report_text",
    "actions.report_words",
)


def test_the_module_loads_without_rasa() -> None:
    code = (
        f"import sys, {', '.join(MODULES)}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'rasa', 'rasa_sdk', 'bot'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
