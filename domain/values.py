"""Values every layer checks the same way: money, ids, texts and times, with their bounds."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationError,
)

MAX_TEXT = 2000
MAX_ID = 64
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
"""Ids of certificates, orders and people: at most 64 characters of a safe alphabet."""
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""The range a certificate's times and a rule check's instant must fall in."""


UNREADABLE = "unreadable"
"""The one key of what a plain-text payload decodes to where encryption keys are set: the worker
reads none of it, and an action carrying it is refused with its text."""
PLAINTEXT_REFUSED = "a plain-text payload where encryption keys are set"


SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


def id_problem(value: str, what: str, limit: int = MAX_ID) -> str | None:
    """Why ``value`` is not a valid id (one line, never echoing the value), or ``None``."""
    if not value.strip():
        return f"no {what} id was given"
    if len(value) > limit:
        return f"the {what} id is longer than {limit} characters"
    if not SAFE_ID.fullmatch(value):
        return f"the {what} id may hold only letters, digits, '.', '_', ':' and '-'"
    return None


SAFE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "._:-")


def shown_id(value: str) -> str:
    """``value`` fit for an audit line: 64 characters at most, unsafe characters as '?'."""
    kept = "".join(c if c in SAFE_CHARACTERS else "?" for c in value[:MAX_ID])
    return kept + ("…" if len(value) > MAX_ID else "") if kept else "unknown"


def time_problem(value: datetime) -> str | None:
    """Why an aware instant is out of the supported range, or ``None``."""
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        return "lies outside the years 2000 to 2199"
    if not EARLIEST <= instant < LATEST:
        return "lies outside the years 2000 to 2199"
    return None


def _in_range(value: datetime) -> datetime:
    problem = time_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]
"""A timezone-aware time between 2000 and 2199 (UTC), so date arithmetic cannot overflow."""


def _refuse_float(value: object) -> object:
    if isinstance(value, bool | float):
        raise ValueError('amounts are decimal strings such as "199.00", never floats')
    return value


def _two_places(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("amount must be a finite number")
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("amount has more than 2 decimal places")
    return value.quantize(Decimal("0.01"))


Money = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    Field(gt=0, max_digits=14),
    AfterValidator(_two_places),
]
"""A positive amount with at most two decimal places."""

Amount = Annotated[
    Decimal, BeforeValidator(_refuse_float), Field(ge=0), AfterValidator(_two_places)
]
"""A non-negative amount (a total that may be zero)."""

Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=ID_PATTERN.pattern),
]
"""Ids of certificates, orders, users: safe in a workflow id and a log line."""

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


def describe_validation_error(err: ValidationError) -> str:
    """The first problem of a pydantic error, as ``field.path: message``."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
