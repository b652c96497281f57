"""Intent accuracy and macro-F1 per language, on examples never used for training.

Usage:
    .venv/bin/python bench/nlu.py [--model PATH] [--config config.yml] [--out docs/nlu]

Trains the NLU part of the pipeline (``config.yml``) on ``data/nlu/`` only,
or uses ``--model`` (a model trained on exactly ``data/nlu/``, e.g. the one
``beacon train`` made), then parses every example of
``data/eval/nlu/<lang>.yml`` (held apart: never in ``data/nlu/``; the script
refuses to run if one is) and prints, per language, intent accuracy and
macro-F1 over the intents, with the training time. Target: accuracy >= 0.90
in every language. With ``--out`` it also writes ``<out>/nlu.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
TARGET = 0.90


def examples(path: Path) -> list[tuple[str, str]]:
    """(text, intent) pairs of a Rasa NLU YAML file, entity annotations removed."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    found = []
    for block in data.get("nlu") or []:
        intent = block.get("intent")
        if not intent:
            continue
        for line in str(block.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                found.append((ANNOTATION.sub(r"\1", line[2:]).strip(), str(intent)))
    return found


def train(out: Path, config: Path) -> tuple[Path, float]:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "rasa"),
            "train",
            "nlu",
            "--config",
            str(config),
            "--nlu",
            str(ROOT / "data" / "nlu"),
            "--domain",
            str(ROOT / "domain.yml"),
            "--out",
            str(out),
            "--fixed-model-name",
            "nlu-bench",
        ],
        check=True,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return out / "nlu-bench.tar.gz", time.perf_counter() - started


async def predict(model: Path, texts: list[str]) -> list[str]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    intents = []
    for text in texts:
        parsed = await agent.parse_message(text)
        intents.append(str((parsed.get("intent") or {}).get("name") or ""))
    return intents


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    labels = sorted(set(gold))
    scores = []
    for label in labels:
        tp = sum(g == p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(p == label and g != label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an NLU model trained on data/nlu/ only")
    parser.add_argument("--out", type=Path, help="write <out>/nlu.json")
    parser.add_argument(
        "--config", type=Path, default=ROOT / "config.yml", help="pipeline to measure"
    )
    args = parser.parse_args()

    training = {
        text.casefold() for f in (ROOT / "data" / "nlu").glob("*.yml") for text, _ in examples(f)
    }
    held: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((ROOT / "data" / "eval" / "nlu").glob("*.yml")):
        pairs = examples(path)
        leaked = [t for t, _ in pairs if t.casefold() in training]
        if leaked:
            print(
                f"{path.name}: {len(leaked)} held-out examples are in the training data, "
                f"e.g. {leaked[0]!r}",
                file=sys.stderr,
            )
            return 2
        held[path.stem] = pairs
    if not held:
        print("no held-out examples in data/eval/nlu/", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        seconds = None
        model = args.model
        if model is None:
            model, seconds = train(Path(tmp), args.config.resolve())
        texts = [t for pairs in held.values() for t, _ in pairs]
        predicted = iter(asyncio.run(predict(model, texts)))

    results = {}
    confusions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for language, pairs in held.items():
        gold = [intent for _, intent in pairs]
        guess = [next(predicted) for _ in pairs]
        accuracy = sum(g == p for g, p in zip(gold, guess, strict=True)) / len(gold)
        for g, p in zip(gold, guess, strict=True):
            if g != p:
                confusions[language][f"{g} -> {p}"] += 1
        results[language] = {
            "examples": len(gold),
            "accuracy": round(accuracy, 3),
            "macro_f1": round(macro_f1(gold, guess), 3),
        }

    if seconds is not None:
        print(f"NLU training on data/nlu/: {seconds:.0f} s")
    print("| language | held-out examples | intent accuracy | macro-F1 | target met |")
    print("|---|---|---|---|---|")
    for language, r in results.items():
        met = "yes" if r["accuracy"] >= TARGET else "no"
        print(
            f"| {language} | {r['examples']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {met} |"
        )
    for language, errors in confusions.items():
        worst = sorted(errors.items(), key=lambda kv: -kv[1])[:3]
        print(f"{language}: most confused: " + ", ".join(f"{k} ({n})" for k, n in worst))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        report = {
            "training_seconds": seconds,
            "languages": results,
            "confusions": {k: dict(v) for k, v in confusions.items()},
        }
        (args.out / "nlu.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
