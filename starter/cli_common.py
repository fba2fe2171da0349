"""What the ``refunds`` commands share: settings, options, the system of record, Temporal calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError

from activities.schedule_file import read_schedule
from domain.official_calendar import OfficialSchedule, ScheduleError
from domain.values import describe_validation_error, id_problem, time_problem
from settings import Settings, get_settings
from starter.client import RefundClient, refund_client
from starter.errors import UserError
from storage.certificates import CertificateStore
from storage.database import open_database
from workflows.business_days import BusinessCalendar

MAX_REFUND_ID = 128

T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a readable view.")]
ReviewerOption = Annotated[
    str, typer.Option("--reviewer", envvar="REFUNDS_REVIEWER", help="Your reviewer id.")
]
OperatorOption = Annotated[
    str, typer.Option("--operator", envvar="REFUNDS_OPERATOR", help="Your operator id.")
]


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as err:
        field, _, problem = describe_validation_error(err).partition(": ")
        raise UserError(f"bad configuration: REFUNDS_{field.upper()}: {problem}") from None


def official_schedule(settings: Settings) -> OfficialSchedule:
    """The schedule in ``REFUNDS_CALENDAR_FILE``; a broken file is one line."""
    try:
        return read_schedule(settings.calendar_file)
    except ScheduleError as err:
        raise UserError(str(err)) from None


def working_calendar(settings: Settings) -> BusinessCalendar:
    return BusinessCalendar(settings.holiday_country, official_schedule(settings))


def certificate_store(settings: Settings) -> CertificateStore:
    return CertificateStore(open_database(settings.database_url))


def parse_time(text: str) -> datetime:
    """An ISO 8601 time that names its offset (``Z`` allowed)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            f"--at {text!r} is not an ISO 8601 time such as 2026-11-20T10:00:00+08:00"
        ) from None
    if value.tzinfo is None:
        raise UserError(f"--at {text!r} has no offset; add one, e.g. +08:00 or Z")
    problem = time_problem(value)
    if problem is not None:
        raise UserError(f"--at {text!r} {problem}")
    return value


async def _with_client(settings: Settings, work: Callable[[RefundClient], Awaitable[T]]) -> T:
    async with refund_client(settings) as refunds:
        return await work(refunds)


def call_temporal(settings: Settings, work: Callable[[RefundClient], Awaitable[T]]) -> T:
    """Run ``work`` with a connected client (a user mistake on the way is one line)."""
    return asyncio.run(_with_client(settings, work))


def checked_id(value: str, what: str, limit: int | None = None) -> str:
    """``value`` if it is a valid id, else a one-line ``UserError`` (nothing is sent)."""
    problem = id_problem(value, what) if limit is None else id_problem(value, what, limit)
    if problem is not None:
        raise UserError(problem)
    return value
