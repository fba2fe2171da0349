"""How a refund ends: rejected or cancelled (its hold released), refunded (paid out, waiting in
``needs_attention`` for an operator while a payment cannot be made), or completed after a reset
or a repair. The workflow's paths decide which; these carry it out."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.records import RecordActivities
    from domain.certificates import CertificateStatus
    from domain.signatures import Role
    from workflows.contract import RefundState, ReviewAction

from workflows.audit import bounded
from workflows.by_hand import settle_by_hand
from workflows.payout import NeedsAttentionError, Payout
from workflows.payout_rules import cause
from workflows.progress import RefundProgress
from workflows.review_desk import TEMPORAL_CANCELLATION, ReviewDesk
from workflows.steps import SYSTEM, RefundSteps

ALREADY_RELEASED = (
    "this refund had already revoked the certificate or cancelled its order, so it completes "
    "and pays only what is still due"
)


class Endings:
    def __init__(
        self,
        progress: RefundProgress,
        steps: RefundSteps,
        desk: ReviewDesk,
        payout: Payout,
        *,
        operator_proof: Callable[[], bool],
    ) -> None:
        self.progress = progress
        self.steps = steps
        self.desk = desk
        self.payout = payout
        self.operator_proof = operator_proof
        """Patch v3 (``operator-proof``): known once the run starts."""

    async def reject(self, actor: str, reason: str, *, restore: bool) -> None:
        progress = self.progress
        if restore and not await self.release_hold():
            await self.resume(SYSTEM, f"not rejected ({bounded(reason, 200)}): {ALREADY_RELEASED}")
            return
        progress.decided_by = actor
        progress.reject_because(reason)
        progress.close_unpaid_legs("not refunded")
        self.steps.set_state(RefundState.REJECTED)
        await self.steps.notify(progress.rejection_reason or "")

    async def cancel(self, *, hold: bool) -> None:
        by_temporal = self.desk.cancelled_through_temporal
        if by_temporal:
            await self.desk.cancellation_audited()
        if hold and not await self.release_hold():
            await self.resume(SYSTEM, "not cancelled: " + ALREADY_RELEASED)
            return
        who = "through Temporal" if by_temporal else "by the requester"
        self.progress.close_unpaid_legs(f"cancelled {who}")
        self.steps.set_state(RefundState.CANCELLED)
        await self.steps.notify(TEMPORAL_CANCELLATION if by_temporal else "")

    async def release_hold(self) -> bool:
        """Give the certificate back its status; ``False`` when this refund had already revoked
        it or cancelled its order (a re-run after a reset): then the refund must complete."""
        steps = self.steps
        try:
            status = await steps.run(RecordActivities.restore_certificate)
        except ActivityError as err:
            self.progress.record(SYSTEM, "certificate not restored", False, cause(err))
            return True
        if not self.operator_proof() or status in (
            CertificateStatus.PAID,
            CertificateStatus.ISSUED,
        ):
            return True
        certificate = await steps.load_certificate()
        return certificate is None or not steps.released_by_this_refund(certificate)

    async def resume(self, actor: str, why: str) -> None:
        """Complete what an earlier run of this refund started: pay only what is still due."""
        progress = self.progress
        progress.certificate_released = True
        progress.record(actor, why)
        progress.decided_by = progress.decided_by or actor
        await self.refund(revoke=False)

    async def repair(self, released: bool) -> None:
        """``refunds repair``: an operator settles what a terminated refund left behind."""
        progress = self.progress
        repair = progress.request.repair
        assert repair is not None and progress.assessment is not None
        refusal = None
        await self.desk.signed.waiting_for_a_person()  # the operator is checked now
        operators = self.desk.signed.allowed(Role.OPERATOR, progress.assessment.operators)
        if operators is None or repair.operator not in operators:
            refusal = f"{repair.operator} is not on the operator list"
        elif not await self.steps.claim_repair_order(repair):
            refusal = "no matching repair order was recorded by `refunds repair`"
        if refusal is not None:
            await self.refuse_early(refusal)
            return
        progress.decided_by = repair.operator
        if repair.action == "release" and not released:
            progress.record(repair.operator, "hold released by an operator", detail=repair.note)
            if await self.release_hold():
                progress.close_unpaid_legs("the hold was released by an operator")
                self.steps.set_state(RefundState.CANCELLED)
                await self.steps.notify(repair.note)
                return
            await self.resume(SYSTEM, "not released: " + ALREADY_RELEASED)
            return
        progress.record(repair.operator, "books completed by an operator", detail=repair.note)
        progress.certificate_released = released
        progress.evidence = "repair"
        await self.refund(revoke=self.steps.revoke_required())

    async def refund(self, *, revoke: bool, waiting: bool = False) -> None:
        progress, steps, desk = self.progress, self.steps, self.desk
        progress.revoke = revoke
        if not waiting:
            steps.set_state(RefundState.REFUNDING)
        while True:
            if not waiting:
                try:
                    await self.payout.pay_out(revoke)
                    break
                except NeedsAttentionError as problem:
                    progress.needs_attention_because(str(problem))
                    await desk.signed.waiting_for_a_person()
                    steps.set_state(RefundState.NEEDS_ATTENTION)
                    workflow.logger.warning(
                        "refund needs attention", extra={"reason": progress.attention_reason}
                    )
            waiting = False
            await self.await_operator()
            action, desk.operator_action = desk.operator_action, None
            progress.needs_attention_because("")
            steps.set_state(RefundState.REFUNDING)
            if action is not None and action.action is ReviewAction.RESOLVE:
                await settle_by_hand(
                    progress,
                    action.actor,
                    action.text,
                    action.signed,
                    authorized=self.payout.authorized,
                )
        await steps.run(RecordActivities.mark_refunded)
        steps.set_state(RefundState.REFUNDED)
        await steps.notify("")

    async def await_operator(self) -> None:
        desk = self.desk
        if not self.operator_proof():
            await workflow.wait_condition(lambda: desk.operator_action is not None)
            return
        while desk.operator_action is None:
            await workflow.wait_condition(
                lambda: desk.operator_action is not None or self.may_continue_as_new()
            )
            if desk.operator_action is None and self.may_continue_as_new():
                workflow.continue_as_new(self.progress.carry())

    async def refuse_early(self, reason: str) -> None:
        """Rejected before anything was held or decided: nothing changes, nobody is notified."""
        self.desk.choose_path(f"the request was rejected first: {reason}")
        self.progress.reject_because(reason)
        self.steps.set_state(RefundState.REJECTED)

    def may_continue_as_new(self) -> bool:
        """The history is long, and nothing is in flight that a new run could not take over."""
        assessment = self.progress.assessment
        if not self.operator_proof() or assessment is None:
            return False
        info = workflow.info()
        events, size = assessment.history_event_limit, assessment.history_bytes_limit
        too_long = (
            info.is_continue_as_new_suggested()
            or (events is not None and info.get_current_history_length() >= events)
            or (size is not None and info.get_current_history_size() >= size)
        )
        return (
            too_long
            and workflow.all_handlers_finished()
            and (self.steps.support_ticket is None or self.steps.support_ticket.done())
            and self.desk.cancellation_settled
        )


def revoke_choice(known: bool | None, decided: bool) -> bool:
    """The revoke decision made as money started to move (the certificate may have been issued
    during the review), else the rules' decision."""
    return decided if known is None else known


def is_rerun() -> bool:
    """A reset keeps the first run's id and input; a new submission starts a new chain."""
    info = workflow.info()
    return info.run_id != info.first_execution_run_id and info.continued_run_id is None
