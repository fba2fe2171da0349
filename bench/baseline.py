"""The baseline: a workflow making the same kind and number of activity calls as an auto refund,
and the same HTTP calls to the channels (Alipay's refund, the provider's refund and the look-up of
its settlement, through the same adapters), with no business logic, rules, system of record,
authorization, search attributes or audit trail."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from pydantic import BaseModel
from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from activities.gateways import ChannelRefund, PaymentChannel

TIMEOUT = timedelta(seconds=30)


class BaselineInput(BaseModel):
    refund_id: str
    alipay_reference: str
    bank_reference: str


class BaselineLeg(BaseModel):
    key: str
    reference: str
    amount: Decimal


@activity.defn(name="baseline_step")
def baseline_step(name: str) -> str:
    return name


class BaselineChannels:
    """The legs' HTTP calls, made as the refund's adapters make them, and nothing more."""

    def __init__(self, alipay: PaymentChannel, bank: PaymentChannel) -> None:
        self.alipay = alipay
        self.bank = bank

    @activity.defn(name="baseline_alipay")
    async def to_alipay(self, leg: BaselineLeg) -> str:
        answer = await self.alipay.refund(_order(self.alipay, leg))
        return answer.outcome.value

    @activity.defn(name="baseline_bank")
    async def to_bank(self, leg: BaselineLeg) -> str:
        await self.bank.refund(_order(self.bank, leg))
        return "sent"

    @activity.defn(name="baseline_bank_settled")
    async def bank_settled(self, leg: BaselineLeg) -> str:
        answer = await self.bank.lookup(_order(self.bank, leg))
        return answer.outcome.value if answer else "unknown"


def _order(channel: PaymentChannel, leg: BaselineLeg) -> ChannelRefund:
    return ChannelRefund(
        idempotency_key=leg.key,
        request_id=channel.request_id(leg.key),
        reference=leg.reference,
        amount=leg.amount,
        currency="CNY",
        owner="baseline",
    )


@workflow.defn
class BaselineWorkflow:
    """load and assess (local), cancel order, each leg in parallel, the bank's settlement,
    mark refunded, notify."""

    @workflow.run
    async def run(self, request: BaselineInput) -> str:
        await workflow.execute_local_activity(baseline_step, "load", start_to_close_timeout=TIMEOUT)
        await workflow.execute_local_activity(
            baseline_step, "assess", start_to_close_timeout=TIMEOUT
        )
        await workflow.execute_activity(baseline_step, "cancel", start_to_close_timeout=TIMEOUT)
        alipay = BaselineLeg(
            key=f"{request.refund_id}:leg-0",
            reference=request.alipay_reference,
            amount=Decimal("199.00"),
        )
        bank = BaselineLeg(
            key=f"{request.refund_id}:leg-1",
            reference=request.bank_reference,
            amount=Decimal("100.00"),
        )
        await asyncio.gather(
            workflow.execute_activity_method(
                BaselineChannels.to_alipay, alipay, start_to_close_timeout=TIMEOUT
            ),
            workflow.execute_activity_method(
                BaselineChannels.to_bank, bank, start_to_close_timeout=TIMEOUT
            ),
        )
        await workflow.execute_activity_method(
            BaselineChannels.bank_settled, bank, start_to_close_timeout=TIMEOUT
        )
        await workflow.execute_activity(baseline_step, "refunded", start_to_close_timeout=TIMEOUT)
        await workflow.execute_activity(baseline_step, "notify", start_to_close_timeout=TIMEOUT)
        return "refunded"
