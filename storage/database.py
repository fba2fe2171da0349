"""Engines for the system of record: SQLite by default (WAL, busy timeout, its files private to
their owner), any SQLAlchemy URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from storage.private_files import private_database_file
from storage.schema import metadata

_engines: dict[str, Engine] = {}


def open_database(url: str) -> Engine:
    """An engine for ``url`` with the schema created; one engine per URL per process."""
    engine = _engines.get(url)
    if engine is None:
        engine = _create(url)
        metadata.create_all(engine)
        _engines[url] = engine
    return engine


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        private_database_file(Path(parsed.database))
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def dispose_all() -> None:
    """Close every pooled connection (tests and shutdown)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
