"""The schema is built only by Alembic, and the models match the migrations."""

from __future__ import annotations

from alembic import command
from alembic.util.exc import CommandError
from sqlalchemy import inspect

from bot.db import get_engine
from bot.db.migrate import alembic_config


def test_migrations_build_every_table_and_match_the_models(db_url: str) -> None:
    tables = set(inspect(get_engine(db_url)).get_table_names())
    assert {
        "contacts",
        "cases",
        "messages",
        "responders",
        "case_events",
        "alembic_version",
    } <= tables
    try:
        command.check(alembic_config(db_url))
    except CommandError as exc:  # pragma: no cover - the failure message is the point
        raise AssertionError(f"models and migrations differ: {exc}") from exc


def test_migrations_downgrade_cleanly(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "base")
    assert set(inspect(get_engine(db_url)).get_table_names()) <= {"alembic_version"}
    command.upgrade(alembic_config(db_url), "head")
