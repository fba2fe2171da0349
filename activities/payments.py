"""Payment activities: return one leg to its channel, follow a leg that is settling, or record a
leg an operator settled by hand.

Each first asks the system of record (``activities.authorization``): what it is sent is ids, and
the amount, reference and channel are the order's own, paid only with evidence. Then the
exactly-once record: a leg in the ledger is never sent again; before the first call the attempt is
recorded, so an attempt after a lost or unbelievable answer asks the channel about the same
request id before anything else (``lookup``), and only a channel that never received it is asked
again, with the same id. The channel's answer is recorded under the leg's key: a retry, a crash, a
reset or a replay finds either the record or the channel's first answer, so a leg is paid once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channel_calls import (
    attempt_on,
    channel_order,
    refusal_text,
    unknown_outcome,
    when,
)
from activities.gateways import (
    ChannelAnswer,
    ChannelOutcome,
    ChannelUnknownError,
    PaymentChannel,
)
from activities.payloads import LegPayment, ManualSettlement, PaymentReceipt, Settlement
from activities.refused import refused, scheduled_by_the_refund
from domain.certificates import Channel
from domain.errors import (
    PAYMENT_ATTENTION,
    PAYMENT_REJECTED,
    PAYMENT_UNKNOWN,
    CertificateNotFoundError,
    PaymentUnauthorizedError,
)
from domain.ledger import (
    FAILED,
    MANUAL,
    REFUSED,
    RETURNED,
    SENT,
    SETTLING,
    LedgerEntry,
    Return,
    manual_transaction_id,
)

if TYPE_CHECKING:
    from activities.authorization import LegToPay, PaymentAuthority
    from storage.ledger import Ledger
    from storage.payment_attempts import PaymentAttempts
    from storage.payment_refusals import PaymentRefusals

T = TypeVar("T")


class PaymentActivities:
    def __init__(
        self,
        channels: Mapping[Channel, PaymentChannel],
        authority: PaymentAuthority,
        ledger: Ledger,
        attempts: PaymentAttempts,
        refusals: PaymentRefusals,
    ) -> None:
        self.channels = channels
        self.authority = authority
        self.ledger = ledger
        self.attempts = attempts
        self.refusals = refusals

    @activity.defn(name="return_to_alipay")
    async def return_to_alipay(self, payment: LegPayment) -> PaymentReceipt:
        return await self._return(Channel.ALIPAY, payment)

    @activity.defn(name="return_to_bank")
    async def return_to_bank(self, payment: LegPayment) -> PaymentReceipt:
        return await self._return(Channel.BANK, payment)

    @activity.defn(name="return_to_account_balance")
    async def return_to_account_balance(self, payment: LegPayment) -> PaymentReceipt:
        return await self._return(Channel.ACCOUNT_BALANCE, payment)

    async def _return(self, channel: Channel, payment: LegPayment) -> PaymentReceipt:
        leg = await self._allowed(lambda: self.authority.leg(payment, channel), payment)
        if leg.returned is not None:
            return self._receipt(leg.returned, already_returned=True)
        gateway = self.channels[channel]
        order = channel_order(gateway, leg)
        attempt = attempt_on(leg, channel)
        if attempt is not None and attempt.status == SETTLING:
            return self._settling(leg, attempt.transaction_id or "", attempt.accepted_at)
        try:
            answer = None
            if attempt is not None or activity.info().attempt > 1:
                answer = await gateway.lookup(order)
            if answer is None:
                if attempt is None:
                    await asyncio.to_thread(
                        self.attempts.sent,
                        idempotency_key=leg.idempotency_key,
                        channel=channel.value,
                        refund_id=leg.refund_id,
                        certificate_id=leg.certificate_id,
                        leg_index=leg.leg_index,
                        request_id=order.request_id,
                    )
                answer = await gateway.refund(order)
        except ChannelUnknownError as err:
            raise unknown_outcome(channel, err) from None
        return await self._answered(leg, answer)

    @activity.defn(name="check_settlement")
    async def check_settlement(self, payment: LegPayment) -> Settlement:
        """Ask the channel about a leg it accepted: settled, still settling, or failed."""
        leg = await self._allowed(lambda: self._settling_leg(payment), payment)
        if leg.returned is not None:
            return Settlement(status="returned", transaction_id=leg.returned.transaction_id)
        attempt = attempt_on(leg, leg.channel)
        if attempt is None or attempt.status in (REFUSED, FAILED):
            reason = (attempt.reason if attempt else None) or "the channel refused the return"
            return Settlement(status="failed", reason=reason)
        gateway = self.channels[leg.channel]
        try:
            answer = await gateway.lookup(channel_order(gateway, leg))
        except ChannelUnknownError as err:
            raise unknown_outcome(leg.channel, err) from None
        if answer is None:
            raise ApplicationError(
                f"{leg.channel.value} no longer knows the return it accepted",
                type=PAYMENT_UNKNOWN,
            )
        if answer.outcome is ChannelOutcome.SETTLING:
            return Settlement(status="settling", transaction_id=answer.transaction_id)
        if answer.outcome is ChannelOutcome.REFUSED:
            await asyncio.to_thread(
                self.attempts.answered,
                leg.idempotency_key,
                leg.channel.value,
                FAILED,
                code=answer.code,
                reason=answer.reason,
            )
            activity.logger.warning(
                "settlement failed",
                extra={"refund_id": leg.refund_id, "leg": leg.leg_index, "code": answer.code},
            )
            return Settlement(status="failed", reason=refusal_text(leg.channel, answer))
        entry = await self._returned(leg, answer)
        return Settlement(
            status="returned", transaction_id=entry.transaction_id, at=entry.returned_at
        )

    @activity.defn(name="record_manual_return")
    async def record_manual_return(self, settled: ManualSettlement) -> PaymentReceipt:
        leg = await self._allowed(lambda: self.authority.manual(settled, settled.resolve), settled)
        if leg.returned is not None:
            return self._receipt(leg.returned, already_returned=True, told=True)
        for attempt in leg.attempts:
            channel = Channel(attempt.channel)
            if attempt.status == SETTLING:
                raise ApplicationError(
                    f"{channel.value} accepted this return at {when(attempt.accepted_at)} and "
                    "it is settling: nothing is recorded by hand while it may still arrive",
                    type=PAYMENT_ATTENTION,
                    non_retryable=True,
                )
            if attempt.status == SENT:  # the channel may have paid after all: ask it first
                gateway, via = self.channels[channel], dataclasses.replace(leg, channel=channel)
                try:
                    answer = await gateway.lookup(channel_order(gateway, via))
                except ChannelUnknownError as err:
                    raise unknown_outcome(channel, err) from None
                if answer is not None and answer.outcome is ChannelOutcome.RETURNED:
                    entry = await self._returned(via, answer)
                    return self._receipt(entry, already_returned=True, told=True)
        entry, existed = await asyncio.to_thread(
            self.ledger.record,
            Return(
                idempotency_key=leg.idempotency_key,
                refund_id=leg.refund_id,
                certificate_id=leg.certificate_id,
                leg_index=leg.leg_index,
                channel=MANUAL,
                original_channel=leg.original_channel.value,
                amount=leg.amount,
                currency=leg.currency,
                reference=leg.reference,
                transaction_id=manual_transaction_id(leg.idempotency_key),
            ),
        )
        activity.logger.info(
            "leg settled by hand",
            extra={
                "refund_id": leg.refund_id,
                "leg": leg.leg_index,
                "operator": settled.resolve.actor if settled.resolve else "",
            },
        )
        return self._receipt(entry, already_returned=existed, told=entry.channel != MANUAL)

    def _settling_leg(self, payment: LegPayment) -> LegToPay:
        leg = self.authority.leg(payment, None)
        for attempt in leg.attempts:
            if attempt.status == SETTLING:
                return dataclasses.replace(leg, channel=Channel(attempt.channel))
        return leg

    async def _answered(self, leg: LegToPay, answer: ChannelAnswer) -> PaymentReceipt:
        channel = leg.channel
        if answer.outcome is ChannelOutcome.RETURNED:
            entry = await self._returned(leg, answer)
            return self._receipt(entry, already_returned=False)
        if answer.outcome is ChannelOutcome.SETTLING:
            accepted = answer.at or datetime.now(UTC)
            await asyncio.to_thread(
                self.attempts.answered,
                leg.idempotency_key,
                channel.value,
                SETTLING,
                transaction_id=answer.transaction_id,
                accepted_at=accepted,
            )
            return self._settling(leg, answer.transaction_id or "", accepted)
        status = SENT if answer.attention else REFUSED
        await asyncio.to_thread(
            self.attempts.answered,
            leg.idempotency_key,
            channel.value,
            status,
            code=answer.code,
            reason=answer.reason,
        )
        activity.logger.warning(
            "payment refused by the channel",
            extra={
                "refund_id": leg.refund_id,
                "leg": leg.leg_index,
                "channel": channel.value,
                "code": answer.code,
            },
        )
        raise ApplicationError(
            refusal_text(channel, answer),
            type=PAYMENT_ATTENTION if answer.attention else PAYMENT_REJECTED,
            non_retryable=True,
        )

    async def _returned(self, leg: LegToPay, answer: ChannelAnswer) -> LedgerEntry:
        """Record a returned leg: the ledger's row first, then the attempt's answer."""
        transaction_id = answer.transaction_id or f"{leg.channel.value}:{leg.idempotency_key}"
        entry, _ = await asyncio.to_thread(
            self.ledger.record,
            Return(
                idempotency_key=leg.idempotency_key,
                refund_id=leg.refund_id,
                certificate_id=leg.certificate_id,
                leg_index=leg.leg_index,
                channel=leg.channel.value,
                original_channel=leg.original_channel.value,
                amount=leg.amount,
                currency=leg.currency,
                reference=leg.reference,
                transaction_id=transaction_id,
            ),
        )
        await asyncio.to_thread(
            self.attempts.answered,
            leg.idempotency_key,
            leg.channel.value,
            RETURNED,
            transaction_id=transaction_id,
        )
        return entry

    async def _allowed(self, check: Callable[[], T], payment: LegPayment) -> T:
        """``check``'s answer, or the system of record's refusal: recorded, logged, counted."""
        try:
            scheduled_by_the_refund(payment.refund_id)
            return await asyncio.to_thread(check)
        except (PaymentUnauthorizedError, CertificateNotFoundError) as err:
            reason = str(err)
        raise await asyncio.to_thread(
            refused,
            self.refusals,
            refund_id=payment.refund_id,
            leg_index=payment.leg_index,
            reason=reason,
        )

    def _settling(
        self, leg: LegToPay, transaction_id: str, accepted_at: datetime | None
    ) -> PaymentReceipt:
        activity.logger.info(
            "payment accepted, settling",
            extra={"refund_id": leg.refund_id, "leg": leg.leg_index, "channel": leg.channel.value},
        )
        return PaymentReceipt(
            idempotency_key=leg.idempotency_key,
            transaction_id=transaction_id,
            channel=leg.channel.value,
            amount=leg.amount,
            settling=True,
            accepted_at=accepted_at,
        )

    def _receipt(
        self, entry: LedgerEntry, *, already_returned: bool, told: bool = False
    ) -> PaymentReceipt:
        activity.logger.info(
            "payment already returned" if already_returned else "payment returned",
            extra={
                "refund_id": entry.refund_id,
                "leg": entry.leg_index,
                "channel": entry.channel,
                "amount": str(entry.amount),
                "transaction_id": entry.transaction_id,
            },
        )
        detail = ""
        if told and entry.channel != MANUAL:
            detail = (
                f"{entry.channel} paid this leg at {when(entry.returned_at)} "
                f"({entry.transaction_id}); nothing more is due"
            )
        return PaymentReceipt(
            idempotency_key=entry.idempotency_key,
            transaction_id=entry.transaction_id,
            channel=entry.channel,
            amount=entry.amount,
            already_returned=already_returned,
            returned_at=entry.returned_at,
            detail=detail,
        )
