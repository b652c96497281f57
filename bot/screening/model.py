"""The statistical half of screening: what the patterns miss.

A character n-gram TF-IDF model with one logistic regression per label,
trained on the labelled messages in the repository
(``data/screening/train/*.jsonl`` and ``data/eval/dev/*.jsonl``; never the
held-apart ``data/eval/test``). Character n-grams need no segmenter, so the
same model reads Thai, Burmese, Khmer, Lao and Chinese.

Labels are the indicator ids plus two tiers, ``critical`` and ``urgent``
(critical or high), so that a message whose indicators are missed can still
be ranked as urgent. Training takes a few seconds; the fitted model is cached
under ``BEACON_MODEL_CACHE`` by the hash of its training data and scikit-learn's
version, and nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.screening.types import INDICATORS, urgency_rank
from bot.settings import ROOT, get_settings

TRAINING_DIRS = (ROOT / "data" / "screening" / "train", ROOT / "data" / "eval" / "dev")
TIER_LABELS = ("critical", "urgent")
LABELS = (*INDICATORS, *TIER_LABELS)
#: Probability above which the model alone reports an indicator or a tier.
THRESHOLDS: dict[str, float] = {"critical": 0.9, "urgent": 0.7}
DEFAULT_THRESHOLD = 0.8
MIN_POSITIVES = 3


def read_jsonl(paths: list[Path]) -> list[dict[str, Any]]:
    """Labelled messages from JSON-lines files."""
    rows = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: {exc}") from exc
    return rows


def training_files() -> list[Path]:
    """The labelled files the model learns from.

    ``BEACON_SCREENING_TRAIN_ONLY=1`` leaves the dev split out, so that the
    dev split can measure the model while patterns and thresholds are tuned.
    """
    dirs = TRAINING_DIRS[:1] if os.environ.get("BEACON_SCREENING_TRAIN_ONLY") else TRAINING_DIRS
    return sorted(p for d in dirs if d.exists() for p in d.glob("*.jsonl"))


def _targets(row: dict[str, Any]) -> set[str]:
    labels = set(row.get("indicators") or [])
    rank = urgency_rank(row.get("urgency"))
    if rank >= urgency_rank("critical"):
        labels.add("critical")
    if rank >= urgency_rank("high"):
        labels.add("urgent")
    return labels


@dataclass
class IndicatorModel:
    """A fitted model: probabilities per label for a text.

    The logistic regressions are stacked into one weight matrix, so that a
    message costs one sparse product instead of one call per label.
    """

    vectorizer: Any
    labels: tuple[str, ...]
    weights: Any  # (features, labels), float32
    bias: Any  # (labels,)

    def probabilities(self, text: str) -> dict[str, float]:
        import numpy as np

        row = self.vectorizer.transform([text])
        scores = row.data @ self.weights[row.indices] + self.bias
        probabilities = 1.0 / (1.0 + np.exp(-scores))
        return {label: float(p) for label, p in zip(self.labels, probabilities, strict=True)}

    def fired(self, text: str) -> dict[str, float]:
        """The labels whose probability passes their threshold."""
        return {
            label: p
            for label, p in self.probabilities(text).items()
            if p >= THRESHOLDS.get(label, DEFAULT_THRESHOLD)
        }


def train(rows: list[dict[str, Any]]) -> IndicatorModel:
    """Fits the model on labelled messages."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from bot.screening.normalize import normalize

    texts = [normalize(str(r["text"])).text.lower() for r in rows]
    vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1, max_features=60_000
    )
    features = vectorizer.fit_transform(texts)
    targets = [_targets(r) for r in rows]
    labels, weights, bias = [], [], []
    for label in LABELS:
        y = [1 if label in t else 0 for t in targets]
        if sum(y) < MIN_POSITIVES or sum(y) == len(y):
            continue
        classifier = LogisticRegression(C=8.0, class_weight="balanced", max_iter=2000)
        classifier.fit(features, y)
        labels.append(label)
        weights.append(classifier.coef_[0])
        bias.append(classifier.intercept_[0])
    return IndicatorModel(
        vectorizer,
        tuple(labels),
        np.asarray(weights, dtype=np.float32).T.copy(),
        np.asarray(bias, dtype=np.float32),
    )


def fingerprint(files: list[Path]) -> str:
    from sklearn import __version__ as sklearn_version

    digest = hashlib.sha256(f"sklearn=={sklearn_version};labels={LABELS}".encode())
    digest.update(Path(__file__).read_bytes())
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


@lru_cache(maxsize=1)
def get_model() -> IndicatorModel | None:
    """The model for the current training data: from the cache, or trained now.

    Returns None when the repository holds no training data.
    """
    files = training_files()
    if not files:
        return None
    cache = get_settings().model_cache / f"screening-{fingerprint(files)}.pickle"
    if cache.exists():
        with cache.open("rb") as fh:
            model: IndicatorModel = pickle.load(fh)  # noqa: S301 - our own cache file
        return model
    model = train(read_jsonl(files))
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(model, fh)
        tmp.replace(cache)
    except OSError:
        pass
    return model
