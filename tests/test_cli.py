"""The ``beacon`` command as an operator and other tools use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.db import session_scope
from bot.handoff import queue
from bot.settings import ROOT

BEACON = str(Path(sys.executable).parent / "beacon")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BEACON, *args], capture_output=True, text=True, env=dict(os.environ), cwd=ROOT, check=True
    )


def test_queue_list_json_prints_the_open_cases(db_url: str) -> None:
    with session_scope() as session:
        found = queue.record_inbound(
            session, channel="webchat", address="x", text="help", external_id=None
        )
        queue.escalate(
            session,
            found.contact.public_id,
            urgency="critical",
            indicators=["violence"],
            language="th",
            reporter="self",
            channel="webchat",
        )
    cases = json.loads(run("queue", "list", "--json").stdout)
    assert len(cases) == 1
    assert cases[0]["urgency"] == "critical"
    assert cases[0]["indicators"] == ["violence"]
    assert cases[0]["language"] == "th"
    assert cases[0]["status"] == "queued"
    assert "help" not in json.dumps(cases), "no message text in the queue listing"


def test_queue_list_on_an_empty_database_is_an_empty_array() -> None:
    assert json.loads(run("queue", "list", "--json").stdout) == []
    assert "No open cases" in run("queue", "list").stdout


@pytest.mark.parametrize("argv", [["queue", "list", "--json"], ["screen", "they took my passport"]])
def test_database_and_screening_commands_import_neither_rasa_nor_tensorflow(
    argv: list[str],
) -> None:
    code = (
        f"import sys; from bot.cli import main; main({argv!r}); "
        "heavy = ('rasa', 'tensorflow', 'rasa_sdk'); "
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_screen_prints_the_result() -> None:
    out = json.loads(
        run("screen", "--json", "help they took my passport and beat me, I am bleeding").stdout
    )
    assert out["urgency"] == "critical"
    assert {"documents_retained", "violence", "medical_emergency"} == set(out["indicators"])
    human = run("screen", "ช่วยด้วย เลือดออก").stdout
    assert "language:   th" in human and "critical" in human


def test_an_unknown_command_fails_with_usage() -> None:
    result = subprocess.run([BEACON, "nonsense"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_up_refuses_to_start_on_a_busy_port_and_says_which() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, BEACON_PORT=str(port))
        result = subprocess.run([BEACON, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"BEACON_PORT={port}" in result.stderr
