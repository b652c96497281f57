"""Screening speed and memory, single-threaded, in one process.

Usage: .venv/bin/python bench/screening.py [rounds]

Screens every labelled message in data/screening/train and data/eval/dev
(all fourteen languages) `rounds` times after one warm-up round, and reports
throughput, p50/p99 latency per message and the process's peak resident memory.
Targets: >= 500 messages/s, p99 <= 10 ms, <= 300 MB.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.screening import screen
from bot.screening.model import read_jsonl, training_files


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    texts = [str(row["text"]) for row in read_jsonl(training_files())]
    if not texts:
        raise SystemExit("no labelled messages to screen")
    for text in texts:  # warm-up: load patterns, detector and model
        screen(text)
    latencies = []
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            t0 = time.perf_counter()
            screen(text)
            latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(latencies)} messages ({len(texts)} distinct, {rounds} rounds)")
    print(f"throughput: {len(latencies) / elapsed:.0f} messages/s (single thread)")
    print(f"latency: p50 {statistics.median(latencies) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")
    print(f"peak resident memory: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
