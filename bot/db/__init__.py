"""Database access: one engine per process, one session per unit of work.

Engines hide statement parameters in errors and logs: they may hold personal
data (encrypted, but still).

``session_scope()`` commits when the block ends normally and rolls back on any
exception. SQLite (the embedded default) gets WAL, a busy timeout and foreign
keys so that the gateway and the action server can share the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import get_settings

_engines: dict[str, Engine] = {}
_makers: dict[str, sessionmaker] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: ``BEACON_DATABASE_URL``)."""
    url = url or get_settings().database_url
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url, future=True, hide_parameters=True, connect_args={"timeout": 10}
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, future=True, pool_pre_ping=True, hide_parameters=True)
        _engines[url] = engine
        _makers[url] = sessionmaker(engine, future=True, expire_on_commit=False)
    return engine


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session for one unit of work: committed on success, rolled back otherwise."""
    url = url or get_settings().database_url
    get_engine(url)
    session: Session = _makers[url]()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_all() -> None:
    """Closes every pooled connection (used by tests and on shutdown)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _makers.clear()
