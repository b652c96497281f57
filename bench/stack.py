"""Start-up time of the whole stack and the latency of chat turns.

Usage: .venv/bin/python bench/stack.py [turns]

Starts `beacon up` on free ports with a temporary SQLite database (the model
must already be trained: `make train`), measures the time until /healthz
answers 200, then sends `turns` messages (greetings and the critical message,
alternating, each from a new sender) and reports median and p95 latency, and
the resident memory of each process. Stops the stack with SIGTERM.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e_stack import start_stack

MESSAGES = ("hello", "help they took my passport and beat me, I am bleeding", "สวัสดีค่ะ", "halo kak")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    turns = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp) / "var")
        try:
            startup = stack.wait_healthy()
            latencies = []
            for i in range(turns):
                started = time.perf_counter()
                stack.chat(f"bench-{i}", MESSAGES[i % len(MESSAGES)])
                latencies.append(time.perf_counter() - started)
            memory = {name: rss_mb(pid) for name, pid in stack.children().items()}
        finally:
            code = stack.stop()
    latencies.sort()
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    print(f"start-up until /healthz 200: {startup:.1f} s")
    print(
        f"chat turn ({turns} turns): median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )
    print("resident memory: " + ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(memory.items())))
    print(f"stopped with exit code {code}")


if __name__ == "__main__":
    main()
