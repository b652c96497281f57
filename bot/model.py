"""The trained Rasa model, cached by the hash of its inputs.

``beacon train`` trains only when no model exists for the current inputs
(config, domain, NLU and dialogue data, Rasa's version). Trained models are
also kept in a cache outside the checkout (``BEACON_MODEL_CACHE``, by default
``~/.cache/beacon/models``), so a fresh clone with unchanged inputs starts at
once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from bot.settings import ROOT, Settings

CONFIG = ROOT / "config.yml"
DOMAIN = ROOT / "domain.yml"
DATA_DIRS = (ROOT / "data" / "nlu", ROOT / "data" / "core")
PREFIX = "beacon-"


def training_inputs() -> list[Path]:
    """Every file the model is trained from, in a stable order."""
    files = [CONFIG, DOMAIN]
    for directory in DATA_DIRS:
        files.extend(sorted(p for p in directory.rglob("*") if p.is_file()))
    return files


def fingerprint() -> str:
    """A hash of the training inputs and of Rasa's version."""
    digest = hashlib.sha256(f"rasa=={version('rasa')}".encode())
    for path in training_inputs():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def model_path(settings: Settings) -> Path:
    """Where the model for the current inputs lives."""
    return settings.model_dir / f"{PREFIX}{fingerprint()}.tar.gz"


def rasa_env() -> dict[str, str]:
    """The environment every Rasa command runs with."""
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    return env


def ensure_model(settings: Settings, *, force: bool = False) -> tuple[Path, str]:
    """Returns the model for the current inputs, training it if needed.

    Returns:
        The model's path and how it was obtained: ``"present"``, ``"cache"`` or
        ``"trained"``.
    """
    target = model_path(settings)
    cached = settings.model_cache / target.name
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    if target.exists() and not force:
        return target, "present"
    if cached.exists() and not force:
        shutil.copy2(cached, target)
        _prune(settings.model_dir, keep=target)
        return target, "cache"
    started = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "rasa",
        "train",
        "--config",
        str(CONFIG),
        "--domain",
        str(DOMAIN),
        "--data",
        *(str(d) for d in DATA_DIRS),
        "--out",
        str(settings.model_dir),
        "--fixed-model-name",
        target.name.removesuffix(".tar.gz"),
        "--force",
    ]
    subprocess.run(command, check=True, cwd=ROOT, env=rasa_env())
    print(f"trained {target.name} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    try:
        settings.model_cache.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target, cached)
    except OSError as exc:
        print(f"could not cache the model: {exc}", file=sys.stderr)
    _prune(settings.model_dir, keep=target)
    return target, "trained"


def _prune(directory: Path, keep: Path) -> None:
    for old in directory.glob(f"{PREFIX}*.tar.gz"):
        if old != keep:
            old.unlink(missing_ok=True)
