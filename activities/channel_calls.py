"""What the payment activities ask a channel and how its answer reads: the order built from the
leg the system of record holds, an unknown outcome as a retryable failure (asked about first next
time), and a refusal in words a person can act on."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from temporalio.exceptions import ApplicationError

from activities.gateways import ChannelAnswer, ChannelRefund, ChannelUnknownError, PaymentChannel
from domain.certificates import Channel
from domain.errors import PAYMENT_UNKNOWN

if TYPE_CHECKING:
    from activities.authorization import LegToPay
    from storage.payment_attempts import Attempt


def channel_order(gateway: PaymentChannel, leg: LegToPay) -> ChannelRefund:
    return ChannelRefund(
        idempotency_key=leg.idempotency_key,
        request_id=gateway.request_id(leg.idempotency_key),
        reference=leg.reference,
        amount=leg.amount,
        currency=leg.currency,
        owner=leg.owner,
    )


def attempt_on(leg: LegToPay, channel: Channel) -> Attempt | None:
    return next((a for a in leg.attempts if a.channel == channel.value), None)


def unknown_outcome(channel: Channel, err: ChannelUnknownError) -> ApplicationError:
    delay = timedelta(seconds=err.retry_after) if err.retry_after else None
    return ApplicationError(
        f"{channel.value}: outcome unknown ({err}); asked again with the same request id",
        type=PAYMENT_UNKNOWN,
        next_retry_delay=delay,
    )


def refusal_text(channel: Channel, answer: ChannelAnswer) -> str:
    code = f" ({answer.code})" if answer.code else ""
    return f"{channel.value} refused the return: {answer.reason or 'no reason given'}{code}"


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "an unknown time"
