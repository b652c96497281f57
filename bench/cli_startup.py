"""How long `beacon queue list --json` takes, from process start to exit.

Usage: .venv/bin/python bench/cli_startup.py [runs]

Runs the command against a temporary SQLite database holding 200 open cases
and prints the median and worst wall time. Target: under 1 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEACON = str(Path(sys.executable).parent / "beacon")


def seed(env: dict[str, str]) -> None:
    """Fills the database with 200 open cases, in this process."""
    os.environ.update(env)
    from bot.db import session_scope
    from bot.db.migrate import upgrade
    from bot.handoff import queue

    upgrade()
    with session_scope() as session:
        for i in range(200):
            found = queue.record_inbound(
                session, channel="webchat", address=f"a{i}", text="x", external_id=None
            )
            queue.escalate(
                session,
                found.contact.public_id,
                urgency=("medium", "high", "critical")[i % 3],
                indicators=["deception"],
                language="en",
                reporter="self",
                channel="webchat",
            )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, BEACON_VAR_DIR=tmp, BEACON_DATABASE_URL=f"sqlite:///{tmp}/b.db")
        seed(env)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(
                [BEACON, "queue", "list", "--json"],
                env=env,
                check=True,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - started)
    print(
        f"beacon queue list --json, 200 open cases, {runs} runs: "
        f"median {statistics.median(times):.3f} s, max {max(times):.3f} s"
    )


if __name__ == "__main__":
    main()
