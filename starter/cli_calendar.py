"""``refunds calendar``: the working calendar review deadlines are counted in.

``show YEAR`` prints the days off on weekdays and the make-up working days of a year, and where
each comes from (the ``holidays`` package or the official schedule in ``REFUNDS_CALENDAR_FILE``).
``apply FILE`` checks a schedule, installs it in that file (its years replace the file's) and tells
every refund in review whose deadline it moves; each counts its deadline again itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from activities.schedule_file import read_schedule, write_schedule
from domain.errors import CertificateNotFoundError
from domain.official_calendar import ScheduleError
from settings import Settings
from starter.cli_common import (
    JsonFlag,
    call_temporal,
    certificate_store,
    load_settings,
    official_schedule,
)
from starter.client import RefundClient
from starter.errors import UserError
from starter.render import console, local_time, print_json
from starter.review_pages import first_cursor
from workflows.business_days import BusinessCalendar
from workflows.policy import review_deadline

calendar_app = typer.Typer(
    name="calendar",
    help="The working calendar review deadlines are counted in.",
    no_args_is_help=True,
)


@dataclass(frozen=True)
class Move:
    refund_id: str
    before: datetime | None
    after: datetime


@calendar_app.command("show")
def show(
    year: Annotated[int, typer.Argument(min=2000, max=2100, help="The year, e.g. 2027.")],
    json_output: JsonFlag = False,
) -> None:
    """A year's days off on weekdays and make-up working days, and where each comes from."""
    settings = load_settings()
    schedule = official_schedule(settings)
    calendar = BusinessCalendar(settings.holiday_country, schedule)
    official = schedule.year(year)
    days, workdays = calendar.year_days(year)
    off = sorted(day for day in days if day.weekday() < 5)
    worked = sorted(workdays)
    warnings = calendar.unpublished_warnings(year, year)

    def source(day: date) -> str:
        listed = official is not None and (day in official.holidays or day in official.workdays)
        return "official schedule" if listed else "holidays package"

    rows = [
        {
            "date": d.isoformat(),
            "weekday": f"{d:%a}",
            "kind": "day off",
            "name": days.get(d, ""),
            "source": source(d),
        }
        for d in off
    ] + [
        {
            "date": d.isoformat(),
            "weekday": f"{d:%a}",
            "kind": "make-up working day",
            "name": "",
            "source": source(d),
        }
        for d in worked
    ]
    rows.sort(key=lambda row: row["date"])
    working = sum(
        1
        for n in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)
        if calendar.is_business_day(date(year, 1, 1) + timedelta(days=n))
    )
    if json_output:
        print_json(
            {
                "year": year,
                "country": calendar.country,
                "working_days": working,
                "official_schedule": official is not None,
                "warnings": warnings,
                "days": rows,
            }
        )
        return
    origin = f"official schedule from {settings.calendar_file}" if official else "holidays package"
    table = Table(title=f"{calendar.country} {year}: {working} working days ({origin})")
    for column in ("date", "day", "kind", "name", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["date"], row["weekday"], row["kind"], str(row["name"]), row["source"])
    console.print(table)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}")


@calendar_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="A schedule file (TOML), one table per year.")],
    json_output: JsonFlag = False,
) -> None:
    """Install a year's official schedule and move the review deadlines it changes."""
    settings = load_settings()
    if settings.calendar_file is None:
        raise UserError("REFUNDS_CALENDAR_FILE is not set: there is nowhere to install a schedule")
    try:
        if not file.is_file():
            raise UserError(f"{file}: no such file")
        newer = read_schedule(file)
    except ScheduleError as err:
        raise UserError(str(err)) from None
    if not newer.years:
        raise UserError(f"{file}: holds no year")
    schedule = official_schedule(settings).merged(newer)
    write_schedule(settings.calendar_file, schedule)
    calendar = BusinessCalendar(settings.holiday_country, schedule)
    moves, told = call_temporal(settings, lambda refunds: _move(refunds, settings, calendar))
    years = ", ".join(str(found.year) for found in newer.years)
    if json_output:
        print_json(
            {
                "installed": str(settings.calendar_file),
                "years": [y.year for y in newer.years],
                "moves": [_as_json(move) for move in moves],
                "told": told,
            }
        )
        return
    console.print(f"schedule for {years} installed in {settings.calendar_file}")
    if not moves:
        console.print("no refund in review has its deadline moved by it")
        return
    for move in moves:
        console.print(
            f"{move.refund_id}: {local_time(move.before, settings.zone)} → "
            f"{local_time(move.after, settings.zone)}"
        )
    console.print(f"{told} of {len(moves)} refund(s) told to count their deadline again")


async def _move(
    refunds: RefundClient, settings: Settings, calendar: BusinessCalendar
) -> tuple[list[Move], int]:
    reviews = await refunds.every_review(first_cursor(datetime.now(UTC), settings.zone))
    certificates = certificate_store(settings)
    moves = []
    for review in reviews:
        try:
            certificate = certificates.get(review.certificate_id)
        except CertificateNotFoundError:
            continue
        after, _ = review_deadline(
            certificate, review.submitted_at, timezone=settings.timezone, calendar=calendar
        )
        if after != review.review_deadline:
            moves.append(Move(review.refund_id, review.review_deadline, after))
    told = await refunds.announce_calendar_change([move.refund_id for move in moves])
    return moves, told.told


def _as_json(move: Move) -> dict[str, Any]:
    return {
        "refund_id": move.refund_id,
        "before": move.before.isoformat() if move.before else None,
        "after": move.after.isoformat(),
    }
