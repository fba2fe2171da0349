"""Shared fixtures: a fresh system of record and settings pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from settings import get_settings
from storage.certificates import CertificateStore
from storage.database import dispose_all, open_database


@pytest.fixture
def database_url(tmp_path, monkeypatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'refunds.db'}"
    monkeypatch.setenv("REFUNDS_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    dispose_all()


@pytest.fixture
def store(database_url: str) -> CertificateStore:
    return CertificateStore(open_database(database_url))
