"""The money activities ask the system of record, and keep the exactly-once record, whatever a
workflow tells them: run here as Temporal runs them (``ActivityEnvironment``), on a real system of
record, with a channel that counts what it is asked."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.authorization import PaymentAuthority
from activities.evidence import AuthorityTerms
from activities.gateways import (
    ChannelAnswer,
    ChannelOutcome,
    ChannelRefund,
    ChannelUnknownError,
)
from activities.payloads import HoldRequest, LegPayment, ManualSettlement, PaymentGrant
from activities.payments import PaymentActivities
from domain.certificates import Channel
from domain.errors import (
    PAYMENT_REJECTED,
    PAYMENT_UNAUTHORIZED,
    PAYMENT_UNKNOWN,
    PaymentUnauthorizedError,
)
from domain.signatures import Role, SignedAction, sign
from storage.ledger import Ledger
from storage.payment_attempts import PaymentAttempts
from storage.payment_refusals import PaymentRefusals
from tests.factories import certificate
from tests.signing import enrol, key_of, signed_request
from workflows.business_days import BusinessCalendar
from workflows.contract import RefundReason, RefundRequest

REFUND = "refund-cas-1"
RUN = "run-1"
"""The workflow run the activities are scheduled by, as Temporal would name it."""
NOW = datetime.now(UTC)


class CountingChannel:
    """A channel that keeps its own record of returns by request id, and can lose answers."""

    def __init__(self, channel: Channel, refuse: bool = False) -> None:
        self.channel = channel
        self.refuse = refuse
        self.paid: dict[str, Decimal] = {}
        self.refunds = self.lookups = 0
        self.lose_next = False

    def request_id(self, idempotency_key: str) -> str:
        return f"rq-{idempotency_key}"

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        self.refunds += 1
        if self.refuse:
            return ChannelAnswer(ChannelOutcome.REFUSED, code="closed", reason="account closed")
        self.paid.setdefault(order.request_id, order.amount)
        if self.lose_next:
            self.lose_next = False
            raise ChannelUnknownError("connection reset after the money moved")
        return self._answer(order)

    async def lookup(self, order: ChannelRefund) -> ChannelAnswer | None:
        self.lookups += 1
        return self._answer(order) if order.request_id in self.paid else None

    def _answer(self, order: ChannelRefund) -> ChannelAnswer:
        return ChannelAnswer(ChannelOutcome.RETURNED, transaction_id=f"tx-{order.request_id}")


class World:
    def __init__(self, store, *, fallback: bool = False, refuse_alipay: bool = False) -> None:
        self.store = store
        self.now = NOW
        self.alipay = CountingChannel(Channel.ALIPAY, refuse=refuse_alipay)
        self.balance = CountingChannel(Channel.ACCOUNT_BALANCE)
        self.authority = PaymentAuthority(
            store,
            AuthorityTerms("Asia/Shanghai", "approve", fallback_to_balance=fallback),
            BusinessCalendar,
            lambda refund_id: self.now,
        )
        engine = store.engine
        self.refusals = PaymentRefusals(engine)
        self.payments = PaymentActivities(
            {Channel.ALIPAY: self.alipay, Channel.ACCOUNT_BALANCE: self.balance},
            self.authority,
            Ledger(engine),
            PaymentAttempts(engine),
            self.refusals,
        )
        self.env = ActivityEnvironment()
        self.env.info = dataclasses.replace(
            self.env.info, workflow_id=REFUND, workflow_type="RefundWorkflow"
        )

    async def run(self, activity, argument):
        return await self.env.run(activity, argument)


def seed(store, *, bought_days_ago: int = 1):
    cert = certificate(
        "cas-1",
        purchased_at=NOW - timedelta(days=bought_days_ago),
        payments=[
            {"channel": "alipay", "amount": "199.00", "reference": "ali-cas-1"},
            {"channel": "voucher", "amount": "50.00", "reference": "vch-cas-1"},
        ],
    )
    store.seed([cert])
    enrol(store.engine, {Role.CUSTOMER: ["user-1"], Role.REVIEWER: ["rev-1"]})
    enrol(store.engine, {Role.OPERATOR: ["operator-1"]})
    return cert


def request(at: datetime = NOW, requester: str = "user-1") -> RefundRequest:
    asked = RefundRequest(
        certificate_id="cas-1", requester=requester, reason=RefundReason.NO_LONGER_NEEDED
    )
    return signed_request(REFUND, asked, at)


def leg(index: int = 0, key: str | None = None) -> LegPayment:
    return LegPayment(
        refund_id=REFUND,
        certificate_id="cas-1",
        leg_index=index,
        idempotency_key=key or f"{REFUND}:leg-{index}",
    )


def authorized(world: World, asked: RefundRequest | None = None) -> None:
    """The auto-approval's steps before money: hold and authorize, then cancel the order."""
    world.authority.authorize(
        PaymentGrant(
            certificate_id="cas-1",
            refund_id=REFUND,
            request=asked or request(),
            evidence="rules",
            hold=True,
        ),
        RUN,
    )
    world.store.cancel_order("cas-1", REFUND)


async def refused(world: World, activity, argument) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        await world.run(activity, argument)
    return raised.value


async def test_an_authorized_leg_is_paid_once_for_the_orders_own_amount(store):
    seed(store)
    world = World(store)
    authorized(world)
    first = await world.run(world.payments.return_to_alipay, leg())
    again = await world.run(world.payments.return_to_alipay, leg())
    assert (first.already_returned, again.already_returned) == (False, True)
    assert world.alipay.refunds == 1 and world.alipay.paid == {
        f"rq-{REFUND}:leg-0": Decimal("199.00")
    }
    assert [e.amount for e in Ledger(store.engine).entries()] == [Decimal("199.00")]


async def test_a_payment_nobody_authorized_reaches_no_channel_and_is_recorded(store):
    seed(store)
    world = World(store)
    error = await refused(world, world.payments.return_to_alipay, leg())
    assert error.type == PAYMENT_UNAUTHORIZED and error.non_retryable
    assert world.alipay.refunds == world.alipay.lookups == 0
    [refusal] = world.refusals.recent()
    assert (refusal.refund_id, refusal.leg_index) == (REFUND, 0)
    assert "no authorized request" in refusal.reason


async def test_an_unsigned_forged_or_foreign_request_takes_no_hold(store):
    seed(store)
    world = World(store)
    unsigned = RefundRequest(
        certificate_id="cas-1", requester="user-1", reason="other", feedback="x"
    )
    forged = request().model_copy(update={"reason": RefundReason.OTHER, "feedback": "changed"})
    for bad in (unsigned, forged, request(requester="rev-1")):
        with pytest.raises(PaymentUnauthorizedError):
            world.authority.hold(
                HoldRequest(certificate_id="cas-1", refund_id=REFUND, request=bad), RUN
            )
    assert store.get("cas-1").held_by is None


async def test_a_stale_request_is_refused_and_a_closed_one_never_holds_again(store):
    seed(store)
    world = World(store)
    stale = request(at=NOW - timedelta(minutes=11))
    with pytest.raises(PaymentUnauthorizedError, match="10 minutes"):
        world.authority.hold(
            HoldRequest(certificate_id="cas-1", refund_id=REFUND, request=stale), RUN
        )
    asked = request()
    world.authority.hold(HoldRequest(certificate_id="cas-1", refund_id=REFUND, request=asked), RUN)
    store.restore("cas-1", REFUND)  # rejected: given back, nothing paid
    with pytest.raises(PaymentUnauthorizedError, match="closed"):
        world.authority.hold(
            HoldRequest(certificate_id="cas-1", refund_id=REFUND, request=asked), RUN
        )


async def test_a_request_held_again_by_another_run_must_be_fresh_and_a_reviewer_must_approve(
    store,
):
    """A reviewer rejected the request, and the refund was terminated before it gave the
    certificate back: the rejection never reached the system of record. Another run of the refund
    holding the same request again is refused once the request is stale, and within its ten
    minutes it may be paid only on a reviewer's approval, never on the deadline alone."""
    seed(store, bought_days_ago=10)
    world = World(store)
    asked = request()
    hold = HoldRequest(certificate_id="cas-1", refund_id=REFUND, request=asked)
    world.authority.hold(hold, RUN)
    world.authority.hold(hold, RUN)  # the same run, its activity retried
    world.now = NOW + timedelta(minutes=11)
    with pytest.raises(PaymentUnauthorizedError, match="held by another run of the refund"):
        world.authority.hold(hold, "run-started-again")
    world.now = NOW + timedelta(minutes=5)
    world.authority.hold(hold, "run-started-again")
    world.now = NOW + timedelta(days=40)
    deadline = PaymentGrant(
        certificate_id="cas-1", refund_id=REFUND, request=asked, evidence="deadline"
    )
    with pytest.raises(PaymentUnauthorizedError, match="the deadline alone cannot approve it"):
        world.authority.authorize(deadline, "run-started-again")


async def test_the_rules_are_judged_as_of_the_signed_request_even_past_midnight(store):
    seed(store, bought_days_ago=5)  # the last day of auto-approval
    world = World(store)
    asked = request()
    world.authority.hold(HoldRequest(certificate_id="cas-1", refund_id=REFUND, request=asked), RUN)
    world.now = NOW + timedelta(days=2)  # retried days later: bought 7 days ago by then
    authorized(world, asked)
    assert (await world.run(world.payments.return_to_alipay, leg())).transaction_id


async def test_the_rules_do_not_authorize_what_needed_a_review(store):
    seed(store, bought_days_ago=10)
    world = World(store)
    with pytest.raises(PaymentUnauthorizedError, match="manual_review"):
        authorized(world)
    assert store.get("cas-1").held_by is None  # the refused authorization took no hold either


def approval(reviewer: str, at: datetime, note: str = "ok") -> SignedAction:
    return SignedAction(
        actor=reviewer,
        text=note,
        signature=sign(key_of(reviewer), REFUND, "approve", reviewer, note, at),
    )


@pytest.mark.parametrize(
    ("reviewer", "signer", "problem"),
    [
        ("rev-1", "rev-2", "not signed by rev-1"),
        ("user-1", "user-1", "not a reviewer"),
        ("intruder", "intruder", "not in the people directory"),
    ],
)
async def test_an_approval_only_a_listed_reviewers_key_proves_authorizes(
    store, reviewer, signer, problem
):
    seed(store, bought_days_ago=10)
    world = World(store)
    asked = request()
    world.authority.hold(HoldRequest(certificate_id="cas-1", refund_id=REFUND, request=asked), RUN)
    forged = approval(signer, NOW).model_copy(update={"actor": reviewer})
    grant = PaymentGrant(
        certificate_id="cas-1",
        refund_id=REFUND,
        request=asked,
        evidence="reviewer",
        approval=forged,
    )
    with pytest.raises(PaymentUnauthorizedError, match=problem):
        world.authority.authorize(grant, RUN)
    good = grant.model_copy(update={"approval": approval("rev-1", NOW)})
    assert world.authority.authorize(good, RUN).approved_by == "rev-1"


async def test_the_deadline_authorizes_only_once_it_has_passed(store):
    seed(store, bought_days_ago=10)
    world = World(store)
    asked = request()
    world.authority.hold(HoldRequest(certificate_id="cas-1", refund_id=REFUND, request=asked), RUN)
    grant = PaymentGrant(
        certificate_id="cas-1", refund_id=REFUND, request=asked, evidence="deadline"
    )
    with pytest.raises(PaymentUnauthorizedError, match="has not passed"):
        world.authority.authorize(grant, RUN)
    world.now = NOW + timedelta(days=30)
    assert world.authority.authorize(grant, RUN).evidence == "deadline"


async def test_nothing_is_paid_back_before_the_certificate_is_released(store):
    seed(store)
    world = World(store)
    world.authority.authorize(
        PaymentGrant(
            certificate_id="cas-1", refund_id=REFUND, request=request(), evidence="rules", hold=True
        ),
        RUN,
    )
    error = await refused(world, world.payments.return_to_alipay, leg())
    assert "revoked the certificate or cancelled its order" in error.message
    assert world.alipay.refunds == 0


async def test_another_legs_key_a_voucher_or_a_made_up_leg_is_refused(store):
    seed(store)
    world = World(store)
    authorized(world)
    for bad in (leg(0, key=f"{REFUND}:leg-1"), leg(1), leg(7), leg(0, key="refund-other:leg-0")):
        error = await refused(world, world.payments.return_to_alipay, bad)
        assert error.type == PAYMENT_UNAUTHORIZED
    assert world.alipay.refunds == 0 and len(world.refusals.recent()) == 4


async def test_a_lost_answer_is_asked_about_with_the_same_request_id_and_paid_once(store):
    seed(store)
    world = World(store)
    authorized(world)
    world.alipay.lose_next = True
    error = await refused(world, world.payments.return_to_alipay, leg())
    assert error.type == PAYMENT_UNKNOWN and not error.non_retryable
    receipt = await world.run(world.payments.return_to_alipay, leg())
    assert (world.alipay.refunds, world.alipay.lookups) == (1, 1)
    assert receipt.transaction_id == f"tx-rq-{REFUND}:leg-0"


async def test_the_balance_pays_only_after_the_leg_s_own_channel_refused_and_if_allowed(store):
    seed(store)
    for fallback in (False, True):
        world = World(store, fallback=fallback, refuse_alipay=True)
        if not fallback:
            authorized(world)
            error = await refused(world, world.payments.return_to_account_balance, leg())
            assert "no fallback" in error.message  # before the channel refused: never
        error = await refused(world, world.payments.return_to_alipay, leg())
        assert error.type == PAYMENT_REJECTED
        if fallback:
            receipt = await world.run(world.payments.return_to_account_balance, leg())
            assert receipt.channel == "account_balance"
        else:
            await refused(world, world.payments.return_to_account_balance, leg())
    [entry] = Ledger(store.engine).entries()
    assert (entry.channel, entry.original_channel) == ("account_balance", "alipay")


def resolve(operator: str, note: str, at: datetime = NOW) -> SignedAction:
    signature = sign(key_of(operator), REFUND, "resolve", operator, note, at)
    return SignedAction(actor=operator, text=note, signature=signature)


async def test_a_manual_return_needs_an_operators_signed_resolve(store):
    seed(store)
    world = World(store)
    authorized(world)
    unsigned = ManualSettlement(**leg().model_dump())
    by_reviewer = ManualSettlement(**leg().model_dump(), resolve=resolve("rev-1", "wired"))
    for bad in (unsigned, by_reviewer):
        error = await refused(world, world.payments.record_manual_return, bad)
        assert error.type == PAYMENT_UNAUTHORIZED
    assert Ledger(store.engine).entries() == []
    good = ManualSettlement(**leg().model_dump(), resolve=resolve("operator-1", "wired"))
    receipt = await world.run(world.payments.record_manual_return, good)
    assert receipt.channel == "manual"
    assert (await world.run(world.payments.return_to_alipay, leg())).already_returned
    assert world.alipay.refunds == 0


async def test_a_manual_return_finds_the_channel_paid_late_and_records_nothing_more(store):
    seed(store)
    world = World(store)
    authorized(world)
    world.alipay.lose_next = True
    await refused(world, world.payments.return_to_alipay, leg())  # paid, the answer lost
    settled = ManualSettlement(**leg().model_dump(), resolve=resolve("operator-1", "wired"))
    receipt = await world.run(world.payments.record_manual_return, settled)
    assert receipt.channel == "alipay" and "nothing more is due" in receipt.detail
    assert [e.channel for e in Ledger(store.engine).entries()] == ["alipay"]


@pytest.mark.parametrize(
    ("workflow_id", "workflow_type"),
    [("refund-cas-1-replayed", "RefundWorkflow"), (REFUND, "ImpostorWorkflow")],
)
async def test_a_payment_scheduled_by_any_other_workflow_is_refused_whatever_it_sends(
    store, workflow_id, workflow_type
):
    """The leg's own payload, replayed by another workflow while the refund runs, pays nothing."""
    seed(store)
    world = World(store)
    authorized(world)
    world.env.info = dataclasses.replace(
        world.env.info, workflow_id=workflow_id, workflow_type=workflow_type
    )
    error = await refused(world, world.payments.return_to_alipay, leg())
    assert f"not by the refund {REFUND}" in error.message
    assert world.alipay.refunds == 0
    [refusal] = world.refusals.recent()
    assert (refusal.workflow_id, refusal.workflow_type) == (workflow_id, workflow_type)
