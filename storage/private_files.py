"""The system of record's files are its owner's alone: the folder 0700, the database 0600 from the
moment it exists (SQLite gives its ``-wal`` and ``-shm`` files the database file's mode).

An existing folder or file that others could read is tightened when it is opened; one that cannot
be tightened (someone else's) is refused in one line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
PRIVATE_UMASK = 0o077
"""For a process that makes its own files (the Temporal dev server): its owner's alone."""


class PrivateFileError(RuntimeError):
    """A folder or file of the system of record cannot be made its owner's alone."""


def private_folder(folder: Path) -> None:
    """``folder`` made if missing (0700), or tightened to 0700."""
    try:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        _tighten(folder, FOLDER_MODE)
    except OSError as err:
        raise PrivateFileError(
            f"{folder} cannot be made private (0700): {err.strerror}; fix its owner or mode"
        ) from None


def private_database_file(path: Path, *, create: bool = True) -> None:
    """``path`` created empty at 0600 if missing and ``create`` (SQLite then fills it; a program
    that lays out a new database itself makes it, under a umask of 077), else tightened, with its
    journal companions."""
    private_folder(path.parent)
    try:
        if create:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
            os.close(descriptor)
        for candidate in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
            if candidate.exists():
                _tighten(candidate, FILE_MODE)
    except OSError as err:
        raise PrivateFileError(
            f"{path} cannot be made private (0600): {err.strerror}; fix its owner or mode"
        ) from None


def _tighten(path: Path, mode: int) -> None:
    if stat.S_IMODE(path.stat().st_mode) & ~mode:
        path.chmod(mode)
