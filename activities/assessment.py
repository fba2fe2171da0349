"""The rule decision and review terms, computed once and recorded in history (local activities).

The rules and the holiday calendar are code and data that change between releases; recording
their answer keeps every running workflow replayable whatever version a worker runs. A failure
here cannot be fixed by trying again (the certificate's data is what it is), so it is final: the
refund ends ``rejected`` with a reason a person can act on, instead of retrying for ever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.payloads import AssessInput, Recheck
from domain.decisions import Assessment, Decision, Outcome
from domain.errors import RULES_FAILED
from settings import Settings
from workflows.business_days import BusinessCalendar
from workflows.policy import evaluate, review_deadline, still_refundable

T = TypeVar("T")


class AssessmentActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calendar = BusinessCalendar(settings.holiday_country)

    @activity.defn(name="assess_refund")
    def assess(self, request: AssessInput) -> Assessment:
        settings = self.settings
        decision: Decision | None = None
        deadline = None
        if not request.resume:
            decision = _final(
                lambda: evaluate(
                    request.certificate,
                    request.at,
                    timezone=settings.timezone,
                    calendar=self.calendar,
                )
            )
        if decision is not None and decision.outcome is Outcome.MANUAL_REVIEW:
            deadline, warnings = _final(
                lambda: review_deadline(
                    request.certificate,
                    request.at,
                    timezone=settings.timezone,
                    calendar=self.calendar,
                )
            )
            missing = [w for w in warnings if w not in decision.warnings]
            decision = decision.model_copy(update={"warnings": [*decision.warnings, *missing]})
        return Assessment(
            decision=decision,
            review_deadline=deadline,
            timeout_action=settings.review_timeout_action,
            reviewers=list(settings.reviewers),
            operators=list(settings.operators),
            fallback_to_balance=settings.fallback_to_balance,
            payment_patience_seconds=settings.payment_patience.total_seconds(),
            history_event_limit=settings.history_event_limit,
            history_bytes_limit=settings.history_bytes_limit,
        )

    @activity.defn(name="recheck_refund")
    def recheck(self, request: AssessInput) -> Recheck:
        """Whether the certificate may still be paid back now (before an approval is done)."""
        found = _final(
            lambda: still_refundable(
                request.certificate, request.at, timezone=self.settings.timezone
            )
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
