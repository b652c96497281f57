"""``beacon eval``: how well screening does on labelled messages, per language.

Metrics, per language and overall:

* ``language_accuracy``: detected language equals the label;
* ``critical_recall``: share of ``critical`` messages screened ``critical``;
* ``urgent_recall``: share of ``critical``/``high`` messages screened at least ``high``;
* ``false_escalation``: share of ``low`` messages screened ``high`` or ``critical``;
* ``indicator_f1``: micro-F1 over (message, indicator) pairs.

The report is printed as a table and written as JSON and as a PNG chart.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.screening import ScreeningContext, screen, urgency_rank
from bot.screening.model import read_jsonl

TARGETS: dict[str, tuple[str, float]] = {
    "language_accuracy": (">=", 0.97),
    "critical_recall": (">=", 0.95),
    "urgent_recall": (">=", 0.95),
    "false_escalation": ("<=", 0.05),
    "indicator_f1": (">=", 0.85),
}


@dataclass
class Tally:
    n: int = 0
    language_ok: int = 0
    critical: int = 0
    critical_found: int = 0
    urgent: int = 0
    urgent_found: int = 0
    low: int = 0
    low_escalated: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: dict[str, Any], result: dict[str, Any]) -> None:
        self.n += 1
        self.language_ok += result["language"] == row["language"]
        gold, got = urgency_rank(row["urgency"]), urgency_rank(result["urgency"])
        if gold == 3:
            self.critical += 1
            self.critical_found += got == 3
        if gold >= 2:
            self.urgent += 1
            self.urgent_found += got >= 2
        if gold == 0:
            self.low += 1
            self.low_escalated += got >= 2
        expected, found = set(row.get("indicators") or []), set(result["indicators"])
        self.tp += len(expected & found)
        self.fp += len(found - expected)
        self.fn += len(expected - found)
        if (gold >= 2 and got < gold) or (gold == 0 and got >= 2) or expected != found:
            self.misses.append({"id": row.get("id"), "expected": row["urgency"], **result})

    def metrics(self) -> dict[str, float | int | None]:
        def ratio(a: int, b: int) -> float | None:
            return round(a / b, 3) if b else None

        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "n": self.n,
            "language_accuracy": ratio(self.language_ok, self.n),
            "critical_recall": ratio(self.critical_found, self.critical),
            "urgent_recall": ratio(self.urgent_found, self.urgent),
            "false_escalation": ratio(self.low_escalated, self.low),
            "indicator_f1": round(f1, 3),
        }


def evaluate(files: list[Path], *, use_model: bool = True) -> dict[str, Any]:
    """Screens every labelled message in ``files``; returns metrics per language."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    for row in read_jsonl(files):
        context = ScreeningContext(**(row.get("context") or {}))
        result = screen(str(row["text"]), context, use_model=use_model)
        summary = {
            "language": result.language,
            "indicators": list(result.indicators),
            "urgency": result.urgency,
        }
        tallies[str(row["language"])].add(row, summary)
        tallies["all"].add(row, summary)
    languages = [*sorted(k for k in tallies if k != "all"), "all"]
    return {
        "files": [str(f) for f in files],
        "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
        "languages": {code: tallies[code].metrics() for code in languages},
        "misses": {code: tallies[code].misses for code in languages if code != "all"},
    }


def meets(metric: str, value: float | int | None) -> bool:
    if value is None:
        return True
    op, target = TARGETS[metric]
    return value >= target if op == ">=" else value <= target


def format_table(report: dict[str, Any]) -> str:
    columns = list(TARGETS)
    header = f"{'lang':5} {'n':>4}  " + "  ".join(f"{c:>17}" for c in columns)
    lines = [header, "-" * len(header)]
    for code, metrics in report["languages"].items():
        cells = []
        for column in columns:
            value = metrics[column]
            mark = "" if meets(column, value) else " ✗"
            cells.append(f"{'-' if value is None else f'{value:.3f}'}{mark:>2}".rjust(17))
        lines.append(f"{code:5} {metrics['n']:>4}  " + "  ".join(cells))
    targets = ", ".join(f"{k} {v}" for k, v in report["targets"].items())
    lines.append(f"targets: {targets}; ✗ marks a miss")
    return "\n".join(lines)


def write_chart(report: dict[str, Any], path: Path) -> None:
    """A PNG bar chart of recall per language, with the targets drawn in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    codes = [c for c in report["languages"] if c != "all"]
    series = [
        ("critical_recall", "critical recall"),
        ("urgent_recall", "urgent recall"),
        ("language_accuracy", "language accuracy"),
    ]
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(6.0, len(codes) * 0.8), 4))
    for i, (key, label) in enumerate(series):
        values = [report["languages"][c][key] or 0.0 for c in codes]
        ax.bar([x + (i - 1) * width for x in range(len(codes))], values, width, label=label)
    ax.axhline(0.95, color="black", linestyle="--", linewidth=0.8, label="target 0.95")
    ax.set_xticks(range(len(codes)), codes)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share")
    ax.set_title("Screening: recall and language accuracy per language")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=4, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(files: list[Path], out: Path, *, use_model: bool = True) -> dict[str, Any]:
    report = evaluate(files, use_model=use_model)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    write_chart(report, out / "eval-recall.png")
    return report
