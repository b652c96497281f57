"""The model is retrained exactly when its inputs change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot import model
from bot.settings import load_settings


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("config.yml", "domain.yml"):
        shutil.copy(model.ROOT / name, root / name)
    shutil.copytree(model.ROOT / "data" / "nlu", root / "data" / "nlu")
    shutil.copytree(model.ROOT / "data" / "core", root / "data" / "core")
    monkeypatch.setattr(model, "ROOT", root)
    monkeypatch.setattr(model, "CONFIG", root / "config.yml")
    monkeypatch.setattr(model, "DOMAIN", root / "domain.yml")
    monkeypatch.setattr(model, "DATA_DIRS", (root / "data" / "nlu", root / "data" / "core"))
    return root


def test_the_fingerprint_changes_with_any_input(inputs: Path) -> None:
    before = model.fingerprint()
    assert model.fingerprint() == before
    with (inputs / "data" / "nlu" / "en.yml").open("a") as fh:
        fh.write("\n")
    assert model.fingerprint() != before


def test_a_cached_model_is_reused_without_training(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("BEACON_MODEL_CACHE", str(tmp_path / "cache"))
    settings = load_settings()
    cached = settings.model_cache / model.model_path(settings).name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"model")
    monkeypatch.setattr(
        model.subprocess, "run", lambda *a, **k: pytest.fail("trained although cached")
    )
    path, how = model.ensure_model(settings)
    assert how == "cache" and path.read_bytes() == b"model"
    assert model.ensure_model(settings) == (path, "present")
