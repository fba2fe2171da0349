"""The official schedule file (``REFUNDS_CALENDAR_FILE``): read when it changes, replaced whole.

A worker keeps the last schedule it could read: a file broken by hand while it runs is reported
once per change and not used, so deadlines never follow a half-written schedule. ``calendar
apply`` checks a new schedule before it writes, and writes it whole (a new file moved into place).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import structlog

from domain.official_calendar import OfficialSchedule, ScheduleError, parse_schedule

log = structlog.get_logger("refunds.calendar")


def read_schedule(path: Path | None) -> OfficialSchedule:
    """The schedule in ``path``; none at all where no file is set or the file is missing."""
    if path is None or not path.exists():
        return OfficialSchedule()
    try:
        text = path.read_bytes()[: 1024 * 1024].decode()
    except (OSError, UnicodeDecodeError) as err:
        raise ScheduleError(f"{path}: cannot be read ({err})") from None
    return parse_schedule(text, str(path))


def write_schedule(path: Path, schedule: OfficialSchedule) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(schedule.to_toml())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ScheduleFile:
    """The schedule a worker counts with, read again whenever the file changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._schedule = read_schedule(path)  # a worker does not start on a broken file
        self._seen = self._stamp()

    def current(self) -> OfficialSchedule:
        stamp = self._stamp()
        if stamp != self._seen:
            self._seen = stamp
            try:
                self._schedule = read_schedule(self.path)
            except ScheduleError as err:
                log.error(
                    "calendar file not used; keeping the schedule read before", error=str(err)
                )
        return self._schedule

    def _stamp(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self.path) if self.path is not None else None
        except OSError:
            return None
        return (found.st_mtime_ns, found.st_size) if found is not None else None
