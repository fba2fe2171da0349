"""The payout's decisions, pure: which legs are still to pay, what a leg's payment names, when a
refusal may fall back to the account balance, and how a failure reads to a person."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.exceptions import ActivityError, RetryState, TimeoutError, TimeoutType

from activities.payloads import LegPayment
from domain.certificates import Certificate, Channel
from domain.errors import PAYMENT_REJECTED
from workflows.contract import SETTLED_LEG_STATES, LegStatus


def unsettled(legs: list[LegStatus]) -> list[LegStatus]:
    """The legs not yet returned, settled by hand, or not refundable."""
    return [leg for leg in legs if leg.status not in SETTLED_LEG_STATES]


def leg_payment(refund_id: str, certificate: Certificate, leg: LegStatus) -> LegPayment:
    """What the payment activity is told of one leg: ids alone (the rest is the order's)."""
    assert leg.idempotency_key is not None
    return LegPayment(
        refund_id=refund_id,
        certificate_id=certificate.certificate_id,
        leg_index=leg.index,
        idempotency_key=leg.idempotency_key,
    )


def may_fall_back(channel: Channel, err: ActivityError, allowed: bool) -> bool:
    """A channel that refused for good may be replaced by the account balance, if allowed."""
    refused = getattr(err.cause, "type", None) == PAYMENT_REJECTED
    return refused and allowed and channel is not Channel.ACCOUNT_BALANCE


def patience(seconds: float | None) -> timedelta | None:
    """How long a step may keep failing (``None``: for ever, as before the patience existed)."""
    return timedelta(seconds=seconds) if seconds else None


def leg_problem(channel: Channel, leg: LegStatus, why: str) -> str:
    return f"{channel.value} leg {leg.index} ({leg.amount}): {why}"


def unavailable(what: str, since: datetime, err: ActivityError) -> str | None:
    """When ``err`` is the payment patience running out: who has been failing since when.

    The patience is the activity's schedule-to-close timeout: it ends either in that timeout or,
    when the next retry would start past it, in the last failure with retry state ``TIMEOUT``.
    """
    failure = err.cause
    timed_out = isinstance(failure, TimeoutError) and (
        failure.type is TimeoutType.SCHEDULE_TO_CLOSE
    )
    if not timed_out and err.retry_state is not RetryState.TIMEOUT:
        return None
    last = cause(failure) if isinstance(failure, TimeoutError) else cause(err)
    return f"{what} unavailable since {since:%Y-%m-%d %H:%M} UTC" + (
        f" (last error: {last})" if last else ""
    )


def cause(err: BaseException) -> str:
    """The message of what made an activity fail (a local activity's failure is its own)."""
    inner = err.cause if isinstance(err, ActivityError | TimeoutError) else err
    return getattr(inner, "message", None) or str(inner or err)
