"""The system of record's SQLite files are their owner's alone, from creation and after."""

from __future__ import annotations

import stat

from settings import get_settings
from starter.cli import run
from storage.certificates import CertificateStore
from storage.database import dispose_all, open_database
from tests.factories import certificate, shanghai


def modes(folder):
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}


def test_a_new_database_is_private_with_its_journal_files(tmp_path):
    folder = tmp_path / "var"
    store = CertificateStore(open_database(f"sqlite:///{folder / 'refunds.db'}"))
    store.seed([certificate("pf-1", purchased_at=shanghai(2026, 11, 20))])
    try:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        found = modes(folder)
        assert {"refunds.db", "refunds.db-wal", "refunds.db-shm"} <= found.keys()
        assert set(found.values()) == {0o600}
    finally:
        dispose_all()


def test_an_existing_database_open_to_others_is_tightened(tmp_path):
    folder = tmp_path / "var"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    (folder / "refunds.db").touch()
    (folder / "refunds.db").chmod(0o644)
    try:
        open_database(f"sqlite:///{folder / 'refunds.db'}")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert modes(folder)["refunds.db"] == 0o600
    finally:
        dispose_all()


def test_a_database_that_cannot_be_private_is_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("REFUNDS_DATABASE_URL", f"sqlite:///{blocker / 'refunds.db'}")
    get_settings.cache_clear()
    try:
        assert run(["check", "pf-1"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("refunds: error: ") and "cannot be made private" in err
        assert "\n" not in err
    finally:
        get_settings.cache_clear()
        dispose_all()
