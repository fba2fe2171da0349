"""Fresh databases for tests: a SQLite file, or a new database on a live PostgreSQL server.

PostgreSQL comes from ``REFUNDS_TEST_POSTGRES_URL`` (``.ci/run`` starts Debian's server and sets
it); without it, PostgreSQL tests skip with the reason, or fail under
``REFUNDS_REQUIRE_SYSTEM_TESTS=1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.live_system import require_system

BOTH = ["sqlite", "postgres"]


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'refunds.db'}"
        return
    server = os.environ.get("REFUNDS_TEST_POSTGRES_URL")
    require_system("a PostgreSQL server (REFUNDS_TEST_POSTGRES_URL)", bool(server))
    assert server is not None
    name = f"refunds_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
