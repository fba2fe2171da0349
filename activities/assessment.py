"""The rule decision and review terms, computed once and recorded in history (a local activity).

The rules and the holiday calendar are code and data that change between releases; recording
their answer keeps every running workflow replayable whatever version a worker runs.
"""

from __future__ import annotations

from temporalio import activity

from settings import Settings
from workflows.business_days import BusinessCalendar
from workflows.models import AssessInput, Assessment, Outcome
from workflows.policy import evaluate, review_deadline


class AssessmentActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calendar = BusinessCalendar(settings.holiday_country)

    @activity.defn(name="assess_refund")
    def assess(self, request: AssessInput) -> Assessment:
        settings = self.settings
        decision = evaluate(
            request.certificate, request.at, timezone=settings.timezone, calendar=self.calendar
        )
        deadline = None
        if decision.outcome is Outcome.MANUAL_REVIEW:
            deadline, warnings = review_deadline(
                request.certificate, request.at, timezone=settings.timezone, calendar=self.calendar
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
        )
