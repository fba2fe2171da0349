"""The rule decision and review terms, computed once and recorded in history (local activities).

The rules and the holiday calendar are code and data that change between releases; recording
their answer keeps every running workflow replayable whatever version a worker runs. A failure
here cannot be fixed by trying again (the certificate's data is what it is), so it is final: the
refund ends ``rejected`` with a reason a person can act on, instead of retrying for ever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.payloads import (
    AssessInput,
    DeadlineCount,
    DeadlineInput,
    Recheck,
    SettlementDeadlineInput,
)
from activities.schedule_file import ScheduleFile
from domain.decisions import Assessment, Decision
from domain.errors import RULES_FAILED
from workflows.business_days import BusinessCalendar
from workflows.policy import assess, review_deadline, still_refundable

T = TypeVar("T")


@dataclass(frozen=True)
class RefundTerms:
    """What a refund is reviewed and paid under (from the configuration), recorded with its
    decision so that a running refund keeps the terms it started with."""

    timezone: str = "Asia/Shanghai"
    holiday_country: str = "CN"
    calendar_file: Path | None = None
    timeout_action: Literal["approve", "reject"] = "approve"
    reviewers: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    fallback_to_balance: bool = False
    payment_patience_seconds: float = 3600.0
    history_event_limit: int = 2000
    history_bytes_limit: int = 2_000_000
    settlement_poll_seconds: float = 3600.0
    settlement_patience_days: int = 10


class AssessmentActivities:
    def __init__(self, terms: RefundTerms) -> None:
        self.terms = terms
        self.schedule = ScheduleFile(terms.calendar_file)

    @property
    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(self.terms.holiday_country, self.schedule.current())

    @activity.defn(name="assess_refund")
    def assess(self, request: AssessInput) -> Assessment:
        terms = self.terms
        decision: Decision | None = None
        deadline = None
        if not request.resume:
            decision, deadline = _final(
                lambda: assess(
                    request.certificate,
                    request.at,
                    timezone=terms.timezone,
                    calendar=self.calendar,
                )
            )
        return Assessment(
            decision=decision,
            review_deadline=deadline,
            timeout_action=terms.timeout_action,
            reviewers=list(terms.reviewers),
            operators=list(terms.operators),
            fallback_to_balance=terms.fallback_to_balance,
            payment_patience_seconds=terms.payment_patience_seconds,
            history_event_limit=terms.history_event_limit,
            history_bytes_limit=terms.history_bytes_limit,
            settlement_poll_seconds=terms.settlement_poll_seconds,
            settlement_patience_days=terms.settlement_patience_days,
        )

    @activity.defn(name="count_review_deadline")
    def count_review_deadline(self, request: DeadlineInput) -> DeadlineCount:
        """The review deadline of a request in review, counted with today's calendar (after
        ``refunds calendar apply``): the refund moves its deadline if this differs."""
        calendar = self.calendar
        deadline, _ = _final(
            lambda: review_deadline(
                request.certificate,
                request.submitted_at,
                timezone=self.terms.timezone,
                calendar=calendar,
            )
        )
        first, last = request.submitted_at.year, deadline.year
        years = [year for year in sorted(calendar.schedule.covered) if first <= year <= last]
        return DeadlineCount(deadline=deadline, official_years=years)

    @activity.defn(name="count_settlement_deadline")
    def count_settlement_deadline(self, request: SettlementDeadlineInput) -> datetime:
        """The end of the ``business_days``-th business day after ``since``: past it, a leg
        still settling needs a person."""
        zone = ZoneInfo(self.terms.timezone)
        start = request.since.astimezone(zone).date()
        counted = self.calendar.add_business_days(start, request.business_days)
        return datetime.combine(counted.day + timedelta(days=1), time(), zone)

    @activity.defn(name="recheck_refund")
    def recheck(self, request: AssessInput) -> Recheck:
        """Whether the certificate may still be paid back now (before an approval is done)."""
        found = _final(
            lambda: still_refundable(request.certificate, request.at, timezone=self.terms.timezone)
        )
        if found is None:
            return Recheck()
        rule, explanation = found
        return Recheck(rule=rule, explanation=explanation)


def _final(compute: Callable[[], T]) -> T:
    with _rules_failures_are_final():
        return compute()


@contextmanager
def _rules_failures_are_final() -> Iterator[None]:
    try:
        yield
    except ValueError as err:
        raise ApplicationError(
            f"certificate data is inconsistent: {err}", type=RULES_FAILED, non_retryable=True
        ) from err
    except Exception as err:  # a bug in the rules: retrying the same input fails the same way
        raise ApplicationError(
            f"the rules could not be applied to this certificate ({type(err).__name__}: {err})",
            type=RULES_FAILED,
            non_retryable=True,
        ) from err
