"""Returning the money: the system of record authorizes it (patch v6), the certificate is revoked
(or its order cancelled), then each payment leg goes back to its own channel under the idempotency
key ``<refund id>:leg-<n>``, so no retry, crash, reset or replay can pay a leg twice. A channel
that accepts a return which settles later (a bank refund) keeps the refund waiting, woken by
``settlement_changed`` or a poll, until the leg settles or fails. What cannot be done becomes a
reason a person acts on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.payout_rules import (
    cause,
    leg_payment,
    leg_problem,
    may_fall_back,
    patience,
    unavailable,
    unsettled,
)

with workflow.unsafe.imports_passed_through():
    from activities.assessment import AssessmentActivities
    from activities.payloads import (
        CertificateChange,
        PaymentGrant,
        PaymentReceipt,
        SettlementDeadlineInput,
    )
    from activities.payments import PaymentActivities
    from activities.records import RecordActivities
    from domain.certificates import Channel
    from domain.errors import CERTIFICATE_ISSUED, NON_RETRYABLE
    from workflows import metrics
    from workflows.contract import LegState, LegStatus

from workflows.progress import RefundProgress

RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=NON_RETRYABLE,
)
PAYMENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=NON_RETRYABLE,
)
CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=5,
    non_retryable_error_types=NON_RETRYABLE,
)
DEFAULT_POLL = timedelta(hours=1)
RING_GAP = timedelta(seconds=5)
DEFAULT_SETTLEMENT_DAYS = 10
AUTHORITY = "system-of-record"

LEG_ACTIVITIES = {
    Channel.ALIPAY: PaymentActivities.return_to_alipay,
    Channel.BANK: PaymentActivities.return_to_bank,
    Channel.ACCOUNT_BALANCE: PaymentActivities.return_to_account_balance,
}


class NeedsAttentionError(Exception):
    """Money could not be returned; a person must act before the refund goes on."""


class RequestRefusedError(Exception):
    """The system of record refused the request outright as the refund took its hold: nothing
    is held, the refund is rejected."""


class Payout:
    def __init__(
        self,
        progress: RefundProgress,
        notify: Callable[[str], Awaitable[None]],
        may_continue_as_new: Callable[[], bool],
    ) -> None:
        self.progress = progress
        self.notify = notify
        self.may_continue_as_new = may_continue_as_new
        """Whether the history is long and a new run may take over (signal floods)."""
        self.authorized = False
        """Patch v6: the system of record authorizes paying, and legs may settle later."""
        self.hold_first = False
        """An auto-approval takes the certificate's hold with its authorization."""
        self.rings = 0
        """``settlement_changed`` signals received: a settling leg is asked about at once."""
        self._rings_asked = 0
        """``rings`` when the settling legs were last asked about (a ring received while the
        leg was being paid is answered as soon as the refund waits)."""
        self._settling_told = False

    async def pay_out(self, revoke: bool) -> None:
        """Authorize and release the certificate if not yet done, then return every unsettled
        leg, and wait for those that settle later."""
        progress = self.progress
        if not progress.certificate_released:
            if self.authorized:
                await self._authorize()
            await self._release(revoke)
        pending = unsettled(progress.legs)
        problems = [p for p in await asyncio.gather(*map(self._return_leg, pending)) if p]
        if self.authorized:
            problems += await self._settle()
        if problems:
            raise NeedsAttentionError("; ".join(problems))

    async def _authorize(self) -> None:
        progress = self.progress
        grant = PaymentGrant(
            certificate_id=progress.request.certificate_id,
            refund_id=progress.refund_id,
            request=progress.request,
            evidence=progress.evidence,
            approval=progress.approval,
            hold=self.hold_first,
        )
        try:
            approved_by = await workflow.execute_activity_method(
                RecordActivities.authorize_payment,
                grant,
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary=f"the system of record checks the evidence ({progress.evidence})",
            )
        except ActivityError as err:
            progress.record(AUTHORITY, "payment not authorized", False, cause(err))
            if self.hold_first:
                raise RequestRefusedError(cause(err)) from err
            raise NeedsAttentionError(cause(err)) from err
        self.hold_first = False
        progress.record(AUTHORITY, "payment authorized", detail=approved_by)

    async def _release(self, revoke: bool) -> None:
        step, what, who = (
            (
                RecordActivities.revoke_certificate,
                "revoke the certificate",
                "the certificate authority",
            )
            if revoke
            else (RecordActivities.cancel_order, "cancel the certificate order", "the order system")
        )
        since = workflow.now()
        try:
            await workflow.execute_activity_method(
                step,
                CertificateChange(
                    certificate_id=self.progress.request.certificate_id,
                    refund_id=self.progress.refund_id,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                schedule_to_close_timeout=self._patience(),
                retry_policy=RECORD_RETRY,
            )
        except ActivityError as err:
            if self.authorized and not revoke and _failure_type(err) == CERTIFICATE_ISSUED:
                self.progress.record("system", "issued since the decision: revoked instead")
                self.progress.revoke = True
                await self._release(True)
                return
            why = unavailable(who, since, err) or f"{what} failed: {cause(err)}"
            raise NeedsAttentionError(why) from err
        self.progress.certificate_released = True
        self.progress.record("system", "certificate revoked" if revoke else "order cancelled")

    async def _return_leg(self, leg: LegStatus) -> str | None:
        progress = self.progress
        channel = leg.channel
        while True:
            since = workflow.now()
            try:
                receipt = await self._pay(leg, channel)
                break
            except ActivityError as err:
                why = unavailable(channel.value, since, err) or cause(err)
                progress.record("system", f"{channel.value} return failed", False, why)
                if not self._may_fall_back(channel, err):
                    progress.update_leg(leg.index, status=LegState.FAILED, detail=why)
                    return leg_problem(channel, leg, why)
                channel = Channel.ACCOUNT_BALANCE
                progress.record("system", f"leg {leg.index} falls back to account_balance")
        self._paid(leg, channel, receipt)
        return None

    async def _pay(self, leg: LegStatus, channel: Channel) -> PaymentReceipt:
        progress = self.progress
        assert progress.certificate is not None
        currency = progress.certificate.order.currency
        return await workflow.execute_activity_method(
            LEG_ACTIVITIES[channel],
            leg_payment(progress.refund_id, progress.certificate, leg),
            start_to_close_timeout=RECORD_TIMEOUT,
            schedule_to_close_timeout=self._patience(),
            retry_policy=PAYMENT_RETRY,
            summary=f"return {leg.amount} {currency} to {channel.value}",
        )

    def _paid(self, leg: LegStatus, channel: Channel, receipt: PaymentReceipt) -> None:
        """Record what the channel answered: returned, or accepted and settling."""
        progress = self.progress
        fell_back = channel is not leg.channel
        if receipt.settling:
            progress.update_leg(
                leg.index,
                status=LegState.SETTLING,
                transaction_id=receipt.transaction_id,
                accepted_at=receipt.accepted_at or workflow.now(),
                detail=f"{channel.value} accepted the return; the money is on its way",
            )
            progress.record(
                "system",
                f"{channel.value} accepted {leg.amount}: settling",
                detail=receipt.transaction_id,
            )
            return
        progress.update_leg(
            leg.index,
            status=LegState.RETURNED,
            transaction_id=receipt.transaction_id,
            returned_via=channel if fell_back else None,
            detail=f"{leg.channel.value} refused; returned to account_balance instead"
            if fell_back
            else "",
        )
        progress.record(
            "system", f"returned {leg.amount} to {channel.value}", detail=receipt.transaction_id
        )
        metrics.count_returned(int(leg.amount * 100), channel.value)

    def _may_fall_back(self, channel: Channel, err: ActivityError) -> bool:
        assessment = self.progress.assessment
        allowed = assessment is not None and assessment.fallback_to_balance
        return may_fall_back(channel, err, allowed)

    async def _settle(self) -> list[str]:
        """Wait for the legs a channel accepted to settle; problems for those that fail for
        good or stay unconfirmed past the settlement patience."""
        progress = self.progress
        if not _settling(progress.legs):
            return []
        if not self._settling_told:
            self._settling_told = True
            await self.notify("")
        assessment = progress.assessment
        days = (assessment.settlement_patience_days if assessment else None) or (
            DEFAULT_SETTLEMENT_DAYS
        )
        poll_seconds = assessment.settlement_poll_seconds if assessment else None
        poll = timedelta(seconds=poll_seconds) if poll_seconds else DEFAULT_POLL
        accepted = [leg.accepted_at for leg in _settling(progress.legs) if leg.accepted_at]
        deadline: datetime = await workflow.execute_local_activity_method(
            AssessmentActivities.count_settlement_deadline,
            SettlementDeadlineInput(
                since=min(accepted, default=workflow.now()), business_days=days
            ),
            start_to_close_timeout=timedelta(seconds=10),
        )
        problems: list[str] = []
        rings, checked = self._rings_asked, workflow.now() - RING_GAP
        while legs := _settling(progress.legs):
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                problems += [p for p in [await self._check(leg) for leg in legs] if p]
                for leg in _settling(progress.legs):
                    why = (
                        f"{leg.channel.value} has neither confirmed nor failed the return it "
                        f"accepted at {leg.accepted_at:%Y-%m-%d %H:%M} UTC within {days} "
                        "business days: ask the bank, then retry"
                    )
                    progress.record("system", "settlement overdue", False, why)
                    problems.append(leg_problem(leg.channel, leg, why))
                break
            gap = RING_GAP - (workflow.now() - checked)
            if self.rings != rings and gap > timedelta(0):
                await workflow.sleep(gap)  # a flood of signals asks the channel this often
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self.rings != rings or self.may_continue_as_new(),  # noqa: B023
                    timeout=min(poll, remaining),
                )
            if self.may_continue_as_new():
                workflow.continue_as_new(progress.carry())
            rings, checked = self.rings, workflow.now()
            self._rings_asked = rings
            for leg in legs:
                problem = await self._check(leg)
                if problem:
                    problems.append(problem)
        return problems

    async def _check(self, leg: LegStatus) -> str | None:
        progress = self.progress
        assert progress.certificate is not None
        try:
            found = await workflow.execute_activity_method(
                PaymentActivities.check_settlement,
                leg_payment(progress.refund_id, progress.certificate, leg),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=CHECK_RETRY,
                summary=f"has {leg.channel.value} settled {leg.amount}?",
            )
        except ActivityError as err:
            progress.record("system", "settlement not checked", False, cause(err))
            return None
        if found.status == "settling":
            return None
        if found.status == "returned":
            progress.update_leg(
                leg.index, status=LegState.RETURNED, transaction_id=found.transaction_id, detail=""
            )
            progress.record("system", f"{leg.channel.value} settled {leg.amount}")
            metrics.count_returned(int(leg.amount * 100), leg.channel.value)
            return None
        progress.record("system", f"{leg.channel.value} settlement failed", False, found.reason)
        assessment = progress.assessment
        if assessment is None or not assessment.fallback_to_balance:
            progress.update_leg(leg.index, status=LegState.FAILED, detail=found.reason)
            return leg_problem(leg.channel, leg, found.reason)
        progress.record("system", f"leg {leg.index} falls back to account_balance")
        try:
            receipt = await self._pay(leg, Channel.ACCOUNT_BALANCE)
        except ActivityError as err:
            progress.update_leg(leg.index, status=LegState.FAILED, detail=cause(err))
            return leg_problem(Channel.ACCOUNT_BALANCE, leg, cause(err))
        self._paid(leg, Channel.ACCOUNT_BALANCE, receipt)
        return None

    def _patience(self) -> timedelta | None:
        assessment = self.progress.assessment
        return patience(assessment.payment_patience_seconds if assessment else None)


def _settling(legs: list[LegStatus]) -> list[LegStatus]:
    return [leg for leg in legs if leg.status is LegState.SETTLING]


def _failure_type(err: ActivityError) -> str | None:
    return getattr(err.cause, "type", None)
