"""Shared fixtures: a fresh settings object and database for every test.

``db_url`` runs a test on SQLite and, when ``BEACON_TEST_DATABASE_URL`` is set
(CI sets it), on PostgreSQL too, each in a schema of its own built with
``alembic upgrade head``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot import settings as settings_module
from bot.db import dispose_all
from bot.db.migrate import upgrade

POSTGRES_URL = os.environ.get("BEACON_TEST_DATABASE_URL")

# A developer's .env (real bot tokens, Twilio keys) must never reach the tests,
# nor the processes they start.
os.environ["BEACON_ENV_FILE"] = ""
for _name in [n for n in os.environ if n.startswith(("BEACON_TELEGRAM", "BEACON_TWILIO"))]:
    del os.environ[_name]
for _name in ("BEACON_PAGING_TELEGRAM_TOKEN", "BEACON_PAGING_SMS_TO", "BEACON_PUBLIC_URL"):
    os.environ.pop(_name, None)


def _reset_settings() -> None:
    settings_module.get_settings.cache_clear()
    from bot.db import crypto

    crypto._fernet.cache_clear()


@pytest.fixture(autouse=True)
def beacon_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own var dir, keys and SQLite database."""
    var = tmp_path / "var"
    monkeypatch.setenv("BEACON_VAR_DIR", str(var))
    monkeypatch.setenv("BEACON_DATABASE_URL", f"sqlite:///{var / 'beacon.db'}")
    monkeypatch.setenv("BEACON_INTERNAL_TOKEN", "test-internal-token")
    monkeypatch.setenv("BEACON_LOG_FORMAT", "text")
    for name in ("BEACON_SECRET_KEY", "BEACON_HASH_KEY", "BEACON_PORT"):
        monkeypatch.delenv(name, raising=False)
    _reset_settings()
    yield var
    dispose_all()
    _reset_settings()


def _postgres_schema_url(base: str, schema: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, beacon_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A migrated, empty database; the settings point at it."""
    if request.param == "sqlite":
        url = f"sqlite:///{beacon_env / 'beacon.db'}"
        monkeypatch.setenv("BEACON_DATABASE_URL", url)
        _reset_settings()
        upgrade(url)
        yield url
        return
    if not POSTGRES_URL:
        pytest.skip("BEACON_TEST_DATABASE_URL is not set")
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL, future=True)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _postgres_schema_url(POSTGRES_URL, schema)
    monkeypatch.setenv("BEACON_DATABASE_URL", url)
    _reset_settings()
    try:
        upgrade(url)
        yield url
    finally:
        dispose_all()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
