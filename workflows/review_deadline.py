"""A review deadline that follows the official calendar.

``refunds calendar apply`` installs a new schedule and sends ``calendar_changed`` to the refunds
in review whose deadline it moves. The signal carries nothing to trust: the refund counts its
deadline again through an activity (the worker's calendar, recorded in history); a different
answer is recorded, audited ("review deadline moved to … by the 2027 schedule") and shown
(``ReviewDeadline``), and the review waits for the new deadline. A burst of signals is served by
one count and at most one more, as ``people_changed`` is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.assessment import AssessmentActivities
    from activities.payloads import DeadlineCount, DeadlineInput
    from workflows.contract import RefundState
    from workflows.search_attributes import REVIEW_DEADLINE

from workflows.progress import RefundProgress

CALENDAR_ACTOR = "calendar"
COUNT_TIMEOUT = timedelta(seconds=30)
COUNT_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10)


class DeadlineKeeper:
    def __init__(self, progress: RefundProgress, waiting: Callable[[], bool]) -> None:
        self.progress = progress
        self.waiting = waiting
        """Whether the review still waits for a person's decision."""
        self.enabled = False
        self.moves = 0
        """How many times the deadline moved: the review's wait wakes when it changes."""
        self._counting = False
        self._wanted = False

    async def calendar_changed(self) -> None:
        if not (self.enabled and self._in_review()):
            return
        self._wanted = True
        if self._counting:  # the count under way goes round once more
            return
        self._counting = True
        try:
            while self._wanted and self._in_review():
                self._wanted = False
                await self._count()
        finally:
            self._counting = False

    async def passed_before(self, stop: Callable[[], bool]) -> bool:
        """Wait for ``stop()`` or the review deadline, as the calendar may move it; whether the
        deadline came first."""
        while not stop():
            assessment = self.progress.assessment
            assert assessment is not None and assessment.review_deadline is not None
            remaining, moves = assessment.review_deadline - workflow.now(), self.moves
            if remaining <= timedelta(0):
                return True
            try:
                await workflow.wait_condition(
                    lambda: stop() or self.moves != moves,  # noqa: B023 (awaited here)
                    timeout=remaining,
                )
            except TimeoutError:
                return True
        return False

    def _in_review(self) -> bool:
        progress = self.progress
        waiting = self.waiting() and not progress.decision_pending
        return progress.state is RefundState.VALIDATING_APPLICATION and waiting

    async def _count(self) -> None:
        progress = self.progress
        assert progress.certificate is not None
        try:
            counted: DeadlineCount = await workflow.execute_activity_method(
                AssessmentActivities.count_review_deadline,
                DeadlineInput(certificate=progress.certificate, submitted_at=progress.submitted_at),
                start_to_close_timeout=COUNT_TIMEOUT,
                retry_policy=COUNT_RETRY,
                summary="count the review deadline with the calendar as it is now",
            )
        except ActivityError as err:
            cause = str(err.cause or err)
            progress.record(
                CALENDAR_ACTOR, "review deadline not counted again", accepted=False, detail=cause
            )
            return
        assessment = progress.assessment
        if assessment is None or not self._in_review():
            return
        if counted.deadline == assessment.review_deadline:
            return
        progress.assessment = assessment.model_copy(update={"review_deadline": counted.deadline})
        workflow.upsert_search_attributes([REVIEW_DEADLINE.value_set(counted.deadline)])
        progress.record(CALENDAR_ACTOR, "review deadline moved", detail=_moved(counted))
        self.moves += 1


def _moved(counted: DeadlineCount) -> str:
    years = ", ".join(str(year) for year in counted.official_years)
    by = f"the {years} schedule" if years else "the calendar as it is now"
    return f"to {_shown(counted.deadline)} by {by}"


def _shown(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} (UTC{moment:%z})"
